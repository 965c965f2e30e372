/**
 * GEMM driver: C[m, n] (+)= op(A) · op(B), packed in blocks of KC and split over threads.
 */
import { MR, NR } from './kernels.ts';
import type { WasmRuntime } from './runtime.ts';
import { KC, Plan, type TableFn, operandAt, pushGemm, runPhases, setupFor, split, threadsFor, up } from './plan.ts';

export function gemmWasm(rt: WasmRuntime, a: Float32Array, b: Float32Array, c: Float32Array, m: number, n: number, k: number,
                         transA: boolean, transB: boolean, accumulate: boolean): void {
  if (m === 0 || n === 0) return;
  if (k === 0) { if (!accumulate) c.fill(0, 0, m * n); return; }
  const s = setupFor(rt, `gemm:${m},${n},${k},${+transA},${+transB},${+accumulate}`, (table) => gemmSetup(rt, table, m, n, k, transA, transB, accumulate));
  runPhases(rt, s, [[a, m * k, 'in'], [b, k * n, 'in'], [c, m * n, accumulate ? 'inout' : 'out']]);
}

function gemmSetup(rt: WasmRuntime, table: TableFn, m: number, n: number, k: number, transA: boolean, transB: boolean,
                   accumulate: boolean): { at: Record<string, number>; phases: number[][][] } {
  const mp = up(m, MR), np = up(n, NR);
  const A = operandAt(0), B = operandAt(1), C = operandAt(2);
  const Ap = rt.alloc(mp * k * 4), Bp = rt.alloc(np * k * 4);
  const aLane = rt.alloc(m * 4), aRow = rt.alloc(k * 4), bLane = rt.alloc(n * 4), bRow = rt.alloc(k * 4);
  rt.commit();
  const al = table(aLane, m), ar = table(aRow, k), bl = table(bLane, n), br = table(bRow, k);
  for (let i = 0; i < m; i++) al[i] = (transA ? i : i * k) * 4;
  for (let p = 0; p < k; p++) {
    ar[p] = (transA ? p * m : p) * 4;
    br[p] = (transB ? p : p * n) * 4;
  }
  for (let j = 0; j < n; j++) bl[j] = (transB ? j * k : j) * 4;

  const T = threadsFor(rt, 2 * m * n * k, Math.min(mp / MR, np / NR));
  // Phase 1: every thread packs a share of A's row panels and of B's column panels.
  const pack = new Plan(T);
  const panels = split(np / NR, T), rowPanels = split(mp / MR, T);
  for (let pc = 0; pc < k; pc += KC) {
    const kc = Math.min(KC, k - pc);
    rowPanels.forEach(([r0, r1], t) => {
      const i0 = r0 * MR, rows = Math.min(m, r1 * MR) - i0;
      if (rows > 0) pack.push(t, 'pack4', Ap + mp * pc * 4 + i0 * kc * 4, A, aLane + i0 * 4, aRow + pc * 4, rows, kc);
    });
    panels.forEach(([p0, p1], t) => {
      const j0 = p0 * NR, ncols = Math.min(n, p1 * NR) - j0;
      if (ncols > 0) pack.push(t, 'pack8', Bp + np * pc * 4 + j0 * kc * 4, B, bLane + j0 * 4, bRow + pc * 4, ncols, kc);
    });
  }
  // Phase 2: threads own disjoint row panels of C.
  const comp = new Plan(T);
  split(mp / MR, T).forEach(([r0, r1], t) => {
    const i0 = r0 * MR, rows = Math.min(m, r1 * MR) - i0;
    if (rows <= 0) return;
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      pushGemm(comp, t, Ap + mp * pc * 4 + i0 * kc * 4, Bp + np * pc * 4, C + i0 * n * 4, rows, n, kc, n, accumulate || pc > 0);
    }
  });
  return { at: { A, B, C }, phases: [pack.lists, comp.lists] };
}
