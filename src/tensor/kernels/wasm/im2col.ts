/**
 * im2col convolution: gather tables turn packing into im2col, so a convolution (and its weight
 * gradient) is one blocked GEMM over packed panels of the input; also the tap and position tables the
 * direct path reuses.
 */
import type { ConvGeom } from '../types.ts';
import { MR, NR } from './kernels.ts';
import type { WasmRuntime } from './runtime.ts';
import { CHUNK_BYTES, KC, Plan, type TableFn, operandAt, pushGemm, split, threadsFor, up } from './plan.ts';

/** Zero-pads images [a, b) of X into Xp (each thread pads the images it convolves). */
export function planPad(plan: Plan, t: number, g: ConvGeom, X: number, Xp: number, a: number, b: number): void {
  const { cin, h, w, pad } = g;
  if (pad === 0 || b <= a || h === 0 || w === 0) return;
  const Hp = h + 2 * pad, Wp = w + 2 * pad, imgPad = cin * Hp * Wp * 4, imgIn = cin * h * w * 4;
  plan.push(t, 'padCopy', Xp + a * imgPad, X + a * imgIn, (b - a) * cin, h, w, Hp * Wp * 4, Wp * 4, h * w * 4, w * 4, (pad * Wp + pad) * 4);
}

/** The x-side of a conv: the input (operand 0) and its zero-padded copy (X itself when pad = 0). */
export function allocInput(rt: WasmRuntime, g: ConvGeom): { X: number; Xp: number } {
  const X = operandAt(0);
  const Xp = g.pad > 0 ? rt.alloc(g.n * g.cin * (g.h + 2 * g.pad) * (g.w + 2 * g.pad) * 4) : X;
  return { X, Xp };
}

/** kernelOffsets[(ci·kh + ky)·kw + kx] = byte offset of that tap in a padded image. */
export function writeKernelOffsets(out: Int32Array, g: ConvGeom): void {
  const Hp = g.h + 2 * g.pad, Wp = g.w + 2 * g.pad;
  let o = 0;
  const i32 = out;
  for (let ci = 0; ci < g.cin; ci++)
    for (let ky = 0; ky < g.kh; ky++)
      for (let kx = 0; kx < g.kw; kx++) i32[o++] = ((ci * Hp + ky) * Wp + kx) * 4;
}

/** positions[il·P + oy·ow + ox] = byte offset of that window's corner, for `imgs` padded images. */
export function writePositions(out: Int32Array, g: ConvGeom, imgs: number, imgStrideFloats: number): void {
  const Wp = g.w + 2 * g.pad, s = g.stride;
  let o = 0;
  const i32 = out;
  for (let il = 0; il < imgs; il++)
    for (let oy = 0; oy < g.oh; oy++)
      for (let ox = 0; ox < g.ow; ox++) i32[o++] = (il * imgStrideFloats + oy * s * Wp + ox * s) * 4;
}

