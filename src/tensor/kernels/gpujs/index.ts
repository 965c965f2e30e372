/**
 * The `gpujs` backend: float32 kernels compiled by gpu.js 2.24.1 (GLSL through headless-gl /
 * WebGL, WGSL through WebGPU, generated wasm, or plain JS in its `cpu` mode).
 *
 * Two ways to drive it, one set of operations (ops.ts, through the table in plan.ts):
 * - in-process: gpu.js's synchronous modes ('headlessgl' / 'webgl' / 'webgl2', 'webasm', 'cpu')
 *   serve the engine's synchronous kernel calls directly;
 * - the worker bridge (bridge.ts): gpu.js lives in a worker thread that awaits every kernel and
 *   the calling thread blocks until it is done. WebGPU kernels return Promises, so 'webgpu'
 *   always uses it; any other mode can (CI tests the bridge in 'cpu' / 'webasm' mode).
 * Intermediates inside an op (im2col columns, BatchNorm sums) stay on the device (gpu.js
 * pipeline mode); between ops data returns to host arrays, which the engine owns.
 *
 * Provided: gemm, conv2d, conv2dGradInput, conv2dGradWeight, unary, unaryGrad, maxPool2d,
 * upsampleNearest, upsampleNearestGrad, channelNormalize, channelMoments, batchNormGrad.
 * binary/reduce (arbitrary strides/axes) and maxPool2dGrad (a scatter) fall back to `ts`, as
 * does all float64 work. maxPool2d on NaN inputs does not propagate NaN (GLSL has no portable isnan).
 *
 * Environment (read by `gpujsOptionsFromEnv`, used by the gpujs entry in ../../builtin-backends.ts):
 *   SVDD_GPUJS_MODE    gpu | webgl | webgl2 | headlessgl | webgpu | webasm | cpu: the gpu.js mode of
 *                      the gpujs backend. Default: 'webgpu' when `auto` detection found a real
 *                      WebGPU adapter (and no real GL renderer), else 'gpu' (gpu.js's best GL
 *                      backend, else its webasm backend).
 *   SVDD_GPUJS_WORKER  1: run through the worker bridge in any mode (webgpu always does); 0 or
 *                      unset: in-process for the synchronous modes.
 *   GPUJS_WEBGPU_DIR   folder whose node_modules holds the `webgpu` npm package (Dawn) that gives
 *                      Node a navigator.gpu; default: wherever Node resolves `webgpu` from here.
 *   SVDD_NO_GPU        1: `auto` never probes for a GPU (and never picks gpujs).
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import type { Backend, KernelSet } from '../types.ts';
import { tsKernels } from '../ts/index.ts';
import { bridgeKernels, GpujsWorkerBridge } from './bridge.ts';
import type { GpujsMode } from './gpu-types.ts';
import { loadGpujs } from './gpu-types.ts';
import type { EngineOptions } from './ops.ts';
import { GpujsEngine, runAsync, runSync } from './ops.ts';
import type { GpujsKernelName, KernelArgs } from './plan.ts';
import { buildKernels, GPUJS_KERNELS, planKernel, runReference } from './plan.ts';
import { isRealAdapter, probeWebGpu, SOFTWARE_RENDERER } from './webgpu-env.ts';

export type { GpujsMode } from './gpu-types.ts';
export type { EngineOptions } from './ops.ts';
export { GPUJS_KERNELS } from './plan.ts';

export const GPUJS_MODES: readonly GpujsMode[] = ['gpu', 'webgl', 'webgl2', 'headlessgl', 'webgpu', 'webasm', 'cpu'];

export interface GpujsBackendOptions extends EngineOptions {
  /** gpu.js mode; default 'gpu' (gpu.js's best GL backend, else its webasm backend). 'webgpu' always runs in the worker. */
  mode?: GpujsMode;
  /** Run gpu.js in a worker thread behind the synchronous bridge (forced for 'webgpu'). */
  worker?: boolean;
  /** Worker only: folder whose node_modules holds `webgpu` (default GPUJS_WEBGPU_DIR). */
  webgpuDir?: string;
  /** Worker only: initial size of the shared operand buffer in bytes (it grows on demand). */
  initialSharedBytes?: number;
}

/** A gpujs backend plus what gpu.js actually chose. */
export interface GpujsBackend extends Backend {
  /** The mode gpu.js resolved to ('headlessgl', 'webgl2', 'webgpu', 'webasm', 'cpu', ...). */
  readonly mode: string;
  /** Whether gpu.js runs in a worker thread behind the synchronous bridge. */
  readonly worker: boolean;
  /** Number of kernels compiled so far (one per op and shape). */
  compiledKernels(): number;
  /** Size of the bridge's shared operand buffer in bytes (0 in-process). */
  sharedBufferBytes(): number;
  dispose(): Promise<void>;
}

