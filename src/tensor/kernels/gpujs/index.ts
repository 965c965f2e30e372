/**
 * The `gpujs` backend: float32 kernels compiled by gpu.js 2.24.1 (GLSL through headless-gl /
 * WebGL, WGSL through WebGPU, generated wasm, or plain JS in its `cpu` mode).
 *
 * The engine's kernel interface is synchronous, so the backend runs in gpu.js's synchronous
 * modes: 'headlessgl' / 'webgl' / 'webgl2' (GPU), 'webasm' and 'cpu'. WebGPU kernels return
 * Promises; the same operations are offered asynchronously by `createGpujsAsyncKernels` (used by
 * scripts/gpu-parity.ts), but cannot back the synchronous training path.
 *
 * Provided: gemm, conv2d, conv2dGradInput, conv2dGradWeight, unary, unaryGrad, maxPool2d,
 * upsampleNearest, upsampleNearestGrad, channelNormalize, channelMoments, batchNormGrad.
 * binary/reduce (arbitrary strides/axes) and maxPool2dGrad (a scatter) fall back to `ts`, as
 * does all float64 work. maxPool2d on NaN inputs does not propagate NaN (GLSL has no portable isnan).
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import type { Backend, ConvGeom, FloatArray, KernelSet, UnaryName } from '../types.ts';
import { tsKernels } from '../ts/index.ts';
import type { GpujsMode } from './gpu-types.ts';
import { loadGpujs } from './gpu-types.ts';
import type { EngineOptions, Op } from './ops.ts';
import {
  GpujsEngine, batchNormGradOp, channelMomentsOp, channelNormalizeOp, conv2dGradInputOp, conv2dGradWeightOp, conv2dOp,
  fitsOneCall, gemmOp, maxPool2dOp, runAsync, runSync, unaryGradOp, unaryOp, upsampleNearestGradOp, upsampleNearestOp,
} from './ops.ts';

export type { GpujsMode } from './gpu-types.ts';
export type { EngineOptions } from './ops.ts';

export interface GpujsBackendOptions extends EngineOptions {
  /** gpu.js mode; default 'gpu' (gpu.js's best GL backend, else its webasm backend). 'webgpu' is refused: use the async kernels. */
  mode?: GpujsMode;
}

/** A gpujs backend plus what gpu.js actually chose. */
export interface GpujsBackend extends Backend {
  /** The mode gpu.js resolved to ('headlessgl', 'webgl2', 'webasm', 'cpu', ...). */
  readonly mode: string;
  /** Number of kernels compiled so far (one per op and shape). */
  compiledKernels(): number;
  dispose(): Promise<void>;
}

const live = new Set<GpujsEngine>();

function newEngine(mode: GpujsMode, opts: EngineOptions): GpujsEngine {
  const { GPU } = loadGpujs();
  const gpu = new GPU({ mode });
  const e = new GpujsEngine(gpu, loadGpujs(), opts);
  live.add(e);
  return e;
}

const f32 = (...xs: FloatArray[]): boolean => xs.every((x) => x instanceof Float32Array);

/** The float32 kernel set over one engine, driven synchronously; non-float32 arrays go to `ts`. */
function syncKernels(e: GpujsEngine): Partial<KernelSet> {
  const run = (op: Op): void => runSync(op);
  return {
    gemm(a, b, c, m, n, k, tA, tB, acc) {
      if (!f32(a, b, c)) return tsKernels.gemm(a, b, c, m, n, k, tA, tB, acc);
      run(gemmOp(e, a as Float32Array, b as Float32Array, c as Float32Array, m, n, k, tA, tB, acc));
    },
    conv2d(x, w, y, g: ConvGeom) {
      if (!f32(x, w, y)) return tsKernels.conv2d(x, w, y, g);
      run(conv2dOp(e, x as Float32Array, w as Float32Array, y as Float32Array, g));
    },
    conv2dGradInput(gy, w, gx, g: ConvGeom) {
      if (!f32(gy, w, gx)) return tsKernels.conv2dGradInput(gy, w, gx, g);
      run(conv2dGradInputOp(e, gy as Float32Array, w as Float32Array, gx as Float32Array, g));
    },
    conv2dGradWeight(x, gy, gw, g: ConvGeom) {
      if (!f32(x, gy, gw)) return tsKernels.conv2dGradWeight(x, gy, gw, g);
      run(conv2dGradWeightOp(e, x as Float32Array, gy as Float32Array, gw as Float32Array, g));
    },
    unary(name: UnaryName, x, out, p) {
      if (!f32(x, out)) return tsKernels.unary(name, x, out, p);
      run(unaryOp(e, name, x as Float32Array, out as Float32Array, p));
    },
    unaryGrad(name: UnaryName, x, y, gy, gx, p) {
      if (!f32(x, y, gy, gx)) return tsKernels.unaryGrad(name, x, y, gy, gx, p);
      run(unaryGradOp(e, name, x as Float32Array, y as Float32Array, gy as Float32Array, gx as Float32Array, p));
    },
    maxPool2d(x, y, argmax, n, c, h, w, k) {
      if (!f32(x, y)) return tsKernels.maxPool2d(x, y, argmax, n, c, h, w, k);
      run(maxPool2dOp(e, x as Float32Array, y as Float32Array, argmax, n, c, h, w, k));
    },
    upsampleNearest(x, y, nc, h, w, f) {
      if (!f32(x, y)) return tsKernels.upsampleNearest(x, y, nc, h, w, f);
      run(upsampleNearestOp(e, x as Float32Array, y as Float32Array, nc, h, w, f));
    },
    upsampleNearestGrad(gy, gx, nc, h, w, f) {
      if (!f32(gy, gx)) return tsKernels.upsampleNearestGrad(gy, gx, nc, h, w, f);
      run(upsampleNearestGradOp(e, gy as Float32Array, gx as Float32Array, nc, h, w, f));
    },
    channelNormalize(x, mean, invStd, y, outer, c, inner) {
      if (!f32(x, mean, invStd, y)) return tsKernels.channelNormalize(x, mean, invStd, y, outer, c, inner);
      run(channelNormalizeOp(e, x as Float32Array, mean as Float32Array, invStd as Float32Array, y as Float32Array, outer, c, inner));
    },
    channelMoments(x, mean, varB, outer, c, inner) {
      if (!f32(x, mean, varB) || !fitsOneCall(e, outer, c, inner)) return tsKernels.channelMoments(x, mean, varB, outer, c, inner);
      run(channelMomentsOp(e, x as Float32Array, mean as Float32Array, varB as Float32Array, outer, c, inner));
    },
    batchNormGrad(gy, xhat, invStd, gx, outer, c, inner) {
      if (!f32(gy, xhat, invStd, gx) || !fitsOneCall(e, outer, c, inner)) return tsKernels.batchNormGrad(gy, xhat, invStd, gx, outer, c, inner);
      run(batchNormGradOp(e, gy as Float32Array, xhat as Float32Array, invStd as Float32Array, gx as Float32Array, outer, c, inner));
    },
  };
}

