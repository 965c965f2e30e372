/**
 * Tensor storage of one engine: the recycling pool, the blocks that backends own, and the scopes
 * (tidy) that hand temporary storage back. Nothing here is module-level: an Engine holds one.
 */
import type { Backend, DType, FloatArray } from './kernels/types.ts';

/**
 * Recycled storage. A fresh multi-megabyte typed array costs the OS page faults and zeroing on
 * first touch (about 2 ms per 5 MB, more than most kernels take on it), so arrays that autograd
 * knows are dead (gradients consumed during backward, see autograd/engine.ts) come back here and
 * are handed out again, zeroed, for the next request of the same length. Only whole, unshared
 * arrays of at least POOL_MIN_ELEMS are kept, up to POOL_MAX_BYTES in all.
 */
const POOL_MIN_ELEMS = 1 << 14;
const POOL_MAX_BYTES = 256 * 1024 * 1024;

export class StoragePool {
  private readonly pools: Record<DType, Map<number, FloatArray[]>> = { float32: new Map(), float64: new Map() };
  private readonly pooled = new WeakSet<FloatArray>();
  private pooledBytes = 0;
  /**
   * Arrays that are a block of a backend's own memory, with the backend that owns them. Such
   * arrays are views of one large shared buffer, so they are told apart by identity, not by their
   * buffer (see key).
   */
  private readonly owners = new WeakMap<FloatArray, Backend>();
  /** The backend new storage is asked from first (its alloc may place it in its own memory). */
  private placer: Backend | null = null;
  /** Arrays allocated inside each open scope, innermost last. */
  private readonly scopes: FloatArray[][] = [];

  /** Set by the engine when its active backend changes. */
  placeIn(backend: Backend | null): void {
    this.placer = backend?.alloc ? backend : null;
  }

  /** The backend whose memory holds `a`, or null for an ordinary array. */
  ownerOf(a: FloatArray): Backend | null {
    return this.owners.get(a) ?? null;
  }

  /**
   * Forgets every pooled array that lives in `backend`'s memory: called when that memory is
   * abandoned (the backend is disposed), so that the pool does not keep it alive.
   */
  dropBlocksOf(backend: Backend): void {
    for (const lists of Object.values(this.pools)) {
      for (const [len, list] of lists) {
        const kept = list.filter((a) => this.owners.get(a) !== backend);
        for (const a of list) if (this.owners.get(a) === backend) this.pooled.delete(a);
        if (kept.length > 0) lists.set(len, kept); else lists.delete(len);
      }
    }
  }

  /**
   * The identity of the memory behind an array: its ArrayBuffer (so views of one buffer share it),
   * or the array itself for a block of backend memory (whose buffer is shared by every block).
   */
  key(a: FloatArray): object {
    return this.owners.has(a) ? a : a.buffer;
  }

  /** Whether `a` is a whole allocation (not a view into part of one), so that it may be recycled. */
  isWhole(a: FloatArray): boolean {
    return this.owners.has(a) || (a.buffer instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength);
  }

  /**
   * Runs fn and then hands every array allocated inside it back for reuse (see release), so that
   * a loop of inference batches recycles one batch's activations for the next; except the arrays
   * `keep` picks from fn's result (and views of them), which pass to the enclosing scope. Whatever
   * else fn computes must be copied out inside fn: no other tensor created inside may be used
   * afterwards.
   *
   * Why it is needed: storage in a backend's own memory is reclaimed when its array is garbage
   * collected, but only between tasks (FinalizationRegistry), never during one long synchronous
   * loop; and the collector does not see that memory, so it would not hurry anyway.
   */
  scope<T>(fn: () => T, keep?: (result: T) => readonly unknown[]): T {
    const mine: FloatArray[] = [];
    this.scopes.push(mine);
    let kept: readonly unknown[] = [];
    try {
      const result = fn();
      if (keep) kept = keep(result);
      return result;
    } finally {
      this.scopes.pop();
      const keys = new Set<object>();
      for (const k of kept) if (k instanceof Float32Array || k instanceof Float64Array) keys.add(this.key(k));
      const parent = this.scopes[this.scopes.length - 1];
      for (const a of mine) {
        if (!keys.has(this.key(a))) this.release(a);
        else parent?.push(a);
      }
    }
  }

  private unpool(a: FloatArray): void {
    this.pooled.delete(a);
    if (!this.owners.has(a)) this.pooledBytes -= a.byteLength;
  }

  private track<A extends FloatArray>(a: A): A {
    if (this.scopes.length > 0) this.scopes[this.scopes.length - 1]!.push(a);
    return a;
  }

  /** A zeroed array (recycled when one of this length was released). */
  alloc(dtype: DType, length: number): FloatArray {
    if (length >= POOL_MIN_ELEMS) {
      const a = this.pools[dtype].get(length)?.pop();
      if (a) { this.unpool(a); return this.track(a.fill(0)); }
    }
    const placer = this.placer;
    const own = placer?.alloc!(dtype, length);
    if (own) { this.owners.set(own, placer!); return this.track(own); }
    return this.track(dtype === 'float64' ? new Float64Array(length) : new Float32Array(length));
  }

  /**
   * Storage that a kernel is about to overwrite entirely: like alloc, but a recycled array is not
   * zeroed first (on the 5-25 MB activations of a training step, zeroing costs a full pass over
   * memory per op).
   */
  output(dtype: DType, length: number): FloatArray {
    if (length >= POOL_MIN_ELEMS) {
      const a = this.pools[dtype].get(length)?.pop();
      if (a) { this.unpool(a); return this.track(a); }
    }
    return this.alloc(dtype, length);
  }

  /**
   * Hands an array back for reuse by alloc. The caller guarantees nothing reads it any more.
   * Small arrays and views are left to the garbage collector; the pool is bounded.
   */
  release(a: FloatArray): void {
    if (a.length < POOL_MIN_ELEMS || !this.isWhole(a) || this.pooled.has(a)) return;
    // A block of backend memory is kept whatever the pool holds: dropped, it would only come back
    // after the collector and a finalizer ran (between tasks, so not during a training epoch), and
    // the backend's memory never shrinks anyway. Ordinary arrays are pooled up to a bound.
    const ownMemory = this.owners.has(a);
    if (!ownMemory && this.pooledBytes + a.byteLength > POOL_MAX_BYTES) return;
    const dtype: DType = a instanceof Float64Array ? 'float64' : 'float32';
    let list = this.pools[dtype].get(a.length);
    if (!list) { list = []; this.pools[dtype].set(a.length, list); }
    list.push(a);
    this.pooled.add(a);
    if (!ownMemory) this.pooledBytes += a.byteLength;
  }
}