/**
 * Something `disposeGpujsBackend` must release: an in-process engine or a worker bridge. Module-level
 * on purpose, as wasm's: it reaches instances made without an engine (tests, scripts).
 */
const live = new Set<{ dispose(): unknown }>();

function newEngine(mode: GpujsMode, opts: EngineOptions): GpujsEngine {
  const lib = loadGpujs();
  const e = new GpujsEngine(new lib.GPU({ mode }), lib, opts);
  live.add(e);
  return e;
}

function engineOptions(opts: GpujsBackendOptions): EngineOptions {
  return {
    ...(opts.maxChunkElements !== undefined ? { maxChunkElements: opts.maxChunkElements } : {}),
    ...(opts.rowWidth !== undefined ? { rowWidth: opts.rowWidth } : {}),
  };
}

/** The float32 kernel set over one in-process engine, driven synchronously; the rest goes to `ts`. */
function syncKernels(e: GpujsEngine): Partial<KernelSet> {
  return buildKernels(<K extends GpujsKernelName>(name: K, args: KernelArgs<K>): void => {
    const op = planKernel(e, name, args);
    if (op) runSync(op);
    else runReference(name, args);
  });
}

/** gpu.js's CPU modes: what it falls back to without a usable GPU. */
const CPU_MODES = new Set(['cpu', 'webasm']);
/** The log's account of a gpujs backend: the mode gpu.js resolved to, and whether that is the CPU. */
export function gpujsDetail(mode: string, worker: boolean): string {
  return `gpu.js ${mode} mode${CPU_MODES.has(mode) ? ', on the CPU: no GPU was used' : ''}${worker ? ', in a worker thread' : ''}`;
}

/**
 * Creates the `gpujs` backend (float32 kernels; float64 falls back to `ts`). Register it with
 * `registerBackend`, or let the engine start it (`engine.use('gpujs')`, see ../../engine.ts). In the worker
 * (always for 'webgpu') the promise rejects with the worker's reason if gpu.js cannot run a kernel.
 */
export async function createGpujsBackend(opts: GpujsBackendOptions = {}): Promise<GpujsBackend> {
  const mode = opts.mode ?? 'gpu';
  if (opts.worker || mode === 'webgpu') {
    const bridge = await GpujsWorkerBridge.start({
      mode, engine: engineOptions(opts),
      ...(opts.webgpuDir !== undefined ? { webgpuDir: opts.webgpuDir } : {}),
      ...(opts.initialSharedBytes !== undefined ? { initialSharedBytes: opts.initialSharedBytes } : {}),
    });
    live.add(bridge);
    return {
      name: 'gpujs', mode: bridge.mode, worker: true, detail: gpujsDetail(bridge.mode, true),
      kernels: { float32: bridgeKernels(bridge) },
      compiledKernels: () => bridge.compiledKernels(),
      sharedBufferBytes: () => bridge.sharedBytes,
      dispose: async () => { if (live.delete(bridge)) await bridge.dispose(); },
    };
  }
  const e = newEngine(mode, engineOptions(opts));
  return {
    name: 'gpujs', mode: e.mode, worker: false, detail: gpujsDetail(e.mode, false),
    kernels: { float32: syncKernels(e) },
    compiledKernels: () => e.compiledKernels,
    sharedBufferBytes: () => 0,
    dispose: async () => { if (live.delete(e)) await e.dispose(); },
  };
}

/**
 * The backend options the environment asks for (see the header). `detected` is the mode `auto`
 * detection found a real GPU through, used when SVDD_GPUJS_MODE is unset.
 */
