/**
 * The one table from kernel names to gpujs operations, shared by every way of driving them: the
 * in-process synchronous backend, the Promise-returning kernels, and the worker that owns the
 * device for the worker bridge (bridge.ts / worker.ts). Adding a kernel here adds it everywhere.
 */
import type { FloatArray, KernelName, KernelSet } from '../types.ts';
import { tsKernels } from '../ts/index.ts';
import type { GpujsEngine, Op } from './ops.ts';
import {
  batchNormGradOp, channelMomentsOp, channelNormalizeOp, conv2dGradInputOp, conv2dGradWeightOp, conv2dOp,
  fitsOneCall, gemmOp, maxPool2dOp, unaryGradOp, unaryOp, upsampleNearestGradOp, upsampleNearestOp,
} from './ops.ts';

/** The kernels gpujs runs; binary/reduce (arbitrary strides) and maxPool2dGrad (a scatter) stay on `ts`. */
export const GPUJS_KERNELS = [
  'gemm', 'conv2d', 'conv2dGradInput', 'conv2dGradWeight', 'unary', 'unaryGrad', 'maxPool2d',
  'upsampleNearest', 'upsampleNearestGrad', 'channelNormalize', 'channelMoments', 'batchNormGrad',
] as const satisfies readonly KernelName[];
export type GpujsKernelName = typeof GPUJS_KERNELS[number];

export type KernelArgs<K extends KernelName> = Parameters<KernelSet[K]>;

/**
 * Argument positions each kernel writes. The worker bridge copies only these back; it copies
 * them in as well, because several ops write just a prefix of an oversized output array and the
 * rest must keep its values, exactly as in-process.
 */
export const OUTPUT_ARGS: Readonly<Record<GpujsKernelName, readonly number[]>> = {
  gemm: [2], conv2d: [2], conv2dGradInput: [2], conv2dGradWeight: [2], unary: [2], unaryGrad: [4],
  maxPool2d: [1, 2], upsampleNearest: [1], upsampleNearestGrad: [1], channelNormalize: [3],
  channelMoments: [1, 2], batchNormGrad: [3],
};

const f = (x: FloatArray): x is Float32Array => x instanceof Float32Array;

type Planner<K extends GpujsKernelName> = (e: GpujsEngine, ...args: KernelArgs<K>) => Op | null;

/** null = run the `ts` reference instead (float64 data, or a reduction too big for one call). */
const PLANS: { [K in GpujsKernelName]: Planner<K> } = {
  gemm: (e, a, b, c, m, n, k, tA, tB, acc) => (f(a) && f(b) && f(c) ? gemmOp(e, a, b, c, m, n, k, tA, tB, acc) : null),
  conv2d: (e, x, w, y, g) => (f(x) && f(w) && f(y) ? conv2dOp(e, x, w, y, g) : null),
  conv2dGradInput: (e, gy, w, gx, g) => (f(gy) && f(w) && f(gx) ? conv2dGradInputOp(e, gy, w, gx, g) : null),
  conv2dGradWeight: (e, x, gy, gw, g) => (f(x) && f(gy) && f(gw) ? conv2dGradWeightOp(e, x, gy, gw, g) : null),
  unary: (e, name, x, out, p) => (f(x) && f(out) ? unaryOp(e, name, x, out, p) : null),
  unaryGrad: (e, name, x, y, gy, gx, p) => (f(x) && f(y) && f(gy) && f(gx) ? unaryGradOp(e, name, x, y, gy, gx, p) : null),
  maxPool2d: (e, x, y, am, n, c, h, w, k) => (f(x) && f(y) ? maxPool2dOp(e, x, y, am, n, c, h, w, k) : null),
  upsampleNearest: (e, x, y, nc, h, w, s) => (f(x) && f(y) ? upsampleNearestOp(e, x, y, nc, h, w, s) : null),
  upsampleNearestGrad: (e, gy, gx, nc, h, w, s) => (f(gy) && f(gx) ? upsampleNearestGradOp(e, gy, gx, nc, h, w, s) : null),
  channelNormalize: (e, x, mu, is, y, o, c, i) => (f(x) && f(mu) && f(is) && f(y) ? channelNormalizeOp(e, x, mu, is, y, o, c, i) : null),
  channelMoments: (e, x, mu, v, o, c, i) =>
    (f(x) && f(mu) && f(v) && fitsOneCall(e, o, c, i) ? channelMomentsOp(e, x, mu, v, o, c, i) : null),
  batchNormGrad: (e, gy, xh, is, gx, o, c, i) =>
    (f(gy) && f(xh) && f(is) && f(gx) && fitsOneCall(e, o, c, i) ? batchNormGradOp(e, gy, xh, is, gx, o, c, i) : null),
};

/** The gpujs operation for one kernel call, or null when the `ts` reference must run it. */
export function planKernel<K extends GpujsKernelName>(e: GpujsEngine, name: K, args: KernelArgs<K>): Op | null {
  return (PLANS[name] as unknown as (e: GpujsEngine, ...a: KernelArgs<K>) => Op | null)(e, ...args);
}

/** Runs a kernel on the `ts` reference (the fallback of every driver). */
export function runReference<K extends KernelName>(name: K, args: KernelArgs<K>): void {
  (tsKernels[name] as unknown as (...a: KernelArgs<K>) => void)(...args);
}

/** Builds a kernel set from one per-kernel driver (sync or async), covering exactly GPUJS_KERNELS. */
export function buildKernels<R>(drive: <K extends GpujsKernelName>(name: K, args: KernelArgs<K>) => R):
  { [K in GpujsKernelName]: (...args: KernelArgs<K>) => R } {
  const out: Partial<Record<GpujsKernelName, (...args: never[]) => R>> = {};
  for (const name of GPUJS_KERNELS) out[name] = (...args: never[]) => drive(name, args as unknown as KernelArgs<typeof name>);
  return out as { [K in GpujsKernelName]: (...args: KernelArgs<K>) => R };
}
