/**
 * Progress for long phases: a redrawn bar with ETA on a terminal, nothing extra otherwise
 * (the per-epoch log lines already say how far a run is when output goes to a file).
 */
import type { TrainHooks } from '../svdd/trainer.ts';
import type { ProgressCallback } from '../svdd/progress.ts';

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}

/** `[#####-------]` for done of total, `width` characters between the brackets. */
function bar(done: number, total: number, width = 24): string {
  const filled = total > 0 ? Math.min(width, Math.max(0, Math.round((width * done) / total))) : 0;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

/**
 * Draws `line` over the current terminal line: never wider than the terminal (a wrapped line
 * cannot be redrawn: its first part would stay in the scroll-back).
 */
function drawOver(stream: NodeJS.WriteStream, line: string): void {
  const columns = stream.columns > 0 ? stream.columns : 80;
  stream.write(`\r${line.slice(0, columns - 1)}\x1b[K`);
}

/**
 * Progress hooks for a training run. On a terminal a one-line bar is redrawn in place: never wider
 * than the terminal, and cleared before each epoch's log line and by `clear()` (call it before
 * printing anything else).
 */
export function progressHooks(stream: NodeJS.WriteStream, epochsOf: (phase: string) => number): TrainHooks & { clear(): void } {
  if (!stream.isTTY) return { clear() { /* nothing drawn */ } };
  let phase = '', phaseStart = 0, done = 0, drawn = false;
  const clear = (): void => { if (drawn) { stream.write('\r\x1b[K'); drawn = false; } };
  return {
    onBatch(p, epoch, batch, batches, loss) {
      if (p !== phase) { phase = p; phaseStart = performance.now(); done = 0; }
      done++;
      const total = epochsOf(p) * batches;
      const elapsed = (performance.now() - phaseStart) / 1000;
      const eta = (elapsed / done) * (total - done);
      drawOver(stream, `[${p}] epoch ${epoch + 1}/${epochsOf(p)} ${bar(done, total)} ${batch}/${batches} loss ${loss.toPrecision(4)} ETA ${formatDuration(eta)}`);
      drawn = true;
    },
    onEpoch() { clear(); },
    clear,
  };
}

/** A progress line for a command other than train: its callback for the library, and `clear()`. */
export interface ProgressLine {
  onProgress: ProgressCallback;
  /** Removes the line (call it before printing anything, and at the end). */
  clear(): void;
}

/** Frames are drawn at most this often (a step's last frame excepted), so a fast loop costs no output. */
export const PROGRESS_INTERVAL_MS = 100;

/**
 * The progress of `command` (report, explain, predict) on a terminal: one line, `svdd report:
 * encoding the test set [####----] 4000/10000 ETA 6s`, redrawn in place at most every
 * PROGRESS_INTERVAL_MS (and once at the end of each step), cleared by `clear()`, so the
 * scroll-back holds only what the command prints. On anything but a terminal it draws nothing.
 */
export function progressLine(stream: NodeJS.WriteStream, command: string, now: () => number = () => performance.now()): ProgressLine {
  if (!stream.isTTY) return { onProgress: () => { /* not a terminal */ }, clear: () => { /* nothing drawn */ } };
  let step = '', stepStart = 0, lastDone = 0, lastFrame = -Infinity, drawn = false;
  return {
    onProgress(done, total, what) {
      const t = now();
      // A new step, or the same step again (faithfulness curves of a second set): a new ETA.
      if (what !== step || done < lastDone) { step = what; stepStart = t; }
      lastDone = done;
      const finished = done >= total;
      if (!finished && t - lastFrame < PROGRESS_INTERVAL_MS) return;
      lastFrame = t;
      const elapsed = (t - stepStart) / 1000;
      const eta = done > 0 && !finished && elapsed > 0 ? ` ETA ${formatDuration((elapsed / done) * (total - done))}` : '';
      drawOver(stream, `svdd ${command}: ${what} ${bar(done, total)} ${done}/${total}${eta}`);
      drawn = true;
    },
    clear() { if (drawn) { stream.write('\r\x1b[K'); drawn = false; } },
  };
}