export function gpujsOptionsFromEnv(detected?: GpujsMode | null, env: NodeJS.ProcessEnv = process.env): GpujsBackendOptions {
  const raw = env['SVDD_GPUJS_MODE']?.trim();
  if (raw && !(GPUJS_MODES as readonly string[]).includes(raw)) {
    throw new Error(`SVDD_GPUJS_MODE='${raw}' is not a gpu.js mode (expected ${GPUJS_MODES.join(', ')})`);
  }
  const mode = (raw || detected || 'gpu') as GpujsMode;
  const worker = env['SVDD_GPUJS_WORKER'] === '1' || mode === 'webgpu';
  return { mode, worker };
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
 * The same operations driven asynchronously in this thread (each gpu.js call awaited), for
 * kernel-level parity and benchmarks. Needs `navigator.gpu` (e.g. the `webgpu` npm package,
 * see installNavigatorGpu) before the call in 'webgpu' mode. Arrays must be Float32Array.
 */
export async function createGpujsAsyncKernels(opts: GpujsBackendOptions = {}): Promise<GpujsAsyncKernels> {
  const e = newEngine(opts.mode ?? 'webgpu', engineOptions(opts));
  const own = buildKernels(async <K extends GpujsKernelName>(name: K, args: KernelArgs<K>): Promise<void> => {
    for (const a of args as unknown as unknown[]) {
      if (a instanceof Float64Array) throw new Error('gpujs async kernels: float32 only');
    }
    const op = planKernel(e, name, args);
    if (op) await runAsync(op);
    else runReference(name, args);
  });
  const kernels: AsyncKernels = {
    ...own,
    binary: async (...args) => tsKernels.binary(...args),
    reduce: async (...args) => tsKernels.reduce(...args),
    maxPool2dGrad: async (...args) => tsKernels.maxPool2dGrad(...args),
    // No fused kernels here: the autograd op composes unary and maxPool2d on this backend.
    leakyMaxPool2d: async (...args) => tsKernels.leakyMaxPool2d(...args),
    leakyMaxPool2dGrad: async (...args) => tsKernels.leakyMaxPool2dGrad(...args),
    normLeakyMaxPool2d: async (...args) => tsKernels.normLeakyMaxPool2d(...args),
  };
  return {
    mode: e.mode, provided: new Set<keyof KernelSet>(GPUJS_KERNELS), kernels,
    dispose: async () => { if (live.delete(e)) await e.dispose(); },
  };
}

/** Destroys every gpujs engine and worker still alive (kernels, GL contexts, WebGPU devices, wasm pools). */
export async function disposeGpujsBackend(): Promise<void> {
  const all = [...live];
  live.clear();
  await Promise.all(all.map(async (e) => { await e.dispose(); }));
}

export interface RealGpuInfo { real: boolean; mode: string; renderer: string }

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
 * The headless-gl renderer, if gpu.js can open a GL context here (needs the optional `gl`
 * package and a display). Never throws.
 */
export function detectGlGpu(): RealGpuInfo | undefined {
  try {
    const { GPU } = loadGpujs();
    if (!GPU.isHeadlessGLSupported) return undefined;
    const require = createRequire(import.meta.url);
    const createGl = require('gl') as (w: number, h: number) => GlLike | null;
    const gl = createGl(1, 1);
    if (!gl) return undefined;
    const dbg = gl.getExtension('WEBGL_debug_renderer_info');
    const reported = String(dbg ? gl.getParameter(dbg.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
    gl.getExtension('STACKGL_destroy_context')?.destroy();
    // headless-gl 8 reports only "ANGLE" and has no debug-renderer extension; ask glxinfo which
    // driver the display uses. Unknown counts as not real (Xvfb, the usual headless display, is llvmpipe).
    const driver = process.env['LIBGL_ALWAYS_SOFTWARE'] ? 'software (LIBGL_ALWAYS_SOFTWARE)' : glxRenderer();
    const renderer = driver ? `${reported} on ${driver}` : `${reported} (driver unknown: glxinfo unavailable)`;
    return { real: driver !== undefined && !SOFTWARE_RENDERER.test(renderer), mode: 'headlessgl', renderer };
  } catch {
    return undefined;
  }
}

/**
 * The WebGPU adapter: this thread's `navigator.gpu` when one is installed (scripts), else a
 * short-lived probe thread that loads the `webgpu` package (GPUJS_WEBGPU_DIR). Real only when
 * isFallbackAdapter is false and the name is not a software rasterizer. Never throws.
 */
export async function detectWebGpu(): Promise<RealGpuInfo | undefined> {
  try {
    const nav = (globalThis as { navigator?: NavigatorGpuLike }).navigator;
    if (nav?.gpu) {
      const adapter = await nav.gpu.requestAdapter();
      if (!adapter) return undefined;
      const info = adapter.info ?? {};
      const fallback = adapter.isFallbackAdapter ?? info.isFallbackAdapter ?? true;
      const renderer = [info.vendor, info.architecture, info.device, info.description].filter((s) => s).join(' ') || 'unknown adapter';
      return { real: fallback === false && !SOFTWARE_RENDERER.test(renderer), mode: 'webgpu', renderer };
    }
    const p = await probeWebGpu();
    if (!p.available) return undefined;
    return { real: isRealAdapter(p), mode: 'webgpu', renderer: p.renderer };
  } catch {
    return undefined;
  }
}

/**
 * Whether a real (hardware) GPU is reachable from gpu.js here: a headless-gl context whose
 * renderer is not a software rasterizer, or a WebGPU adapter with isFallbackAdapter false
 * (a real GL renderer is preferred: it needs no worker thread). Never throws.
 */
export async function detectRealGpu(): Promise<RealGpuInfo> {
  const found = [detectGlGpu(), await detectWebGpu()].filter((f): f is RealGpuInfo => f !== undefined);
  return found.find((f) => f.real) ?? found[0] ?? { real: false, mode: 'cpu', renderer: 'none' };
}
