/**
 * Finding and loading the `webgpu` npm package (Dawn) that gives Node a `navigator.gpu`, and a
 * cheap probe for a WebGPU adapter. Deliberately free of gpu.js so that `auto` backend detection
 * can ask "is there a real WebGPU adapter?" without loading gpu.js.
 *
 * The package is not a dependency of this project: it is looked for in GPUJS_WEBGPU_DIR (a folder
 * whose node_modules holds it, as scripts/gpu-parity.sh installs it under .software-webgpu/node),
 * then wherever Node resolves `webgpu` from here (gpu.js pulls in webgpu@0.2.9, whose binary needs
 * glibc 2.38: on older systems it is found but fails to load, which counts as "no WebGPU").
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

/** Renderer / adapter names of software rasterizers: never worth picking over wasm. */
export const SOFTWARE_RENDERER = /llvmpipe|lavapipe|softpipe|swiftshader|software|mesa offscreen|basic render|microsoft basic/i;

interface WebgpuPackage { create(flags: string[]): unknown; globals: Record<string, unknown> }

/** The resolved entry file of the `webgpu` package, or undefined when none can be found (never throws). */
export function resolveWebgpu(dir: string | undefined = process.env['GPUJS_WEBGPU_DIR']): string | undefined {
  const bases = [...(dir ? [path.join(path.resolve(dir), 'package.json')] : []), import.meta.url];
  for (const base of bases) {
    try { return createRequire(base).resolve('webgpu'); } catch { /* try the next place */ }
  }
  return undefined;
}

/**
 * Installs `navigator.gpu` (and the WebGPU globals gpu.js's webgpu backend uses) on this thread,
 * before gpu.js creates a webgpu kernel. Throws with the reason when the package cannot be loaded.
 */
export function installNavigatorGpu(dir?: string): void {
  const entry = resolveWebgpu(dir);
  if (!entry) {
    throw new Error(`gpujs: the 'webgpu' npm package was not found (set GPUJS_WEBGPU_DIR to a folder whose node_modules holds webgpu >= 0.6)`);
  }
  let mod: WebgpuPackage;
  try {
    mod = createRequire(import.meta.url)(entry) as WebgpuPackage;
  } catch (e) {
    throw new Error(`gpujs: the 'webgpu' package at ${entry} does not load: ${(e as Error).message.split('\n')[0]}`);
  }
  Object.assign(globalThis, mod.globals);
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: mod.create([]) }, configurable: true, writable: true });
}

export interface WebGpuProbe {
  /** An adapter was returned. */
  available: boolean;
  /** The adapter says it is a fallback (software) adapter; true when it does not say. */
  fallback: boolean;
  /** Vendor / architecture / device / description, for logs. */
  renderer: string;
  /** Why no adapter was found (package missing or not loadable, no adapter, timeout). */
  reason?: string;
}

/** A real WebGPU adapter: present, not a fallback adapter, not a known software rasterizer. */
export function isRealAdapter(p: WebGpuProbe): boolean {
  return p.available && !p.fallback && !SOFTWARE_RENDERER.test(p.renderer);
}

// Plain JS (no TypeScript loader needed) so the probe thread starts in a few tens of ms.
const PROBE_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const mod = require(workerData.entry);
  const gpu = mod.create([]);
  const adapter = await gpu.requestAdapter();
  if (!adapter) return { available: false, fallback: true, renderer: 'none', reason: 'requestAdapter() returned null' };
  const info = adapter.info || {};
  const fb = adapter.isFallbackAdapter !== undefined ? adapter.isFallbackAdapter : info.isFallbackAdapter;
  const renderer = [info.vendor, info.architecture, info.device, info.description].filter((s) => s).join(' ') || 'unknown adapter';
  return { available: true, fallback: fb !== false, renderer };
})().then((r) => parentPort.postMessage(r),
  (e) => parentPort.postMessage({ available: false, fallback: true, renderer: 'none', reason: String(e && e.message || e).split('\\n')[0] }));
`;

/**
 * Asks for a WebGPU adapter in a short-lived worker thread, so Dawn is never loaded into the
 * caller's thread (its handles would keep the process alive) and a crash or hang in the driver
 * costs at most `timeoutMs`. Never throws; without a loadable `webgpu` package it returns at once.
 */
export async function probeWebGpu(opts: { dir?: string; timeoutMs?: number } = {}): Promise<WebGpuProbe> {
  const entry = resolveWebgpu(opts.dir ?? process.env['GPUJS_WEBGPU_DIR']);
  if (!entry) return { available: false, fallback: true, renderer: 'none', reason: "no 'webgpu' package" };
  let worker: Worker;
  try {
    worker = new Worker(PROBE_SOURCE, { eval: true, execArgv: [], workerData: { entry } });
  } catch (e) {
    return { available: false, fallback: true, renderer: 'none', reason: (e as Error).message };
  }
  const timeoutMs = opts.timeoutMs ?? 10000;
  const result = await new Promise<WebGpuProbe>((resolve) => {
    const timer = setTimeout(() => resolve({ available: false, fallback: true, renderer: 'none', reason: `no answer in ${timeoutMs} ms` }), timeoutMs);
    timer.unref();
    worker.once('message', (m: WebGpuProbe) => { clearTimeout(timer); resolve(m); });
    worker.once('error', (e) => { clearTimeout(timer); resolve({ available: false, fallback: true, renderer: 'none', reason: e.message }); });
    worker.once('exit', () => { clearTimeout(timer); resolve({ available: false, fallback: true, renderer: 'none', reason: 'probe thread exited' }); });
  });
  await worker.terminate().catch(() => undefined);
  return result;
}
