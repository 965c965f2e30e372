/** Shape, strides and offset of a view over flat storage (row-major when contiguous). */
export class Layout {
  readonly size: number;
  constructor(readonly shape: readonly number[], readonly strides: readonly number[], readonly offset = 0) {
    this.size = shape.reduce((a, b) => a * b, 1);
  }

  static contiguous(shape: readonly number[]): Layout {
    return new Layout(shape, contiguousStrides(shape), 0);
  }

  get rank(): number { return this.shape.length; }

  /** True when elements are laid out densely in row-major order starting at `offset`. */
  isContiguous(): boolean {
    let expected = 1;
    for (let d = this.shape.length - 1; d >= 0; d--) {
      if (this.shape[d] !== 1 && this.strides[d] !== expected) return false;
      expected *= this.shape[d]!;
    }
    return true;
  }

  permute(order: readonly number[]): Layout {
    if (order.length !== this.rank || new Set(order).size !== order.length || order.some((o) => o < 0 || o >= this.rank)) {
      throw new Error(`permute: order ${JSON.stringify(order)} is not a permutation of ${this.rank} axes`);
    }
    return new Layout(order.map((o) => this.shape[o]!), order.map((o) => this.strides[o]!), this.offset);
  }

  /** A view of `length` entries along `axis` starting at `start`. */
  narrow(axis: number, start: number, length: number): Layout {
    if (start < 0 || length < 0 || start + length > this.shape[axis]!) {
      throw new Error(`narrow: [${start}, ${start + length}) is outside axis ${axis} of shape [${this.shape.join(', ')}]`);
    }
    const shape = [...this.shape];
    shape[axis] = length;
    return new Layout(shape, this.strides, this.offset + start * this.strides[axis]!);
  }
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) { strides[d] = s; s *= shape[d]!; }
  return strides;
}

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** NumPy broadcasting of two shapes; the error names the op and both shapes. */
export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): number[] {
  const nd = Math.max(a.length, b.length);
  const out = new Array<number>(nd);
  for (let i = 0; i < nd; i++) {
    const da = a[a.length - nd + i] ?? 1, db = b[b.length - nd + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: shapes ${shapeStr(a)} and ${shapeStr(b)} cannot be broadcast together`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides that read `shape` as if it had `target` shape (zero stride on broadcast axes). */
export function broadcastStrides(shape: readonly number[], strides: readonly number[], target: readonly number[]): number[] {
  const nd = target.length, off = nd - shape.length;
  const out = new Array<number>(nd).fill(0);
  for (let i = 0; i < shape.length; i++) out[i + off] = shape[i] === 1 ? 0 : strides[i]!;
  return out;
}
