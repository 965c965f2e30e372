/**
 * Shared by the kernel benchmarks (gemm.ts, winograd.ts): random operands and a timer that keeps
 * the best of several windows, since other processes on a 2-core machine otherwise show up as
 * fake slowdowns (or fake thread-scaling losses).
 */

/** n uniform values in [−1, 1). */
export function randomOperand(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1;
  return a;
}

/** Seconds per call of fn: one warm-up call, then the best of `windows` windows of `windowSeconds` each. */
export function bestSecondsPerCall(fn: () => void, windows: number, windowSeconds: number): number {
  fn();
  let best = Infinity;
  for (let w = 0; w < windows; w++) {
    let reps = 0;
    const t0 = performance.now();
    do { fn(); reps++; } while (performance.now() - t0 < windowSeconds * 1000);
    best = Math.min(best, (performance.now() - t0) / 1000 / reps);
  }
  return best;
}
