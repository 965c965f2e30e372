/**
 * JS drivers for the memory-bound wasm kernels (pointwise.ts): place the operands (tensors that
 * live in wasm memory are used in place, others are staged through the arena: operands.ts),
 * split rows (or elements, or planes) over the threads. These kernels are bound by memory
 * bandwidth, so every copy avoided is a pass over the data saved; and they still beat the
 * reference loops, whose data-dependent branches mispredict on random-signed activations.
 *
 * BatchNorm's statistics are summed per row (one image-channel plane) in float32 inside wasm and
 * per channel in float64 here, so they stay close to the reference's float64 sums.
 */
import { Plan, split } from './ops.ts';
import { Operands } from './operands.ts';
import type { WasmRuntime } from './runtime.ts';

/** Below this many elements one thread is faster than waking a worker. */
const MIN_PARALLEL_ELEMS = 1 << 16;

const bitsBuf = new Float32Array(1), bitsI32 = new Int32Array(bitsBuf.buffer);
/** The i32 bit pattern of an f32 (how float parameters travel in command lists). */
function f32Bits(v: number): number { bitsBuf[0] = v; return bitsI32[0]!; }

function threadsFor(rt: WasmRuntime, elems: number, units: number): number {
  return elems >= MIN_PARALLEL_ELEMS ? Math.max(1, Math.min(rt.threads, units)) : 1;
}

/** y = leakyRelu(x), or with `gy` given, gx = leakyRelu'(x)·gy written to y. */
export function leakyWasm(rt: WasmRuntime, x: Float32Array, gy: Float32Array | null, y: Float32Array, n: number, slope: number): void {
  if (n === 0) return;
  const io = new Operands(rt);
  const X = io.input(x, n), G = gy ? io.input(gy, n) : 0, Y = io.output(y, n);
  io.commit();
  const T = threadsFor(rt, n, n);
  const plan = new Plan(T);
  split(n, T).forEach(([a, b], t) => {
    if (b <= a) return;
    if (gy) plan.push(t, 'leakyGrad', X + a * 4, G + a * 4, Y + a * 4, b - a, f32Bits(slope));
    else plan.push(t, 'leaky', X + a * 4, Y + a * 4, b - a, f32Bits(slope));
  });
  rt.run(plan.lists);
  io.finish();
}

/**
 * The exp-based activations (sigmoid, ELU) and their gradients. The kernels have no scalar tail:
 * they run whole 4-float groups, so a ragged operand is staged in a padded arena slot (Operands'
 * `group`). Vector groups are split over threads; the last
 * operand is the output. `ins` are the inputs in the kernel's argument order.
 */
export function activationWasm(rt: WasmRuntime, fn: 'sigmoid' | 'sigmoidGrad' | 'elu' | 'eluGrad', ins: Float32Array[],
                               out: Float32Array, n: number, alpha: number): void {
  if (n === 0) return;
  const groups = Math.ceil(n / 4);
  const io = new Operands(rt);
  const A = ins.map((a) => io.input(a, n, 4));
  const O = io.output(out, n, 4);
  io.commit();
  const T = threadsFor(rt, n, groups);
  const plan = new Plan(T);
  split(groups, T).forEach(([g0, g1], t) => {
    if (g1 <= g0) return;
    const ptrs = [...A.map((a) => a + g0 * 16), O + g0 * 16];
    if (fn === 'elu' || fn === 'eluGrad') plan.push(t, fn, ...ptrs, g1 - g0, f32Bits(alpha));
    else plan.push(t, fn, ...ptrs, g1 - g0);
  });
  rt.run(plan.lists);
  io.finish();
}

/** Per-row sums (and Σa·b for rowDot2) for rows [0, rows), split over threads. */
function rowPass(rt: WasmRuntime, plan: Plan, fn: 'rowSum' | 'rowSqDev' | 'rowDot2', a: number, b: number, rows: number, inner: number,
                 param: number, out: number, out2: number, T: number): void {
  split(rows, T).forEach(([r0, r1], t) => {
    if (r1 <= r0) return;
    const o = r0 * inner * 4;
    if (fn === 'rowDot2') plan.push(t, fn, a + o, b + o, r1 - r0, inner, param + r0 * 4, out + r0 * 4, out2 + r0 * 4);
    else plan.push(t, fn, a + o, b + o, r1 - r0, inner, param + r0 * 4, out + r0 * 4);
  });
}

/** Σ over outer of the per-row values `v[o·c + ch]`, in float64. */
function perChannel(v: Float32Array, at: number, outer: number, c: number, out: Float64Array): void {
  out.fill(0);
  let p = at >> 2;
  for (let o = 0; o < outer; o++) for (let ch = 0; ch < c; ch++) out[ch] += v[p++]!;
}

