import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { readSafetensors } from '../src/tensor/io/safetensors.ts';
import { Tensor, tensorFromArray } from '../src/tensor/tensor.ts';
import type { DType } from '../src/tensor/kernels/types.ts';

export const fixturesDir = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

export interface Fixture {
  get(name: string, dtype?: DType): Tensor;
  has(name: string): boolean;
  names(): string[];
  meta: Record<string, string>;
}

/** Loads test/fixtures/<rel>.safetensors as tensors (float64 unless asked otherwise). */
export function fixture(rel: string): Fixture {
  const f = readSafetensors(join(fixturesDir, `${rel}.safetensors`));
  return {
    meta: f.metadata,
    has: (name) => f.tensors.has(name),
    names: () => [...f.tensors.keys()],
    get(name, dtype = 'float64') {
      const t = f.tensors.get(name);
      if (!t) throw new Error(`fixture ${rel} has no tensor '${name}'`);
      const data = dtype === 'float64' ? Float64Array.from(t.data) : Float32Array.from(t.data);
      return tensorFromArray(data, t.shape);
    },
  };
}

/** max|a − b| / max(max|b|, tiny): the norm-relative error used by the parity tests. */
export function relError(a: Tensor | ArrayLike<number>, b: Tensor | ArrayLike<number>): number {
  const av = a instanceof Tensor ? a.values() : a, bv = b instanceof Tensor ? b.values() : b;
  if (av.length !== bv.length) throw new Error(`relError: ${av.length} vs ${bv.length} values`);
  let diff = 0, scale = 0;
  for (let i = 0; i < av.length; i++) {
    diff = Math.max(diff, Math.abs(av[i]! - bv[i]!));
    scale = Math.max(scale, Math.abs(bv[i]!));
  }
  return diff / Math.max(scale, 1e-300);
}

export function expectClose(a: Tensor | ArrayLike<number>, b: Tensor | ArrayLike<number>, tol: number, what = ''): void {
  if (a instanceof Tensor && b instanceof Tensor && a.shape.join() !== b.shape.join()) {
    throw new Error(`${what}: shape [${a.shape}] vs expected [${b.shape}]`);
  }
  const e = relError(a, b);
  if (!(e <= tol)) throw new Error(`${what}: relative error ${e.toExponential(3)} exceeds ${tol}`);
}
