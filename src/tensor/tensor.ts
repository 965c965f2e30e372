import type { DType, FloatArray } from './kernels/types.ts';
import { Layout, contiguousStrides, shapeSize, shapeStr } from './layout.ts';

/** What autograd records for a tensor produced by a differentiable op (see src/autograd). */
export interface GradNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /** Gradients w.r.t. each input given the upstream gradient (null where an input needs none). */
  backward(gy: Tensor): (Tensor | null)[];
}

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

export function allocArray(dtype: DType, length: number): FloatArray {
  return dtype === 'float64' ? new Float64Array(length) : new Float32Array(length);
}

/** Wraps dense data as a tensor of `shape` (no copy). */
export function tensorFromArray(data: FloatArray, shape: readonly number[]): Tensor {
  if (shapeSize(shape) !== data.length) {
    throw new Error(`tensor: shape ${shapeStr(shape)} needs ${shapeSize(shape)} values, got ${data.length}`);
  }
  return new Tensor(data, new Layout([...shape], contiguousStrides(shape), 0));
}
