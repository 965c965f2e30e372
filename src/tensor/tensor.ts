import type { DType, FloatArray } from './kernels/types.ts';
import { Layout, contiguousStrides, shapeSize, shapeStr } from './layout.ts';
import { engine } from './engine.ts';

/** What autograd records for a tensor produced by a differentiable op (see src/autograd). */
export interface GradNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /** Gradients w.r.t. each input given the upstream gradient (null where an input needs none). */
  backward(gy: Tensor): (Tensor | null)[];
  /** Storage only this node's backward reads (max pooling's argmax): released with the graph. */
  readonly saved?: readonly FloatArray[];
}

/** Module-level on purpose: tensor ids key autograd's maps, so they must be unique across every engine. */
let nextId = 1;

/**
 * An n-d array: a layout (shape/strides/offset) over flat float storage, plus the autograd
 * fields. Storage is shared between views; kernels see dense arrays via `values()`.
 */
export class Tensor {
  readonly id = nextId++;
  requiresGrad = false;
  grad: Tensor | null = null;
  gradNode: GradNode | null = null;
  /** Keep `.grad` on a non-leaf tensor after backward (PyTorch's retain_grad). */
  retainsGrad = false;

  constructor(readonly storage: FloatArray, readonly layout: Layout) {
    if (layout.size > 0 && layout.offset + maxReach(layout) >= storage.length + 1) {
      throw new Error(`tensor view ${shapeStr(layout.shape)} reaches past its storage of ${storage.length} elements`);
    }
  }

  get shape(): readonly number[] { return this.layout.shape; }
  get size(): number { return this.layout.size; }
  get rank(): number { return this.layout.shape.length; }
  get dtype(): DType { return this.storage instanceof Float64Array ? 'float64' : 'float32'; }
  get isLeaf(): boolean { return this.gradNode === null; }

  /** Dense row-major values: the storage itself when already dense, else a copy. Do not mutate. */
  values(): FloatArray {
    const l = this.layout;
    if (l.isContiguous()) {
      if (l.offset === 0 && this.storage.length === l.size) return this.storage;
      // A block of backend memory is recycled when its array is collected, which a view would
      // not prevent: hand out a copy instead of a view that could outlive it.
      if (pool.ownerOf(this.storage)) return this.storage.slice(l.offset, l.offset + l.size);
      return this.storage.subarray(l.offset, l.offset + l.size);
    }
    return gatherStrided(this.storage, l);
  }

  /** A fresh dense copy of the values (safe to mutate). */
  toArray(): FloatArray {
    const v = this.values();
    return v === this.storage || v.buffer === this.storage.buffer ? v.slice() : v;
  }

  item(): number {
    if (this.size !== 1) throw new Error(`item: tensor of shape ${shapeStr(this.shape)} has ${this.size} elements, expected 1`);
    return this.storage[this.layout.offset]!;
  }

  /** Marks this tensor as a leaf whose gradient backward() should compute. */
  requireGrad(flag = true): this {
    this.requiresGrad = flag;
    return this;
  }

  retainGrad(): this { this.retainsGrad = true; return this; }

  /** A new leaf tensor sharing storage, cut from the graph. */
  detach(): Tensor { return new Tensor(this.storage, this.layout); }

  toString(): string {
    return `Tensor(${shapeStr(this.shape)}, ${this.dtype}${this.gradNode ? `, op=${this.gradNode.op}` : ''})`;
  }
}

function maxReach(l: Layout): number {
  let r = 0;
  for (let d = 0; d < l.rank; d++) r += (l.shape[d]! - 1) * Math.max(l.strides[d]!, 0);
  return r;
}

function gatherStrided(src: FloatArray, l: Layout): FloatArray {
  const out = src instanceof Float64Array ? new Float64Array(l.size) : new Float32Array(l.size);
  const nd = l.rank;
  if (l.size === 0) return out;
  const idx = new Array<number>(nd).fill(0);
  let s = l.offset;
  for (let i = 0; i < l.size; i++) {
    out[i] = src[s]!;
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]!++; s += l.strides[d]!;
      if (idx[d]! < l.shape[d]!) break;
      s -= l.strides[d]! * l.shape[d]!; idx[d] = 0;
    }
  }
  return out;
}

/*
 * Storage goes through the default engine's pool (storage.ts): these are its entry points for
 * ops and layers.
 */
const pool = engine.storage;

/**
 * The identity of the memory behind an array: its ArrayBuffer (so views of one buffer share it),
 * or the array itself for a block of backend memory (whose buffer is shared by every block).
 */
export function storageKey(a: FloatArray): object { return pool.key(a); }

/** Whether `a` is a whole allocation (not a view into part of one), so that it may be recycled. */
export function isWholeStorage(a: FloatArray): boolean { return pool.isWhole(a); }

/**
 * Runs fn and then hands every array allocated inside it back for reuse, its result's too: what
 * fn computes must be copied out inside fn. (tidy, in engine.ts, keeps the tensors fn returns.)
 */
export function withTemporaryStorage<T>(fn: () => T): T { return pool.scope(fn); }

/** A zeroed array (recycled when one of this length was released). */
export function allocArray(dtype: DType, length: number): FloatArray { return pool.alloc(dtype, length); }

/** Storage that a kernel is about to overwrite entirely: like allocArray, but a recycled array is not zeroed. */
export function outputArray(dtype: DType, length: number): FloatArray { return pool.output(dtype, length); }

/** Hands an array back for reuse by allocArray. The caller guarantees nothing reads it any more. */
export function releaseArray(a: FloatArray): void { pool.release(a); }

/** Wraps dense data as a tensor of `shape` (no copy). */
export function tensorFromArray(data: FloatArray, shape: readonly number[]): Tensor {
  if (shapeSize(shape) !== data.length) {
    throw new Error(`tensor: shape ${shapeStr(shape)} needs ${shapeSize(shape)} values, got ${data.length}`);
  }
  return new Tensor(data, new Layout([...shape], contiguousStrides(shape), 0));
}
