/**
 * Direct (packing-free) stride-1 convolution and weight gradient for few output channels: rows of
 * the im2col matrix are read in place from the padded image through a table of tap offsets.
 */
import type { ConvGeom } from '../types.ts';
import { MR, NR } from './kernels.ts';
import type { WasmRuntime } from './runtime.ts';
import { KC, Plan, type TableFn, geomKey, operandAt, runPhases, setupFor, split, threadsFor, up } from './plan.ts';
import { writeKernelOffsets } from './im2col.ts';

/**
 * Stride-1 convolutions with DIRECT_MIN_COUT..DIRECT_MAX_COUT output channels skip packing. Fewer
 * would waste most of a 4-row tile; with more, packing is amortised over many row panels and the
 * packed path wins (the direct path also computes Wp − ow wasted columns per row: 50% at 8×8).
 */
export const DIRECT_MIN_COUT = 3;
export const DIRECT_MAX_COUT = 16;

/**
 * Stride-1 convolution without packing the input. Over the padded width Wp, output position
 * q = oy·Wp + ox reads tap k = (ci, ky, kx) at Xp[off_k + q], so row k of the im2col matrix is a
 * contiguous run of the padded image: kernelDirect reads it in place through a table of tap
 * offsets. Each image gives Y' [cout, oh·Wp]; columns ox ≥ ow are discarded when copying out.
 */
export function conv2dDirect(rt: WasmRuntime, x: Float32Array, wt: Float32Array, y: Float32Array, g: ConvGeom): void {
  const { n, cin, h, w, cout, kh, kw, pad, oh, ow } = g;
  const K = cin * kh * kw, imgPad = cin * (h + 2 * pad) * (w + 2 * pad);
  const s = setupFor(rt, geomKey('direct', g), (table) => directSetup(rt, table, g));
  const { Xp } = s.at as { Xp: number };
  rt.f32.fill(0, (Xp >> 2) + n * imgPad, (Xp >> 2) + n * imgPad + directSlack(g));
  runPhases(rt, s, [[x, n * cin * h * w, 'in'], [wt, cout * K, 'in'], [y, n * cout * oh * ow, 'out']]);
}

/** A ragged last column panel reads up to NR floats past an image's last row: the zeroed tail after Xp. */
const directSlack = (g: ConvGeom): number => g.kw + 2 * NR;

function directSetup(rt: WasmRuntime, table: TableFn, g: ConvGeom): { at: Record<string, number>; phases: number[][][] } {
  const { n, cin, h, w, cout, kh, kw, pad, oh, ow } = g;
  const K = cin * kh * kw, Hp = h + 2 * pad, Wp = w + 2 * pad, imgPad = cin * Hp * Wp, imgOut = cout * oh * ow;
  const Q = oh * Wp, mp = up(cout, MR);
  const slack = directSlack(g);
  const T = threadsFor(rt, 2 * n * imgOut * K, n);
  const ranges = split(n, T);

  const X = operandAt(0), Xp = rt.alloc((n * imgPad + slack) * 4);
  const W = operandAt(1), Ap = rt.alloc(mp * K * 4), Y = operandAt(2);
  const wLane = rt.alloc(cout * 4), wRow = rt.alloc(K * 4), tapTab = rt.alloc(K * 4);
  const Cs = ranges.map(() => rt.alloc(cout * Q * 4));
  rt.commit();
  const wl = table(wLane, cout), wr = table(wRow, K);
  for (let co = 0; co < cout; co++) wl[co] = co * K * 4;
  for (let p = 0; p < K; p++) wr[p] = p * 4;
  writeKernelOffsets(table(tapTab, K), g);

  const packA = new Plan(1);
  for (let pc = 0; pc < K; pc += KC) packA.push(0, 'pack4', Ap + mp * pc * 4, W, wLane, wRow + pc * 4, cout, Math.min(KC, K - pc));

  const plan = new Plan(T);
  ranges.forEach(([a, b], t) => {
    if (b <= a) return;
    plan.push(t, 'padCopy', Xp + a * imgPad * 4, X + a * cin * h * w * 4, (b - a) * cin, h, w, Hp * Wp * 4, Wp * 4, h * w * 4, w * 4,
      (pad * Wp + pad) * 4);
    for (let img = a; img < b; img++) {
      for (let pc = 0; pc < K; pc += KC) {
        const kc = Math.min(KC, K - pc);
        plan.push(t, 'kernelDirect', Ap + mp * pc * 4, Xp + img * imgPad * 4, Cs[t]!, cout, Q, kc, Q, pc > 0 ? 1 : 0, tapTab + pc * 4);
      }
      plan.push(t, 'copy2d', Y + img * imgOut * 4, Cs[t]!, cout, oh, ow * 4, oh * ow * 4, ow * 4, Q * 4, Wp * 4);
    }
  });
  return { at: { X, Xp, W, Y }, phases: [packA.lists, plan.lists] };
}

