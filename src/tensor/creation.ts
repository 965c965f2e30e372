import seedrandom from 'seedrandom';
import type { DType } from './kernels/types.ts';
import { shapeSize } from './layout.ts';
import { Tensor, allocArray, tensorFromArray } from './tensor.ts';

export function zeros(shape: readonly number[], dtype: DType = 'float32'): Tensor {
  return tensorFromArray(allocArray(dtype, shapeSize(shape)), shape);
}

export function full(shape: readonly number[], value: number, dtype: DType = 'float32'): Tensor {
  const t = zeros(shape, dtype);
  t.storage.fill(value);
  return t;
}

export function ones(shape: readonly number[], dtype: DType = 'float32'): Tensor {
  return full(shape, 1, dtype);
}

export function scalar(value: number, dtype: DType = 'float32'): Tensor {
  return full([], value, dtype);
}

/** Copies nested arrays or flat numbers into a new tensor (shape inferred from nesting if omitted). */
export function tensor(values: ArrayLike<number> | NestedArray, shape?: readonly number[], dtype: DType = 'float32'): Tensor {
  const flat: number[] = [];
  const inferred: number[] = [];
  const walk = (v: ArrayLike<number> | NestedArray | number, depth: number): void => {
    if (typeof v === 'number') { flat.push(v); return; }
    if (inferred.length <= depth) inferred.push(v.length);
    for (let i = 0; i < v.length; i++) walk((v as ArrayLike<NestedArray | number>)[i]!, depth + 1);
  };
  walk(values, 0);
  const data = allocArray(dtype, flat.length);
  data.set(flat);
  return tensorFromArray(data, shape ?? inferred);
}
export type NestedArray = ReadonlyArray<number | NestedArray>;

/**
 * Seeded random numbers (seedrandom's ARC4 generator): the same seed gives the same stream on
 * every machine. Every random draw in the project goes through one of these.
 */
/** A generator's complete state (for checkpoints): ARC4's pool and indices, and Box–Muller's spare value. */
export interface RngState { arc4: { i: number; j: number; S: number[] }; spare: number | null }

export class Rng {
  private readonly next: seedrandom.StatefulPRNG<seedrandom.State.Arc4>;
  private spare: number | null = null;
  constructor(readonly seed: string | number, state?: RngState) {
    // A state option only adds .state(); the sequence for a seed is the same.
    this.next = state ? seedrandom('', { state: state.arc4 }) : seedrandom(String(seed), { state: true });
    if (state) this.spare = state.spare;
  }
  /** Everything needed to continue this stream exactly (see the constructor). */
  state(): RngState {
    const a = this.next.state();
    return { arc4: { i: a.i, j: a.j, S: [...a.S] }, spare: this.spare };
  }
  /** Uniform in [0, 1). */
  uniform(): number { return this.next(); }
  /** Standard normal by Box–Muller (the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.spare !== null) { const s = this.spare; this.spare = null; return s; }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
  /** Integer in [0, n). */
  int(n: number): number { return Math.floor(this.next() * n); }
  /** In-place Fisher–Yates shuffle. */
  shuffle<T>(items: T[] | Int32Array | Uint32Array): void {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i]!; items[i] = items[j]!; items[j] = t as never;
    }
  }
  /** A derived generator, so independent consumers do not shift each other's streams. */
  child(tag: string): Rng { return new Rng(`${this.seed}/${tag}`); }
}

export function randUniform(shape: readonly number[], low: number, high: number, rng: Rng, dtype: DType = 'float32'): Tensor {
  const t = zeros(shape, dtype);
  for (let i = 0; i < t.storage.length; i++) t.storage[i] = low + (high - low) * rng.uniform();
  return t;
}

export function randNormal(shape: readonly number[], mean: number, std: number, rng: Rng, dtype: DType = 'float32'): Tensor {
  const t = zeros(shape, dtype);
  for (let i = 0; i < t.storage.length; i++) t.storage[i] = mean + std * rng.normal();
  return t;
}
