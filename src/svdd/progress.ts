/**
 * Progress of a long library call, for whoever shows it (the CLI draws a line on a terminal): the
 * library only calls back and never prints. `done` of `total` units of the step `what` (images
 * encoded, files read, maps computed); a new `what` starts a new step. Calls are cheap and may be
 * many (one per batch), so a renderer must bound its own rate.
 */
export type ProgressCallback = (done: number, total: number, what: string) => void;
