import { engine } from '../src/tensor/engine.ts';

/**
 * Runs fn and returns the names of the backends that were active whenever a kernel was looked
 * up on the default engine, in the order first seen: which backend the code under test ran on.
 */
export async function kernelBackends(fn: () => Promise<unknown>): Promise<string[]> {
  const seen = new Set<string>();
  const own = Object.getOwnPropertyDescriptor(engine, 'kernels');
  const original = engine.kernels;
  engine.kernels = function (this: typeof engine, dtype) { seen.add(this.backend.name); return original.call(this, dtype); };
  try { await fn(); } finally {
    if (own) Object.defineProperty(engine, 'kernels', own); else delete (engine as Partial<typeof engine>).kernels;
  }
  return [...seen];
}