/**
 * Creates the `gpujs` backend (float32 kernels; float64 falls back to `ts`). Register it with
 * `registerBackend` or `registerBackendLoader('gpujs', () => createGpujsBackend())`.
 */
export async function createGpujsBackend(opts: GpujsBackendOptions = {}): Promise<GpujsBackend> {
  const mode = opts.mode ?? 'gpu';
  if (mode === 'webgpu') {
    throw new Error("gpujs: WebGPU kernels are asynchronous and the engine's kernel interface is synchronous; "
      + 'use createGpujsAsyncKernels() (parity/benchmarks) or a synchronous mode');
  }
  const e = newEngine(mode, opts);
  return {
    name: 'gpujs',
    mode: e.mode,
    kernels: { float32: syncKernels(e) },
    compiledKernels: () => e.compiledKernels,
    dispose: async () => { if (live.delete(e)) await e.dispose(); },
  };
}

/** Promise-returning twins of the float32 kernels, for gpu.js's WebGPU mode (or any mode). */
export type AsyncKernels = {
  [K in keyof KernelSet]: (...args: Parameters<KernelSet[K]>) => Promise<void>;
};

export interface GpujsAsyncKernels {
  readonly mode: string;
  /** Kernels gpujs runs; the others resolve through the `ts` reference. */
  readonly provided: ReadonlySet<keyof KernelSet>;
  readonly kernels: AsyncKernels;
  dispose(): Promise<void>;
}

/**
 * The same operations driven asynchronously (each gpu.js call awaited): the only way to run them
 * in 'webgpu' mode. Needs `navigator.gpu` (e.g. the `webgpu` npm package) before the call.
 * Arrays must be Float32Array.
 */
