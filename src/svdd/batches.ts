import type { Rng } from '../tensor/creation.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { tensorFromArray } from '../tensor/tensor.ts';
import type { DType } from '../tensor/kernels/types.ts';

/** Images stored as one flat array of `count` CHW images. */
export interface ImageSet {
  x: Float32Array | Float64Array;
  count: number;
  shape: readonly [number, number, number];
}

/**
 * Yields mini-batches as [b, c, h, w] tensors (the last one may be smaller, as PyTorch's
 * DataLoader with drop_last=False). With an rng the order is a fresh seeded shuffle each call.
 */
export function* batches(set: ImageSet, batchSize: number, rng: Rng | null, dtype: DType = 'float32'): Generator<{ x: Tensor; indices: Int32Array }> {
  const order = new Int32Array(set.count);
  for (let i = 0; i < set.count; i++) order[i] = i;
  if (rng) rng.shuffle(order);
  const per = set.shape[0] * set.shape[1] * set.shape[2];
  for (let start = 0; start < set.count; start += batchSize) {
    const idx = order.subarray(start, Math.min(set.count, start + batchSize));
    const data = dtype === 'float64' ? new Float64Array(idx.length * per) : new Float32Array(idx.length * per);
    // Without shuffling the batch is a contiguous range: one copy.
    if (!rng) data.set(set.x.subarray(idx[0]! * per, (idx[0]! + idx.length) * per));
    else for (let j = 0; j < idx.length; j++) data.set(set.x.subarray(idx[j]! * per, (idx[j]! + 1) * per), j * per);
    yield { x: tensorFromArray(data, [idx.length, ...set.shape]), indices: idx };
  }
}

export function batchCount(count: number, batchSize: number): number {
  return Math.ceil(count / batchSize);
}