/** Writes per-channel values `vals[ch]` once per row (row r has channel r mod c). */
function expand(rt: WasmRuntime, at: number, vals: ArrayLike<number>, outer: number, c: number): void {
  const f32 = rt.f32;
  let p = at >> 2;
  for (let o = 0; o < outer; o++) for (let ch = 0; ch < c; ch++) f32[p++] = vals[ch]!;
}

export function channelMomentsWasm(rt: WasmRuntime, x: Float32Array, mean: Float32Array, varB: Float32Array,
                                   outer: number, c: number, inner: number): void {
  const rows = outer * c, n = rows * inner, m = outer * inner;
  const io = new Operands(rt);
  const X = io.input(x, n), S = io.scratch(rows * 4), MU = io.scratch(rows * 4);
  io.commit();
  const T = threadsFor(rt, n, rows);
  const sums = new Float64Array(c);
  let plan = new Plan(T);
  rowPass(rt, plan, 'rowSum', X, X, rows, inner, S, S, 0, T);
  rt.run(plan.lists);
  perChannel(rt.f32, S, outer, c, sums);
  for (let ch = 0; ch < c; ch++) mean[ch] = sums[ch]! / m;
  // Squared deviations from the float32 mean, as the reference computes them.
  expand(rt, MU, mean, outer, c);
  plan = new Plan(T);
  rowPass(rt, plan, 'rowSqDev', X, X, rows, inner, MU, S, 0, T);
  rt.run(plan.lists);
  perChannel(rt.f32, S, outer, c, sums);
  for (let ch = 0; ch < c; ch++) varB[ch] = sums[ch]! / m;
}

/**
 * rowAffine over every row: Y = ((X − mu) − XH·cc)·s with per-channel mu, s, cc (XH < 0: the
 * plain normalisation), on operands already placed by `io`; its per-row parameters go in scratch.
 */
function affine(rt: WasmRuntime, io: Operands, X: number, XH: number, mu: ArrayLike<number>, s: ArrayLike<number>,
                cc: ArrayLike<number> | null, Y: number, outer: number, c: number, inner: number): void {
  const rows = outer * c, n = rows * inner;
  const MU = io.scratch(rows * 4), SC = io.scratch(rows * 4), CC = cc ? io.scratch(rows * 4) : 0;
  rt.commit();
  expand(rt, MU, mu, outer, c);
  expand(rt, SC, s, outer, c);
  if (cc) expand(rt, CC, cc, outer, c);
  const T = threadsFor(rt, n, rows);
  const plan = new Plan(T);
  split(rows, T).forEach(([r0, r1], t) => {
    if (r1 <= r0) return;
    const o = r0 * inner * 4;
    plan.push(t, 'rowAffine', X + o, Y + o, r1 - r0, inner, MU + r0 * 4, SC + r0 * 4, XH >= 0 ? XH + o : -1, CC + r0 * 4);
  });
  rt.run(plan.lists);
}

export function channelNormalizeWasm(rt: WasmRuntime, x: Float32Array, mean: Float32Array, invStd: Float32Array, y: Float32Array,
                                     outer: number, c: number, inner: number): void {
  const n = outer * c * inner;
  const io = new Operands(rt);
  const X = io.input(x, n), Y = io.output(y, n);
  io.commit();
  affine(rt, io, X, -1, mean, invStd, null, Y, outer, c, inner);
  io.finish();
}

/** gx = invStd·((gy − mean(gy)) − xhat·mean(gy·xhat)), means per channel (the reference's formula divided through by M). */
export function batchNormGradWasm(rt: WasmRuntime, gy: Float32Array, xhat: Float32Array, invStd: Float32Array, gx: Float32Array,
                                  outer: number, c: number, inner: number): void {
  const rows = outer * c, n = rows * inner, m = outer * inner;
  const io = new Operands(rt);
  const G = io.input(gy, n), XH = io.input(xhat, n), GX = io.output(gx, n);
  const SG = io.scratch(rows * 4), SGX = io.scratch(rows * 4);
  io.commit();
  const T = threadsFor(rt, n, rows);
  const plan = new Plan(T);
  rowPass(rt, plan, 'rowDot2', G, XH, rows, inner, SG, SG, SGX, T);
  rt.run(plan.lists);
  const sg = new Float64Array(c), sgx = new Float64Array(c);
  perChannel(rt.f32, SG, outer, c, sg);
  perChannel(rt.f32, SGX, outer, c, sgx);
  for (let ch = 0; ch < c; ch++) { sg[ch] = sg[ch]! / m; sgx[ch] = sgx[ch]! / m; }
  affine(rt, io, G, XH, sg, invStd, sgx, GX, outer, c, inner);
  io.finish();
}

