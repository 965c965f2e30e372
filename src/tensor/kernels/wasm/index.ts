/**
 * The `wasm` backend: float32 GEMM and convolutions as generated WebAssembly SIMD kernels (see
 * kernels.ts), optionally spread over a worker pool sharing one memory, plus the memory-bound
 * kernels the networks spend time in (leaky ReLU, BatchNorm statistics / normalisation /
 * gradient, 2×2 max pooling, ×2 upsampling: pointwise.ts), whose branch-free SIMD loops beat the
 * reference even after copying operands into wasm memory. Every other kernel, and all float64
 * work, falls back to the `ts` reference through the registry.
 */
import os from 'node:os';
import v8 from 'node:v8';
import type { Backend, ConvGeom, FloatArray, KernelSet, UnaryName } from '../types.ts';
import { tsKernels } from '../ts/index.ts';
import { floatArrayLike } from '../float-array.ts';
import { buildKernelModule, relaxedProbeModule } from './kernels.ts';
import { checkWinogradTileEnv, conv2dGradInputWasm, conv2dGradWeightWasm, conv2dWasm, gemmWasm } from './ops.ts';
import { MAX_WASM_THREADS, WasmRuntime, checkWasmThreads } from './runtime.ts';
import {
  activationWasm, batchNormGradWasm, channelMomentsWasm, channelNormalizeWasm, leakyMaxPool2GradWasm, leakyWasm, maxPool2Wasm, scatterAddWasm,
  upsample2Wasm,
} from './pointwise-ops.ts';

export interface WasmFeatures { simd: boolean; relaxedSimd: boolean; threads: boolean }
export interface WasmBackendOptions { threads?: number }

/** 2 GiB: the most a signed i32 byte address reaches; shared memories must declare a maximum. */
const MAX_PAGES = 32768;

/** Smaller arrays are cheaper to copy than to track as heap blocks. */
const HEAP_MIN_FLOATS = 1 << 14;

/**
 * Module-level on purpose: V8's flags are process-wide and must be set before the first module is
 * compiled, so the probe (which sets them) runs once per process.
 */
let features: WasmFeatures | undefined;

/** What this engine supports. Turns on relaxed SIMD first (Node 20 keeps it behind a flag). */
export function wasmFeatures(): WasmFeatures {
  if (features) return features;
  // V8 reads these flags when it validates/compiles a module, so they must be set before ours.
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  // The kernels run long single calls, which baseline (Liftoff) code would never tier up out of.
  v8.setFlagsFromString('--no-liftoff');
  const simd = WebAssembly.validate(buildKernelModule({ relaxedSimd: false, shared: false, maximumPages: 1 }));
  const relaxedSimd = simd && WebAssembly.validate(relaxedProbeModule());
  let threads = false;
  try {
    threads = typeof SharedArrayBuffer === 'function'
      && WebAssembly.validate(buildKernelModule({ relaxedSimd: false, shared: true, maximumPages: 1 }))
      && new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer;
  } catch { threads = false; }
  features = { simd, relaxedSimd, threads };
  return features;
}

/**
 * The unary functions with a SIMD kernel, and null for those left to the `ts` reference. A table
 * over every UnaryName, so that a new function must be decided on here (the type check says so).
 */
type UnaryWasm = (rt: WasmRuntime, x: Float32Array, out: Float32Array, p: number) => void;
const unaryWasm: Record<UnaryName, UnaryWasm | null> = {
  leakyRelu: (rt, x, out, p) => leakyWasm(rt, x, null, out, x.length, p),
  sigmoid: (rt, x, out, p) => activationWasm(rt, 'sigmoid', [x], out, x.length, p),
  elu: (rt, x, out, p) => activationWasm(rt, 'elu', [x], out, x.length, p),
  relu: null, exp: null, log: null, neg: null, sqrt: null, abs: null, square: null,
};
type UnaryGradWasm = (rt: WasmRuntime, x: Float32Array, y: Float32Array, gy: Float32Array, gx: Float32Array, p: number) => void;
const unaryGradWasm: Record<UnaryName, UnaryGradWasm | null> = {
  leakyRelu: (rt, x, _y, gy, gx, p) => leakyWasm(rt, x, gy, gx, x.length, p),
  sigmoid: (rt, x, y, gy, gx, p) => activationWasm(rt, 'sigmoidGrad', [y, gy], gx, x.length, p),
  elu: (rt, x, y, gy, gx, p) => activationWasm(rt, 'eluGrad', [x, y, gy], gx, x.length, p),
  relu: null, exp: null, log: null, neg: null, sqrt: null, abs: null, square: null,
};

