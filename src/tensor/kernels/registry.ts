import type { Backend, DType, KernelName, KernelSet } from './types.ts';
import { engine } from '../engine.ts';

/**
 * The kernels of the default engine's active backend (engine.ts): `kernels(dtype)` resolves each
 * kernel for that backend, falling back to the `ts` reference for anything it does not implement
 * (for instance float64, which only the reference runs). Layers and autograd only ever call
 * `kernels()`.
 */
export function kernels(dtype: DType): KernelSet {
  return engine.kernels(dtype);
}

/** Makes a backend instance created elsewhere available to setBackend (tests, scripts). */
export function registerBackend(backend: Backend): void {
  engine.register(backend);
}

/** Activates a registered backend of the default engine by name (see Engine.use to start one). */
export async function setBackend(name: string): Promise<Backend> {
  return engine.setBackend(name);
}

/** Which backend actually runs a kernel (for logs and parity tests). */
export function kernelProvider(name: KernelName, dtype: DType): string {
  return engine.kernelProvider(name, dtype);
}