/** Per-channel normalisation (x − mean[ch])·invStd[ch] applied before the activation; plane p has channel p mod c. */
export interface PoolNorm { mean: ArrayLike<number>; invStd: ArrayLike<number>; c: number }

/**
 * 2×2 max pooling; of leakyRelu(x, slope) when a slope is given, and of leakyRelu of x normalised
 * as channelNormalizeWasm does when `norm` is given too. Planes are split over threads.
 */
export function maxPool2Wasm(rt: WasmRuntime, x: Float32Array, y: Float32Array, argmax: Int32Array, planes: number, h: number, w: number,
                             slope: number | null = null, norm: PoolNorm | null = null): void {
  const oh = h >> 1, ow = w >> 1, n = planes * h * w, no = planes * oh * ow;
  if (no === 0) return;
  const io = new Operands(rt);
  const X = io.input(x, n), Y = io.output(y, no), AM = io.output(argmax, no);
  const MU = norm ? io.scratch(planes * 4) : 0, SC = norm ? io.scratch(planes * 4) : 0;
  io.commit();
  if (norm) {
    expand(rt, MU, norm.mean, planes / norm.c, norm.c);
    expand(rt, SC, norm.invStd, planes / norm.c, norm.c);
  }
  const T = threadsFor(rt, n, planes);
  const plan = new Plan(T);
  split(planes, T).forEach(([p0, p1], t) => {
    if (p1 <= p0) return;
    const args = [X + p0 * h * w * 4, Y + p0 * oh * ow * 4, AM + p0 * oh * ow * 4, p1 - p0, h, w, p0 * h * w] as const;
    if (slope === null) plan.push(t, 'maxPool2', ...args);
    else if (!norm) plan.push(t, 'leakyMaxPool2', ...args, f32Bits(slope));
    else plan.push(t, 'normLeakyMaxPool2', ...args, f32Bits(slope), MU + p0 * 4, SC + p0 * 4);
  });
  rt.run(plan.lists);
  io.finish();
}

/**
 * The input gradient of 2×2 max pooling of leakyRelu(x, slope) (h and w even): gx written densely
 * from gy, argmax and x (see leakyMaxPool2Grad in pointwise.ts); planes are split over threads.
 */
export function leakyMaxPool2GradWasm(rt: WasmRuntime, gy: Float32Array, argmax: Int32Array, x: Float32Array, gx: Float32Array,
                                      planes: number, h: number, w: number, slope: number): void {
  const oh = h >> 1, ow = w >> 1, n = planes * h * w, no = planes * oh * ow;
  if (n === 0) return;
  const io = new Operands(rt);
  const G = io.input(gy, no), AM = io.input(argmax, no), X = io.input(x, n), GX = io.output(gx, n);
  io.commit();
  const T = threadsFor(rt, n, planes);
  const plan = new Plan(T);
  split(planes, T).forEach(([p0, p1], t) => {
    if (p1 <= p0) return;
    plan.push(t, 'leakyMaxPool2Grad', G + p0 * oh * ow * 4, AM + p0 * oh * ow * 4, X + p0 * h * w * 4, GX + p0 * h * w * 4,
      p1 - p0, h, w, p0 * h * w, f32Bits(slope));
  });
  rt.run(plan.lists);
  io.finish();
}

/** gx += scatter of gy at argmax (one thread: indices may in general repeat). */
export function scatterAddWasm(rt: WasmRuntime, gy: Float32Array, argmax: Int32Array, gx: Float32Array): void {
  const no = gy.length, n = gx.length;
  if (no === 0) return;
  const io = new Operands(rt);
  const G = io.input(gy, no), AM = io.input(argmax, no), GX = io.inout(gx, n);
  io.commit();
  const plan = new Plan(1);
  plan.push(0, 'scatterAdd', G, AM, GX, no);
  rt.run(plan.lists);
  io.finish();
}

/** ×2 nearest upsampling (forward) or its gradient (sum of each 2×2 block), over nc·h input rows of w. */
export function upsample2Wasm(rt: WasmRuntime, src: Float32Array, dst: Float32Array, nc: number, h: number, w: number, grad: boolean): void {
  const rows = nc * h, small = rows * w, big = 4 * small;
  if (small === 0) return;
  const io = new Operands(rt);
  const S = io.input(src, grad ? big : small), D = io.output(dst, grad ? small : big);
  io.commit();
  const T = threadsFor(rt, big, rows);
  const plan = new Plan(T);
  split(rows, T).forEach(([r0, r1], t) => {
    if (r1 <= r0) return;
    if (grad) plan.push(t, 'upsample2Grad', S + r0 * 4 * w * 4, D + r0 * w * 4, r1 - r0, w);
    else plan.push(t, 'upsample2', S + r0 * w * 4, D + r0 * 4 * w * 4, r1 - r0, w);
  });
  rt.run(plan.lists);
  io.finish();
}
