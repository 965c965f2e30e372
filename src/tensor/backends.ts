/**
 * Backend selection by name for the CLI and benchmarks: 'ts' (plain TypeScript reference),
 * 'wasm' (WebAssembly SIMD kernels on a worker pool), 'gpujs' (gpu.js kernels: a GPU through
 * headless-gl or WebGPU when present, else gpu.js's own CPU modes), 'auto' (the fastest
 * available: gpujs when a real, non-software GPU is detected, else wasm when the engine has
 * WebAssembly SIMD, else ts). SVDD_BACKEND and SVDD_THREADS set the defaults; SVDD_GPUJS_MODE,
 * SVDD_GPUJS_WORKER, GPUJS_WEBGPU_DIR and SVDD_NO_GPU steer gpujs (see kernels/gpujs/index.ts).
 */
import os from 'node:os';
import { createRequire } from 'node:module';
import { registerBackend, setBackend } from './kernels/registry.ts';
import { dropPooledBackendBlocks } from './tensor.ts';
import { createWasmBackend, disposeWasmBackend, wasmFeatures } from './kernels/wasm/index.ts';
import { MAX_WASM_THREADS } from './kernels/wasm/runtime.ts';
import type { GpujsMode } from './kernels/gpujs/gpu-types.ts';

export const BACKEND_NAMES = ['auto', 'wasm', 'ts', 'gpujs'] as const;
export { MAX_WASM_THREADS };

/** A backend setting a user gave (flag or environment) that cannot be used: one line, exit 2. */
export class BackendError extends Error {}

/**
 * The wasm thread count to use: `threads` when given (the --threads flag or a config), else
 * SVDD_THREADS, else one per core; at most MAX_WASM_THREADS. A bad SVDD_THREADS is refused even
 * when the flag overrides it (it would be a surprise the day the flag is dropped).
 */
export function resolveWasmThreads(threads: number | null = null): number {
  const env = process.env.SVDD_THREADS;
  let envThreads: number | null = null;
  if (env !== undefined && env !== '') {
    envThreads = /^[0-9]+$/.test(env) ? Number(env) : NaN;
    if (!(envThreads >= 1 && envThreads <= MAX_WASM_THREADS)) {
      throw new BackendError(`SVDD_THREADS must be an integer from 1 to ${MAX_WASM_THREADS}, got '${env}'`);
    }
  }
  if (threads !== null && !(Number.isInteger(threads) && threads >= 1 && threads <= MAX_WASM_THREADS)) {
    throw new BackendError(`--threads must be an integer from 1 to ${MAX_WASM_THREADS}, got ${threads}`);
  }
  return threads ?? envThreads ?? Math.min(MAX_WASM_THREADS, os.availableParallelism());
}

/** The backend name to use for `name` ('auto' defers to SVDD_BACKEND); refuses unknown names in one line. */
function requestedBackend(name: string): string {
  const known = (n: string): boolean => (BACKEND_NAMES as readonly string[]).includes(n);
  if (!known(name)) throw new BackendError(`unknown backend '${name}' (expected ${BACKEND_NAMES.join(', ')})`);
  if (name !== 'auto') return name;
  const env = process.env.SVDD_BACKEND;
  if (env === undefined || env === '') return 'auto';
  if (!known(env)) throw new BackendError(`SVDD_BACKEND must be one of ${BACKEND_NAMES.join(', ')}, got '${env}'`);
  return env;
}

let wasmThreads: number | null = null;
let gpujsLoaded = false;

/**
 * Looks for a hardware GPU, only where one could be reachable from gpu.js, and answers with
 * the gpu.js mode to use it through: 'gpu' for a non-software GL renderer (needs the optional
 * `gl` package), 'webgpu' for a WebGPU adapter that is not a fallback adapter (needs the
 * `webgpu` package, see GPUJS_WEBGPU_DIR; asked in a short-lived thread, so a missing or
 * broken package costs a few ms and never a crash), else null. A real GL renderer wins: it
 * runs in-process, WebGPU needs the worker bridge. SVDD_NO_GPU=1 skips the probe.
 * The gpujs environment variables are documented in kernels/gpujs/index.ts.
 */
let gpuProbe: Promise<GpujsMode | null> | null = null;
function realGpu(): Promise<GpujsMode | null> {
  // The probe may load gpu.js, open a GL context and start Dawn: once per process.
  gpuProbe ??= (async () => {
    if (process.env.SVDD_NO_GPU === '1') return null;
    let hasGl = true;
    try { createRequire(import.meta.url).resolve('gl'); } catch { hasGl = false; }
    if (hasGl) {
      const { detectGlGpu } = await import('./kernels/gpujs/index.ts');
      if (detectGlGpu()?.real) return 'gpu';
    }
    // webgpu-env does not load gpu.js: cheap when there is no usable `webgpu` package.
    const { isRealAdapter, probeWebGpu } = await import('./kernels/gpujs/webgpu-env.ts');
    return isRealAdapter(await probeWebGpu()) ? 'webgpu' : null;
  })();
  return gpuProbe;
}

/** Why the gpujs backend could not start, so `auto` does not retry (a worker start) on every call. */
let gpujsError: Error | null = null;

async function loadGpujs(): Promise<void> {
  if (gpujsLoaded) return;
  if (gpujsError) throw gpujsError;
  // Loaded on demand: gpu.js is heavy and most runs never use it.
  const { createGpujsBackend, gpujsOptionsFromEnv } = await import('./kernels/gpujs/index.ts');
  // An explicit SVDD_GPUJS_MODE needs no probe; otherwise use the GPU `auto` would find.
  const opts = gpujsOptionsFromEnv(process.env.SVDD_GPUJS_MODE ? null : await realGpu());
  try {
    registerBackend(await createGpujsBackend(opts));
  } catch (e) {
    gpujsError = e instanceof Error ? e : new Error(String(e));
    throw gpujsError;
  }
  gpujsLoaded = true;
}

/** Activates a backend; returns its name ('wasm', 'ts' or 'gpujs'). threads: wasm worker threads (default all cores). */
export async function useBackend(name: string, threads: number | null = null): Promise<string> {
  let chosen = requestedBackend(name);
  const want = resolveWasmThreads(threads);
  if (chosen === 'auto') {
    chosen = wasmFeatures().simd ? 'wasm' : 'ts';
    if (await realGpu()) {
      try {
        await loadGpujs();
        chosen = 'gpujs';
      } catch (e) {
        // A GPU that was detected but cannot run a kernel must not stop the run: say so, use the CPU.
        process.stderr.write(`gpujs backend unavailable (${(e as Error).message.split('\n')[0]}); using ${chosen}\n`);
      }
    }
  }
  if (chosen === 'wasm') {
    if (wasmThreads !== want) {
      if (wasmThreads !== null) { disposeWasmBackend(); dropPooledBackendBlocks(); }
      registerBackend(await createWasmBackend({ threads: want }));
      wasmThreads = want;
    }
  } else if (chosen === 'gpujs') {
    await loadGpujs();
  }
  return (await setBackend(chosen)).name;
}

/** Worker threads of the active wasm backend (null when none is set up). */
export function activeWasmThreads(): number | null { return wasmThreads; }

/** Stops worker threads (tests and one-shot commands exit without waiting for them anyway). */
export async function shutdownBackends(): Promise<void> {
  if (wasmThreads !== null) { await disposeWasmBackend(); dropPooledBackendBlocks(); wasmThreads = null; }
  if (gpujsLoaded) {
    const { disposeGpujsBackend } = await import('./kernels/gpujs/index.ts');
    await disposeGpujsBackend();
    gpujsLoaded = false;
  }
}
