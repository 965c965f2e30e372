import { SvddError } from '../errors.ts';

/**
 * Every problem with a user's data files or data options surfaces as one DataError whose
 * message names the file (or option) and what is wrong, so the CLI can print it verbatim
 * instead of a stack trace from deep inside a reader.
 */
export class DataError extends SvddError {
  override get name(): string { return 'DataError'; }
  /** The file or directory the message is about, when there is one. */
  readonly path: string | undefined;

  constructor(message: string, path?: string) {
    super(message);
    this.path = path;
  }
}

/** Node's fs errors carry a code; turning it into words keeps the message short and clear. */
export function describeFsError(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOENT': return 'file not found';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'EISDIR': return 'is a directory, expected a file';
    case 'ENOTDIR': return 'a parent path is not a directory';
    default: return e instanceof Error ? e.message : String(e);
  }
}
