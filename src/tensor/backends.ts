/**
 * Backend selection by name for the CLI and benchmarks: 'ts' (plain TypeScript reference),
 * 'wasm' (WebAssembly SIMD, worker threads), 'auto' (the fastest available).
 */
import { availableBackends, setBackend } from './kernels/registry.ts';

export const BACKEND_NAMES = ['auto', 'wasm', 'ts'] as const;

/** Activates a backend; returns its name. Honours SVDD_BACKEND when name is 'auto'. */
export async function useBackend(name: string, threads: number | null = null): Promise<string> {
  void threads;
  let chosen = name === 'auto' ? (process.env.SVDD_BACKEND ?? 'auto') : name;
  if (chosen === 'auto') chosen = availableBackends().includes('wasm') ? 'wasm' : 'ts';
  const b = await setBackend(chosen);
  return b.name;
}
