/** View ops: reshape, permute/transpose, narrow (batch slicing), flatten, contiguous copies. */
import { record } from '../tape.ts';
import { Layout, shapeSize, shapeStr } from '../../tensor/layout.ts';
import { Tensor, allocArray, tensorFromArray } from '../../tensor/tensor.ts';
import { reshapeDense } from './elementwise.ts';

/** Reshape: a free view of dense tensors, a copy otherwise. A −1 entry is inferred. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((s) => s !== -1).reduce((a, b) => a * b, 1);
  const resolved = shape.map((s) => (s === -1 ? x.size / known : s));
  if (shape.filter((s) => s === -1).length > 1 || !Number.isInteger(shapeSize(resolved)) || shapeSize(resolved) !== x.size) {
    throw new Error(`reshape: cannot view ${shapeStr(x.shape)} (${x.size} values) as ${shapeStr(shape)}`);
  }
  return reshapeDense(x, resolved);
}

/** Flattens every axis after the first: [n, …] → [n, prod(…)]. */
export function flatten(x: Tensor): Tensor {
  return reshape(x, [x.shape[0]!, -1]);
}

/** Reorders axes as a strided view (no copy). */
export function permute(x: Tensor, order: readonly number[]): Tensor {
  const y = new Tensor(x.storage, x.layout.permute(order));
  const inverse = new Array<number>(order.length);
  order.forEach((o, i) => { inverse[o] = i; });
  return record(y, 'permute', [x], (gy) => [contiguous(permute(gy, inverse))]);
}

export function transpose(x: Tensor): Tensor {
  if (x.rank !== 2) throw new Error(`transpose: expected a 2-d tensor, got ${shapeStr(x.shape)}`);
  return permute(x, [1, 0]);
}

/** A view of entries [start, start+length) along axis. */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const y = new Tensor(x.storage, x.layout.narrow(axis, start, length));
  return record(y, 'narrow', [x], (gy) => {
    const gx = allocArray(gy.dtype, x.size);
    const target = Layout.contiguous(x.shape).narrow(axis, start, length);
    scatterDense(gy.values(), gx, target);
    return [tensorFromArray(gx, x.shape)];
  });
}

/** A dense copy (identity gradient). */
export function contiguous(x: Tensor): Tensor {
  if (x.layout.isContiguous() && x.layout.offset === 0 && x.storage.length === x.size) return x;
  return record(tensorFromArray(x.toArray(), x.shape), 'contiguous', [x], (gy) => [gy]);
}

/** Writes dense src into dst at the positions of a strided layout. */
function scatterDense(src: ArrayLike<number>, dst: Float32Array | Float64Array, l: Layout): void {
  const nd = l.rank;
  const idx = new Array<number>(nd).fill(0);
  let s = l.offset;
  for (let i = 0; i < l.size; i++) {
    dst[s] = src[i]!;
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]!++; s += l.strides[d]!;
      if (idx[d]! < l.shape[d]!) break;
      s -= l.strides[d]! * l.shape[d]!; idx[d] = 0;
    }
  }
}