export function convSetup(rt: WasmRuntime, table: TableFn, g: ConvGeom): { at: Record<string, number>; phases: number[][][] } {
  const { n, cin, h, w, cout, kh, kw, pad, oh, ow } = g;
  const K = cin * kh * kw, P = oh * ow;
  const imgPad = cin * (h + 2 * pad) * (w + 2 * pad), imgOut = cout * P;
  const mp = up(cout, MR), kcMax = Math.min(K, KC);
  const T = threadsFor(rt, 2 * n * imgOut * K, n);
  const ranges = split(n, T);
  const maxImgs = Math.max(...ranges.map(([a, b]) => b - a));
  const nb = Math.max(1, Math.min(maxImgs, Math.floor(CHUNK_BYTES / (P * (kcMax + cout) * 4))));

  const { X, Xp } = allocInput(rt, g);
  const W = operandAt(1), Ap = rt.alloc(mp * K * 4), Y = operandAt(2);
  const wLane = rt.alloc(cout * 4), wRow = rt.alloc(K * 4);
  const colTab = rt.alloc(nb * P * 4), rowTab = rt.alloc(K * 4);
  const Bp = ranges.map(() => rt.alloc(up(nb * P, NR) * kcMax * 4));
  const Cs = ranges.map(() => (nb > 1 ? rt.alloc(imgOut * nb * 4) : 0));
  rt.commit();
  const wl = table(wLane, cout), wr = table(wRow, K);
  for (let co = 0; co < cout; co++) wl[co] = co * K * 4;
  for (let p = 0; p < K; p++) wr[p] = p * 4;
  writeKernelOffsets(table(rowTab, K), g);
  writePositions(table(colTab, nb * P), g, nb, imgPad);

  // Weights are tiny next to the columns: pack them once, first, before any thread needs them.
  const packA = new Plan(1);
  for (let pc = 0; pc < K; pc += KC) packA.push(0, 'pack4', Ap + mp * pc * 4, W, wLane, wRow + pc * 4, cout, Math.min(KC, K - pc));

  const plan = new Plan(T);
  ranges.forEach(([a, b], t) => {
    planPad(plan, t, g, X, Xp, a, b);
    for (let img0 = a; img0 < b; img0 += nb) {
      const imgs = Math.min(nb, b - img0), ncols = imgs * P;
      // A single-image chunk is already in NCHW order, so the kernel can write y directly.
      const out = nb === 1 ? Y + img0 * imgOut * 4 : Cs[t]!;
      for (let pc = 0; pc < K; pc += KC) {
        const kc = Math.min(KC, K - pc);
        plan.push(t, 'pack8', Bp[t]!, Xp + img0 * imgPad * 4, colTab, rowTab + pc * 4, ncols, kc);
        pushGemm(plan, t, Ap + mp * pc * 4, Bp[t]!, out, cout, ncols, kc, ncols, pc > 0);
      }
      if (nb > 1) plan.push(t, 'copy2d', Y + img0 * imgOut * 4, Cs[t]!, imgs, cout, P * 4, imgOut * 4, P * 4, P * 4, ncols * 4);
    }
  });
  return { at: { X, W, Y }, phases: [packA.lists, plan.lists] };
}

export function convGradWeightSetup(rt: WasmRuntime, table: TableFn, g: ConvGeom): { at: Record<string, number>; phases: number[][][] } {
  const { n, cin, h, w, cout, kh, kw, pad, oh, ow } = g;
  const K = cin * kh * kw, P = oh * ow;
  const imgPad = cin * (h + 2 * pad) * (w + 2 * pad), imgOut = cout * P;
  const T = threadsFor(rt, 2 * n * imgOut * K, n);
  const ranges = split(n, T);
  const maxImgs = Math.max(...ranges.map(([a, b]) => b - a));
  const Q = maxImgs * P;

  const { X, Xp } = allocInput(rt, g);
  const GY = operandAt(1);
  const laneA = rt.alloc(cout * 4), rowA = rt.alloc(Q * 4), laneB = rt.alloc(K * 4), rowB = rt.alloc(Q * 4);
  const Ap = ranges.map(() => rt.alloc(up(cout, MR) * KC * 4));
  const Bp = ranges.map(() => rt.alloc(up(K, NR) * KC * 4));
  const Cs = ranges.map(() => rt.alloc(cout * K * 4));
  rt.commit();
  const la = table(laneA, cout), ra = table(rowA, Q);
  for (let co = 0; co < cout; co++) la[co] = co * P * 4;
  for (let il = 0, o = 0; il < maxImgs; il++) for (let p = 0; p < P; p++) ra[o++] = (il * imgOut + p) * 4;
  writeKernelOffsets(table(laneB, K), g);
  writePositions(table(rowB, Q), g, maxImgs, imgPad);

  const plan = new Plan(T);
  ranges.forEach(([a, b], t) => {
    planPad(plan, t, g, X, Xp, a, b);
    const Qt = (b - a) * P;
    if (Qt === 0) { plan.push(t, 'zero', Cs[t]!, cout * K * 4); return; }
    for (let q = 0; q < Qt; q += KC) {
      const kc = Math.min(KC, Qt - q);
      plan.push(t, 'pack4', Ap[t]!, GY + a * imgOut * 4, laneA, rowA + q * 4, cout, kc);
      plan.push(t, 'pack8', Bp[t]!, Xp + a * imgPad * 4, laneB, rowB + q * 4, K, kc);
      pushGemm(plan, t, Ap[t]!, Bp[t]!, Cs[t]!, cout, K, kc, K, q > 0);
    }
  });
  const reduce = new Plan(1);
  for (let t = 1; t < T; t++) reduce.push(0, 'addInto', Cs[0]!, Cs[t]!, cout * K);
  return { at: { X, GY, C0: Cs[0]! }, phases: [plan.lists, reduce.lists] };
}
