/**
 * The errors the library throws on purpose, all subclasses of SvddError, each with a one-line
 * message worded for a program's author (option names, not command-line flags).
 */
import { RunError, SvddError } from '../svdd/errors.ts';

export { RunError, SvddError };
export { DataError } from '../svdd/data/errors.ts';
export { ModelError } from '../svdd/model.ts';

/** An estimator option has the wrong type or is out of range, or options contradict each other. */
export class OptionError extends SvddError {}

/** Images handed to the estimator are not usable: wrong shape or type, or values that are not finite. */
export class InputError extends SvddError {}

/** A method that needs a fitted model was called before fit() or load(). */
export class NotFittedError extends SvddError {}

/** Training diverged: a loss, weight or code stopped being a finite number; no model was fitted. */
export class TrainingDivergedError extends SvddError {}
