import type { Backend, DType, KernelName, KernelSet } from './types.ts';
import { tsBackend, tsKernels } from './ts/index.ts';
import { setStorageAllocator } from '../tensor.ts';

/**
 * Backends register by name; `kernels(dtype)` resolves each kernel for the active backend,
 * falling back to the `ts` reference for anything the backend does not implement (for instance
 * float64, which only the reference runs). Layers and autograd only ever call `kernels()`.
 */
const backends = new Map<string, Backend>([['ts', tsBackend]]);
/** Lazy loaders for backends whose setup is heavy (wasm compilation, worker threads). */
const loaders = new Map<string, () => Promise<Backend>>();
let active: Backend = tsBackend;
const resolved = new Map<string, KernelSet>();

export function registerBackend(backend: Backend): void {
  backends.set(backend.name, backend);
  for (const key of [...resolved.keys()]) if (key.startsWith(`${backend.name}/`)) resolved.delete(key);
}

export function registerBackendLoader(name: string, load: () => Promise<Backend>): void {
  loaders.set(name, load);
}

export function availableBackends(): string[] {
  return [...new Set([...backends.keys(), ...loaders.keys()])];
}

/** Selects the backend used by every later op; loads it first if it has a loader. */
export async function setBackend(name: string): Promise<Backend> {
  let b = backends.get(name);
  if (!b) {
    const load = loaders.get(name);
    if (!load) throw new Error(`unknown backend '${name}' (available: ${availableBackends().join(', ')})`);
    b = await load();
    registerBackend(b);
  }
  active = b;
  setStorageAllocator(b.alloc ? b.alloc.bind(b) : null);
  return b;
}

export function kernels(dtype: DType): KernelSet {
  const key = `${active.name}/${dtype}`;
  let ks = resolved.get(key);
  if (!ks) {
    const own = active.kernels[dtype] ?? {};
    const merged: Partial<KernelSet> = {};
    for (const name of Object.keys(tsKernels) as KernelName[]) {
      (merged as Record<KernelName, unknown>)[name] = own[name] ?? tsKernels[name];
    }
    ks = merged as KernelSet;
    resolved.set(key, ks);
  }
  return ks;
}

/** Which backend actually runs a kernel (for logs and parity tests). */
export function kernelProvider(name: KernelName, dtype: DType): string {
  return active.kernels[dtype]?.[name] ? active.name : 'ts';
}