/** Weight gradients with at most this many entries (cout·K) take the packing-free path. */
export const DIRECT_GW_MAX = 4096;

/**
 * Stride-1 weight gradient without packing. Over the padded width Wp, output position q = oy·Wp + ox
 * reads tap (ci, ky, kx) at Xp[ci][ky·Wp + kx + q]: one contiguous row per tap. With gy copied into
 * rows of the same width (zero at ox ≥ ow, and up to a multiple of 4), each weight gradient entry is
 * a contiguous dot product, gw[co, k] = Σ_img Σ_q gyPad[co][q] · Xp[off_k + q] (dotNT). Threads take
 * disjoint images and sum their partials at the end.
 */
export function conv2dGradWeightDirect(rt: WasmRuntime, x: Float32Array, gy: Float32Array, gw: Float32Array, g: ConvGeom): void {
  const { n, cin, h, w, cout, kh, kw, oh, ow } = g;
  const K = cin * kh * kw, np = up(K, 2);
  const s = setupFor(rt, geomKey('directGW', g), (table) => directGradWeightSetup(rt, table, g));
  const { C0 } = s.at as { C0: number };
  runPhases(rt, s, [[x, n * cin * h * w, 'in'], [gy, n * cout * oh * ow, 'in']]);
  const out = rt.f32, c0 = C0 >> 2;
  for (let co = 0; co < cout; co++) gw.set(out.subarray(c0 + co * np, c0 + co * np + K), co * K);
}

function directGradWeightSetup(rt: WasmRuntime, table: TableFn, g: ConvGeom): { at: Record<string, number>; phases: number[][][] } {
  const { n, cin, h, w, cout, kh, kw, pad, oh, ow } = g;
  const K = cin * kh * kw, Hp = h + 2 * pad, Wp = w + 2 * pad, imgPad = cin * Hp * Wp, imgOut = cout * oh * ow;
  const L = up(oh * Wp, 4), mp = up(cout, 4), np = up(K, 2);
  // Dot products run L floats past a tap's start, so an image's last taps read up to kw + 2 floats of
  // what follows it (times gy's zero padding). Each thread's images therefore get a block of their own
  // ending in a zeroed tail (kw + 8), zeroed by that thread: in one shared block, a thread's last image
  // would read the next thread's first image while that thread writes it, or before it zeroes it
  // (then stale scratch; 0·NaN is NaN).
  const slack = kw + 8;
  const T = threadsFor(rt, 2 * n * imgOut * K, n);
  const ranges = split(n, T);

  const X = operandAt(0), Xp = ranges.map(([a, b]) => rt.alloc(((b - a) * imgPad + slack) * 4));
  const GY = operandAt(1), GYp = rt.alloc(n * cout * L * 4);
  const aTab = rt.alloc(mp * 4), bTab = rt.alloc(np * 4);
  const Cs = ranges.map(() => rt.alloc(mp * np * 4));
  rt.commit();
  // Padding rows and columns repeat the last real one; their results are never copied out.
  const at = table(aTab, mp), bt = table(bTab, np);
  for (let i = 0; i < mp; i++) at[i] = Math.min(i, cout - 1) * L * 4;
  for (let j = 0; j < np; j++) {
    const k = Math.min(j, K - 1), ci = Math.floor(k / (kh * kw)), ky = Math.floor(k / kw) % kh, kx = k % kw;
    bt[j] = ((ci * Hp + ky) * Wp + kx) * 4;
  }

  const plan = new Plan(T);
  ranges.forEach(([a, b], t) => {
    if (b <= a) { plan.push(t, 'zero', Cs[t]!, mp * np * 4); return; }
    plan.push(t, 'padCopy', Xp[t]!, X + a * cin * h * w * 4, (b - a) * cin, h, w, Hp * Wp * 4, Wp * 4, h * w * 4, w * 4, (pad * Wp + pad) * 4);
    plan.push(t, 'zero', Xp[t]! + (b - a) * imgPad * 4, slack * 4);
    plan.push(t, 'padCopy', GYp + a * cout * L * 4, GY + a * imgOut * 4, (b - a) * cout, oh, ow, L * 4, Wp * 4, oh * ow * 4, ow * 4, 0);
    for (let img = a; img < b; img++) {
      plan.push(t, 'dotNT', GYp + img * cout * L * 4, aTab, mp, Xp[t]! + (img - a) * imgPad * 4, bTab, np, L, Cs[t]!, img > a ? 1 : 0);
    }
  });
  const reduce = new Plan(1);
  for (let t = 1; t < T; t++) reduce.push(0, 'addInto', Cs[0]!, Cs[t]!, mp * np);
  return { at: { X, GY, C0: Cs[0]! }, phases: [plan.lists, reduce.lists] };
}
