/**
 * Every error the library throws on purpose (bad options, bad images, a bad model file, training
 * that diverged): its message is one line a user can act on. Catch this to tell them from bugs.
 */
export class SvddError extends Error {
  override get name(): string { return this.constructor.name; }
}

/**
 * A training run or a study cannot use its directory or its settings: a directory that is not
 * empty, is locked by another process or is not a run, a checkpoint of other settings, settings
 * out of range, too few training images, a file that cannot be written.
 */
export class RunError extends SvddError {}
