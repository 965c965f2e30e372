import type { DType, FloatArray } from './kernels/types.ts';
import { Layout, contiguousStrides, shapeSize, shapeStr } from './layout.ts';

/** What autograd records for a tensor produced by a differentiable op (see src/autograd). */
export interface GradNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /** Gradients w.r.t. each input given the upstream gradient (null where an input needs none). */
  backward(gy: Tensor): (Tensor | null)[];
  /** Storage only this node's backward reads (max pooling's argmax): released with the graph. */
  readonly saved?: readonly FloatArray[];
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
      // A block of backend memory is recycled when its array is collected, which a view would
      // not prevent: hand out a copy instead of a view that could outlive it.
      if (backendBlocks.has(this.storage)) return this.storage.slice(l.offset, l.offset + l.size);
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

/**
 * Recycled storage. A fresh multi-megabyte typed array costs the OS page faults and zeroing on
 * first touch (about 2 ms per 5 MB, more than most kernels take on it), so arrays that autograd
 * knows are dead (gradients consumed during backward, see engine.ts) come back here and are
 * handed out again, zeroed, for the next request of the same length. Only whole, unshared arrays
 * of at least POOL_MIN_ELEMS are kept, up to POOL_MAX_BYTES in all.
 */
const POOL_MIN_ELEMS = 1 << 14;
const POOL_MAX_BYTES = 256 * 1024 * 1024;
const pools: Record<DType, Map<number, FloatArray[]>> = { float32: new Map(), float64: new Map() };
const pooled = new WeakSet<FloatArray>();
let pooledBytes = 0;

/** The active backend's allocator (see Backend.alloc): it may place new storage in its own memory. */
let backendAlloc: ((dtype: DType, length: number) => FloatArray | null) | null = null;
/**
 * Arrays that own a block of a backend's memory. They are views of one large shared buffer, so
 * they are told apart by identity, not by their buffer (see storageKey).
 */
const backendBlocks = new WeakSet<FloatArray>();

/**
 * Forgets every pooled array that lives in backend memory: called when a backend's memory is
 * abandoned (a new wasm runtime), so that the pool does not keep the old memory alive.
 */
export function dropPooledBackendBlocks(): void {
  for (const lists of Object.values(pools)) {
    for (const [len, list] of lists) {
      const kept = list.filter((a) => !backendBlocks.has(a));
      for (const a of list) if (backendBlocks.has(a)) pooled.delete(a);
      if (kept.length > 0) lists.set(len, kept); else lists.delete(len);
    }
  }
}

/** Set by the registry when the active backend changes. */
export function setStorageAllocator(alloc: ((dtype: DType, length: number) => FloatArray | null) | null): void {
  backendAlloc = alloc;
}

/**
 * The identity of the memory behind an array: its ArrayBuffer (so views of one buffer share it),
 * or the array itself for a block of backend memory (whose buffer is shared by every block).
 */
export function storageKey(a: FloatArray): object {
  return backendBlocks.has(a) ? a : a.buffer;
}

/** Whether `a` is a whole allocation (not a view into part of one), so that it may be recycled. */
export function isWholeStorage(a: FloatArray): boolean {
  return backendBlocks.has(a) || (a.buffer instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength);
}

/** Arrays allocated inside each active withTemporaryStorage call, innermost last. */
const scopes: FloatArray[][] = [];

/**
 * Runs fn and then hands every array allocated inside it back for reuse (see releaseArray), so
 * that a loop of inference batches recycles one batch's activations for the next. Whatever fn
 * computes must be copied out inside fn: no tensor created inside may be used afterwards.
 *
 * Why it is needed: storage in a backend's own memory is reclaimed when its array is garbage
 * collected, but only between tasks (FinalizationRegistry), never during one long synchronous
 * loop; and the collector does not see that memory, so it would not hurry anyway.
 */
export function withTemporaryStorage<T>(fn: () => T): T {
  const mine: FloatArray[] = [];
  scopes.push(mine);
  try {
    return fn();
  } finally {
    scopes.pop();
    for (const a of mine) releaseArray(a);
  }
}

function unpool(a: FloatArray): void {
  pooled.delete(a);
  if (!backendBlocks.has(a)) pooledBytes -= a.byteLength;
}

function track<A extends FloatArray>(a: A): A {
  if (scopes.length > 0) scopes[scopes.length - 1]!.push(a);
  return a;
}

/** A zeroed array (recycled when one of this length was released). */
export function allocArray(dtype: DType, length: number): FloatArray {
  if (length >= POOL_MIN_ELEMS) {
    const a = pools[dtype].get(length)?.pop();
    if (a) { unpool(a); return track(a.fill(0)); }
  }
  const own = backendAlloc?.(dtype, length);
  if (own) { backendBlocks.add(own); return track(own); }
  return track(dtype === 'float64' ? new Float64Array(length) : new Float32Array(length));
}

/**
 * Storage that a kernel is about to overwrite entirely: like allocArray, but a recycled array is
 * not zeroed first (on the 5-25 MB activations of a training step, zeroing costs a full pass
 * over memory per op).
 */
export function outputArray(dtype: DType, length: number): FloatArray {
  if (length >= POOL_MIN_ELEMS) {
    const a = pools[dtype].get(length)?.pop();
    if (a) { unpool(a); return track(a); }
  }
  return allocArray(dtype, length);
}

/**
 * Hands an array back for reuse by allocArray. The caller guarantees nothing reads it any more.
 * Small arrays and views are left to the garbage collector; the pool is bounded.
 */
export function releaseArray(a: FloatArray): void {
  if (a.length < POOL_MIN_ELEMS || !isWholeStorage(a) || pooled.has(a)) return;
  // A block of backend memory is kept whatever the pool holds: dropped, it would only come back
  // after the collector and a finalizer ran (between tasks, so not during a training epoch), and
  // the backend's memory never shrinks anyway. Ordinary arrays are pooled up to a bound.
  const ownMemory = backendBlocks.has(a);
  if (!ownMemory && pooledBytes + a.byteLength > POOL_MAX_BYTES) return;
  const dtype: DType = a instanceof Float64Array ? 'float64' : 'float32';
  let list = pools[dtype].get(a.length);
  if (!list) { list = []; pools[dtype].set(a.length, list); }
  list.push(a);
  pooled.add(a);
  if (!ownMemory) pooledBytes += a.byteLength;
}

/** Wraps dense data as a tensor of `shape` (no copy). */
export function tensorFromArray(data: FloatArray, shape: readonly number[]): Tensor {
  if (shapeSize(shape) !== data.length) {
    throw new Error(`tensor: shape ${shapeStr(shape)} needs ${shapeSize(shape)} values, got ${data.length}`);
  }
  return new Tensor(data, new Layout([...shape], contiguousStrides(shape), 0));
}
