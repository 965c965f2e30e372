/**
 * The backends compiled into svdd-ts, registered in this order (the order of the CLI's choices
 * and of the probes): 'wasm' (WebAssembly SIMD kernels on a worker pool), 'ts' (plain TypeScript
 * reference), 'gpujs' (gpu.js kernels: a GPU through headless-gl or WebGPU when present, else
 * gpu.js's own CPU modes). `auto` takes gpujs when a real, non-software GPU is detected, else wasm
 * when the engine has WebAssembly SIMD, else ts. SVDD_GPUJS_MODE, SVDD_GPUJS_WORKER,
 * GPUJS_WEBGPU_DIR and SVDD_NO_GPU steer gpujs (see kernels/gpujs/index.ts).
 */
import { createRequire } from 'node:module';
import { registerBackendFactory } from './backend-registry.ts';
import type { Backend } from './kernels/types.ts';
import { tsBackend } from './kernels/ts/index.ts';
import { createWasmBackend, wasmFeatures } from './kernels/wasm/index.ts';
import type { GpujsMode } from './kernels/gpujs/gpu-types.ts';

/**
 * Looks for a hardware GPU, only where one could be reachable from gpu.js, and answers with
 * the gpu.js mode to use it through: 'gpu' for a non-software GL renderer (needs the optional
 * `gl` package), 'webgpu' for a WebGPU adapter that is not a fallback adapter (needs the
 * `webgpu` package, see GPUJS_WEBGPU_DIR; asked in a short-lived thread, so a missing or
 * broken package costs a few ms and never a crash), else null. A real GL renderer wins: it
 * runs in-process, WebGPU needs the worker bridge. SVDD_NO_GPU=1 skips the probe.
 * Module-level on purpose: the probe may load gpu.js, open a GL context and start Dawn, and the
 * machine's hardware does not change within a process, so it runs once per process.
 */
let gpuProbe: Promise<GpujsMode | null> | null = null;
function realGpu(): Promise<GpujsMode | null> {
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

const disposeInstance = async (backend: Backend): Promise<void> => { await backend.dispose?.(); };

registerBackendFactory({
  name: 'wasm', priority: 10, usesThreads: true,
  description: 'WebAssembly SIMD kernels on a worker pool',
  probe: async () => wasmFeatures().simd,
  create: (settings) => createWasmBackend({ threads: settings.threads }),
  settingsKey: (settings) => String(settings.threads),
  dispose: disposeInstance,
});

registerBackendFactory({
  name: 'ts', priority: 0,
  description: 'plain TypeScript reference kernels',
  probe: async () => true,
  create: async () => tsBackend,
  // The reference holds nothing to release, and every engine falls back to it.
  dispose: async () => {},
});

registerBackendFactory({
  name: 'gpujs', priority: 20,
  description: 'gpu.js kernels, on a real GPU when one is found',
  probe: async () => (await realGpu()) !== null,
  async create() {
    // Loaded on demand: gpu.js is heavy and most runs never use it.
    const { createGpujsBackend, gpujsOptionsFromEnv } = await import('./kernels/gpujs/index.ts');
    // An explicit SVDD_GPUJS_MODE needs no probe; otherwise use the GPU `auto` would find.
    return createGpujsBackend(gpujsOptionsFromEnv(process.env.SVDD_GPUJS_MODE ? null : await realGpu()));
  },
  dispose: disposeInstance,
});