export async function createGpujsAsyncKernels(opts: GpujsBackendOptions = {}): Promise<GpujsAsyncKernels> {
  const e = newEngine(opts.mode ?? 'webgpu', opts);
  const F = (x: FloatArray): Float32Array => {
    if (!(x instanceof Float32Array)) throw new Error('gpujs async kernels: float32 only');
    return x;
  };
  const kernels: AsyncKernels = {
    gemm: (a, b, c, m, n, k, tA, tB, acc) => runAsync(gemmOp(e, F(a), F(b), F(c), m, n, k, tA, tB, acc)),
    conv2d: (x, w, y, g) => runAsync(conv2dOp(e, F(x), F(w), F(y), g)),
    conv2dGradInput: (gy, w, gx, g) => runAsync(conv2dGradInputOp(e, F(gy), F(w), F(gx), g)),
    conv2dGradWeight: (x, gy, gw, g) => runAsync(conv2dGradWeightOp(e, F(x), F(gy), F(gw), g)),
    unary: (name, x, out, p) => runAsync(unaryOp(e, name, F(x), F(out), p)),
    unaryGrad: (name, x, y, gy, gx, p) => runAsync(unaryGradOp(e, name, F(x), F(y), F(gy), F(gx), p)),
    maxPool2d: (x, y, am, n, c, h, w, k) => runAsync(maxPool2dOp(e, F(x), F(y), am, n, c, h, w, k)),
    upsampleNearest: (x, y, nc, h, w, f) => runAsync(upsampleNearestOp(e, F(x), F(y), nc, h, w, f)),
    upsampleNearestGrad: (gy, gx, nc, h, w, f) => runAsync(upsampleNearestGradOp(e, F(gy), F(gx), nc, h, w, f)),
    channelNormalize: (x, mu, is, y, o, c, i) => runAsync(channelNormalizeOp(e, F(x), F(mu), F(is), F(y), o, c, i)),
    channelMoments: async (x, mu, v, o, c, i) => {
      if (!fitsOneCall(e, o, c, i)) return tsKernels.channelMoments(x, mu, v, o, c, i);
      return runAsync(channelMomentsOp(e, F(x), F(mu), F(v), o, c, i));
    },
    batchNormGrad: async (gy, xh, is, gx, o, c, i) => {
      if (!fitsOneCall(e, o, c, i)) return tsKernels.batchNormGrad(gy, xh, is, gx, o, c, i);
      return runAsync(batchNormGradOp(e, F(gy), F(xh), F(is), F(gx), o, c, i));
    },
    binary: async (...args) => tsKernels.binary(...args),
    reduce: async (...args) => tsKernels.reduce(...args),
    maxPool2dGrad: async (...args) => tsKernels.maxPool2dGrad(...args),
  };
  const provided = new Set<keyof KernelSet>((Object.keys(kernels) as (keyof KernelSet)[])
    .filter((k) => k !== 'binary' && k !== 'reduce' && k !== 'maxPool2dGrad'));
  return {
    mode: e.mode, provided, kernels,
    dispose: async () => { if (live.delete(e)) await e.dispose(); },
  };
}

/** Destroys every gpujs engine still alive (kernels, GL contexts / wasm worker pools). */
export async function disposeGpujsBackend(): Promise<void> {
  const all = [...live];
  live.clear();
  await Promise.all(all.map(async (e) => { await e.dispose(); }));
}

export interface RealGpuInfo { real: boolean; mode: string; renderer: string }

const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|software|mesa offscreen|basic render|microsoft basic/i;

/** The X display's OpenGL renderer per `glxinfo -B` (package mesa-utils), if it can be asked. */
function glxRenderer(): string | undefined {
  try {
    const out = execFileSync('glxinfo', ['-B'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
    return /OpenGL renderer string:\s*(.+)/.exec(out)?.[1]?.trim();
  } catch {
    return undefined;
  }
}

interface GlLike {
  getParameter(p: number): unknown;
  getExtension(name: string): { UNMASKED_RENDERER_WEBGL: number } | null;
  readonly RENDERER: number;
  getExtension(name: 'STACKGL_destroy_context'): { destroy(): void } | null;
}
interface GpuAdapterLike {
  readonly isFallbackAdapter?: boolean;
  readonly info?: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
}
interface NavigatorGpuLike { gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> } }

/**
 * Whether a real (hardware) GPU is reachable from gpu.js here: a headless-gl context whose
 * renderer is not a software rasterizer, or a WebGPU adapter (navigator.gpu must already be
 * installed) with isFallbackAdapter false. Never throws.
 */
export async function detectRealGpu(): Promise<RealGpuInfo> {
  const found: RealGpuInfo[] = [];
  try {
    const { GPU } = loadGpujs();
    if (GPU.isHeadlessGLSupported) {
      const require = createRequire(import.meta.url);
      const createGl = require('gl') as (w: number, h: number) => GlLike | null;
      const gl = createGl(1, 1);
      if (gl) {
        const dbg = gl.getExtension('WEBGL_debug_renderer_info');
        const reported = String(dbg ? gl.getParameter(dbg.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
        gl.getExtension('STACKGL_destroy_context')?.destroy();
        // headless-gl 8 reports only "ANGLE" and has no debug-renderer extension; ask glxinfo which
        // driver the display uses. Unknown counts as not real (Xvfb, the usual headless display, is llvmpipe).
        const driver = process.env['LIBGL_ALWAYS_SOFTWARE'] ? 'software (LIBGL_ALWAYS_SOFTWARE)' : glxRenderer();
        const renderer = driver ? `${reported} on ${driver}` : `${reported} (driver unknown: glxinfo unavailable)`;
        found.push({ real: driver !== undefined && !SOFTWARE.test(renderer), mode: 'headlessgl', renderer });
      }
    }
  } catch { /* no GL */ }
  try {
    const nav = (globalThis as { navigator?: NavigatorGpuLike }).navigator;
    const adapter = nav?.gpu ? await nav.gpu.requestAdapter() : null;
    if (adapter) {
      const info = adapter.info ?? {};
      const fallback = adapter.isFallbackAdapter ?? info.isFallbackAdapter ?? true;
      const renderer = [info.vendor, info.architecture, info.device, info.description].filter((s) => s).join(' ') || 'unknown adapter';
      found.push({ real: fallback === false && !SOFTWARE.test(renderer), mode: 'webgpu', renderer });
    }
  } catch { /* no WebGPU */ }
  return found.find((f) => f.real) ?? found[0] ?? { real: false, mode: 'cpu', renderer: 'none' };
}
