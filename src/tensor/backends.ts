/**
 * Backend selection by name for the CLI and benchmarks: 'ts' (plain TypeScript reference),
 * 'wasm' (WebAssembly SIMD kernels on a worker pool), 'gpujs' (gpu.js kernels: a GPU through
 * headless-gl when present, else gpu.js's own CPU modes), 'auto' (the fastest available: gpujs
 * when a real, non-software GPU is detected, else wasm when the engine has WebAssembly SIMD,
 * else ts). SVDD_BACKEND and SVDD_THREADS set the defaults.
 */
import os from 'node:os';
import { createRequire } from 'node:module';
import { registerBackend, setBackend } from './kernels/registry.ts';
import { createWasmBackend, disposeWasmBackend, wasmFeatures } from './kernels/wasm/index.ts';

export const BACKEND_NAMES = ['auto', 'wasm', 'ts', 'gpujs'] as const;

let wasmThreads: number | null = null;
let gpujsLoaded = false;

/**
 * Looks for a hardware GPU only when one could be reachable: gpu.js needs the optional `gl`
 * package for a GPU in Node. SVDD_NO_GPU=1 skips the probe.
 */
let gpuProbe: Promise<boolean> | null = null;
function realGpu(): Promise<boolean> {
  // The probe loads gpu.js and opens a GL context: do it once per process, not per useBackend call.
  gpuProbe ??= (async () => {
    if (process.env.SVDD_NO_GPU === '1') return false;
    try { createRequire(import.meta.url).resolve('gl'); } catch { return false; }
    const { detectRealGpu } = await import('./kernels/gpujs/index.ts');
    return (await detectRealGpu()).real;
  })();
  return gpuProbe;
}

/** Activates a backend; returns its name ('wasm' or 'ts'). threads: wasm worker threads (default all cores). */
export async function useBackend(name: string, threads: number | null = null): Promise<string> {
  let chosen = name === 'auto' ? (process.env.SVDD_BACKEND ?? 'auto') : name;
  if (chosen === 'auto') chosen = (await realGpu()) ? 'gpujs' : wasmFeatures().simd ? 'wasm' : 'ts';
  if (chosen === 'wasm') {
    const envThreads = process.env.SVDD_THREADS ? Number(process.env.SVDD_THREADS) : null;
    const want = threads ?? envThreads ?? os.availableParallelism();
    if (wasmThreads !== want) {
      if (wasmThreads !== null) disposeWasmBackend();
      registerBackend(await createWasmBackend({ threads: want }));
      wasmThreads = want;
    }
  } else if (chosen === 'gpujs') {
    if (!gpujsLoaded) {
      // Loaded on demand: gpu.js is heavy and most runs never use it.
      const { createGpujsBackend } = await import('./kernels/gpujs/index.ts');
      registerBackend(await createGpujsBackend());
      gpujsLoaded = true;
    }
  } else if (chosen !== 'ts') {
    throw new Error(`unknown backend '${name}' (expected ${BACKEND_NAMES.join(', ')})`);
  }
  return (await setBackend(chosen)).name;
}

/** Stops worker threads (tests and one-shot commands exit without waiting for them anyway). */
export async function shutdownBackends(): Promise<void> {
  if (wasmThreads !== null) { await disposeWasmBackend(); wasmThreads = null; }
  if (gpujsLoaded) {
    const { disposeGpujsBackend } = await import('./kernels/gpujs/index.ts');
    await disposeGpujsBackend();
    gpujsLoaded = false;
  }
}
