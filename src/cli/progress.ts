/**
 * Progress for long phases: a redrawn bar with ETA on a terminal, nothing extra otherwise
 * (the per-epoch log lines already say how far a run is when output goes to a file).
 */
import type { TrainHooks } from '../svdd/trainer.ts';

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}

/**
 * Progress hooks for a training run. On a terminal a one-line bar is redrawn in place: never wider
 * than the terminal (a wrapped line cannot be redrawn: its first part would stay in the scroll-back),
 * and cleared before each epoch's log line and by `clear()` (call it before printing anything else).
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
      const width = 24, filled = Math.round((width * done) / total);
      const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
      const line = `[${p}] epoch ${epoch + 1}/${epochsOf(p)} [${bar}] ${batch}/${batches} loss ${loss.toPrecision(4)} ETA ${formatDuration(eta)}`;
      const columns = stream.columns > 0 ? stream.columns : 80;
      stream.write(`\r${line.slice(0, columns - 1)}\x1b[K`);
      drawn = true;
    },
    onEpoch() { clear(); },
    clear,
  };
}