/**
 * Every runtime created in the process, module-level on purpose: disposeWasmBackend and the memory
 * figures reach runtimes made without an engine (tests, benchmarks); an engine disposes its own.
 */
const live = new Set<WasmRuntime>();

const isF32 = (...xs: FloatArray[]): boolean => xs.every((x) => x instanceof Float32Array);

/**
 * Compiles the kernels and starts `threads − 1` workers (default: one thread per available
 * core). Call `disposeWasmBackend()` to stop the workers (they never keep a process alive).
 */
export async function createWasmBackend(opts: WasmBackendOptions = {}): Promise<Backend> {
  // A bad SVDD_WINOGRAD_TILE stops the backend here rather than running the default tile silently.
  checkWinogradTileEnv();
  const feat = wasmFeatures();
  if (!feat.simd) throw new Error('wasm backend: this engine lacks WebAssembly SIMD');
  let threads = opts.threads ?? Math.min(MAX_WASM_THREADS, os.availableParallelism());
  checkWasmThreads(threads);
  if (!feat.threads) threads = 1;
  // A shared memory even for one thread: tensor storage lives in it, and only a shared memory
  // keeps existing views valid when it grows.
  const shared = feat.threads;
  const module = new WebAssembly.Module(buildKernelModule({ relaxedSimd: feat.relaxedSimd, shared, maximumPages: MAX_PAGES }));
  const rt = await WasmRuntime.create(module, threads, MAX_PAGES, shared);
  live.add(rt);

  const float32: Partial<KernelSet> = {
    gemm(a, b, c, m, n, k, transA, transB, accumulate) {
      if (!isF32(a, b, c)) return tsKernels.gemm(a, b, c, m, n, k, transA, transB, accumulate);
      gemmWasm(rt, a as Float32Array, b as Float32Array, c as Float32Array, m, n, k, transA, transB, accumulate);
    },
    conv2d(x, w, y, g: ConvGeom) {
      if (!isF32(x, w, y)) return tsKernels.conv2d(x, w, y, g);
      conv2dWasm(rt, x as Float32Array, w as Float32Array, y as Float32Array, g);
    },
    conv2dGradInput(gy, w, gx, g: ConvGeom) {
      if (!isF32(gy, w, gx)) return tsKernels.conv2dGradInput(gy, w, gx, g);
      conv2dGradInputWasm(rt, gy as Float32Array, w as Float32Array, gx as Float32Array, g);
    },
    conv2dGradWeight(x, gy, gw, g: ConvGeom) {
      if (!isF32(x, gy, gw)) return tsKernels.conv2dGradWeight(x, gy, gw, g);
      conv2dGradWeightWasm(rt, x as Float32Array, gy as Float32Array, gw as Float32Array, g);
    },
    // Memory-bound kernels: leaky ReLU, sigmoid, ELU, BatchNorm, 2×2 pooling and ×2 upsampling; other cases go to the reference.
    unary(name, x, out, p) {
      const own = unaryWasm[name];
      if (!own || !isF32(x, out)) return tsKernels.unary(name, x, out, p);
      own(rt, x as Float32Array, out as Float32Array, p);
    },
    unaryGrad(name, x, y, gy, gx, p) {
      const own = unaryGradWasm[name];
      if (!own || !isF32(x, y, gy, gx)) return tsKernels.unaryGrad(name, x, y, gy, gx, p);
      own(rt, x as Float32Array, y as Float32Array, gy as Float32Array, gx as Float32Array, p);
    },
    channelMoments(x, mean, varB, outer, c, inner) {
      if (inner < 4 || !isF32(x, mean, varB)) return tsKernels.channelMoments(x, mean, varB, outer, c, inner);
      channelMomentsWasm(rt, x as Float32Array, mean as Float32Array, varB as Float32Array, outer, c, inner);
    },
    channelNormalize(x, mean, invStd, y, outer, c, inner) {
      if (inner < 4 || !isF32(x, mean, invStd, y)) return tsKernels.channelNormalize(x, mean, invStd, y, outer, c, inner);
      channelNormalizeWasm(rt, x as Float32Array, mean as Float32Array, invStd as Float32Array, y as Float32Array, outer, c, inner);
    },
    batchNormGrad(gy, xhat, invStd, gx, outer, c, inner) {
      if (inner < 4 || !isF32(gy, xhat, invStd, gx)) return tsKernels.batchNormGrad(gy, xhat, invStd, gx, outer, c, inner);
      batchNormGradWasm(rt, gy as Float32Array, xhat as Float32Array, invStd as Float32Array, gx as Float32Array, outer, c, inner);
    },
    maxPool2d(x, y, argmax, n, c, h, w, k) {
      if (k !== 2 || !isF32(x, y)) return tsKernels.maxPool2d(x, y, argmax, n, c, h, w, k);
      maxPool2Wasm(rt, x as Float32Array, y as Float32Array, argmax, n * c, h, w);
    },
    maxPool2dGrad(gy, argmax, gx) {
      if (!isF32(gy, gx)) return tsKernels.maxPool2dGrad(gy, argmax, gx);
      scatterAddWasm(rt, gy as Float32Array, argmax, gx as Float32Array);
    },
    // Fused where the kernels above would take the wasm path; elsewhere literally those kernels in turn.
    leakyMaxPool2d(x, y, argmax, n, c, h, w, k, slope) {
      if (k !== 2 || !isF32(x, y)) {
        const act = floatArrayLike(x);
        float32.unary!('leakyRelu', x, act, slope);
        return float32.maxPool2d!(act, y, argmax, n, c, h, w, k);
      }
      maxPool2Wasm(rt, x as Float32Array, y as Float32Array, argmax, n * c, h, w, slope);
    },
    normLeakyMaxPool2d(x, mean, invStd, y, argmax, n, c, h, w, k, slope) {
      if (k !== 2 || h * w < 4 || !isF32(x, mean, invStd, y)) {
        const xhat = floatArrayLike(x);
        float32.channelNormalize!(x, mean, invStd, xhat, n, c, h * w);
        return float32.leakyMaxPool2d!(xhat, y, argmax, n, c, h, w, k, slope);
      }
      maxPool2Wasm(rt, x as Float32Array, y as Float32Array, argmax, n * c, h, w, slope, { mean, invStd, c });
    },
    leakyMaxPool2dGrad(gy, argmax, x, gx, n, c, h, w, k, slope) {
      if (k !== 2 || h % 2 !== 0 || w % 2 !== 0 || !isF32(gy, x, gx)) {
        const g = floatArrayLike(x);
        float32.maxPool2dGrad!(gy, argmax, g);
        return float32.unaryGrad!('leakyRelu', x, x, g, gx, slope);
      }
      leakyMaxPool2GradWasm(rt, gy as Float32Array, argmax, x as Float32Array, gx as Float32Array, n * c, h, w, slope);
    },
    upsampleNearest(x, y, nc, h, w, f) {
      if (f !== 2 || !isF32(x, y)) return tsKernels.upsampleNearest(x, y, nc, h, w, f);
      upsample2Wasm(rt, x as Float32Array, y as Float32Array, nc, h, w, false);
    },
    upsampleNearestGrad(gy, gx, nc, h, w, f) {
      if (f !== 2 || !isF32(gy, gx)) return tsKernels.upsampleNearestGrad(gy, gx, nc, h, w, f);
      upsample2Wasm(rt, gy as Float32Array, gx as Float32Array, nc, h, w, true);
    },
  };
  return {
    name: 'wasm', kernels: { float32 },
    // Large float32 tensors live in wasm memory, where kernels use them without copying.
    alloc: (dtype, length) => (dtype === 'float32' && length >= HEAP_MIN_FLOATS ? rt.heapArray(length) : null),
    dispose: async () => { if (live.delete(rt)) await rt.dispose(); },
  };
}

/** Bytes of wasm memory held by every live backend (steady once shapes repeat). */
export function wasmMemoryBytes(): number {
  let total = 0;
  for (const rt of live) total += rt.memoryBytes;
  return total;
}

/** Bytes of tensor storage placed in wasm memory by every live backend (a high-water mark). */
export function wasmHeapBytes(): number {
  let total = 0;
  for (const rt of live) total += rt.heapBytes;
  return total;
}

/** Stops the worker pools of every backend created so far; they must not be used afterwards. */
export async function disposeWasmBackend(): Promise<void> {
  const all = [...live];
  live.clear();
  await Promise.all(all.map((rt) => rt.dispose()));
}
