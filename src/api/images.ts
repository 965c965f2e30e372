/**
 * The estimator's image input: a plain typed array with its shape [n, c, h, w], or an `ndarray`
 * of that shape with any strides (a transposed NHWC array, a slice, a step), which is gathered
 * into one contiguous NCHW buffer here. uint8 values are pixels 0..255; float values are
 * intensities on the scale pixels / 255 gives (0..1) and must be finite.
 */
import ndarray from 'ndarray';
import type { RawPixels } from '../svdd/data/preprocess.ts';
import { InputError } from './errors.ts';

/** Images as a typed array in NCHW order with their shape. */
export interface ImageArray {
  data: Uint8Array | Float32Array | Float64Array;
  shape: readonly [number, number, number, number];
}

/** What every estimator method accepts: an ImageArray, or an ndarray of shape [n, c, h, w] over one of those typed arrays. */
export type ImageInput = ImageArray | ndarray.NdArray<Uint8Array | Float32Array | Float64Array>;

/** Images checked and laid out contiguously in NCHW order. */
export interface Images {
  data: RawPixels;
  count: number;
  /** [c, h, w]. */
  shape: [number, number, number];
}

const isAccepted = (d: unknown): d is RawPixels => d instanceof Uint8Array || d instanceof Float32Array || d instanceof Float64Array;

function typeName(d: unknown): string {
  if (d === null) return 'null';
  if (typeof d !== 'object') return typeof d;
  return (d as object).constructor?.name ?? 'object';
}

const isNdArray = (v: object): v is ndarray.NdArray<RawPixels> =>
  'stride' in v && 'offset' in v && Array.isArray((v as { stride: unknown }).stride);

/**
 * Checks `input` and returns its images as one contiguous NCHW array: the shape has four positive
 * integer dimensions that match `expected` [c, h, w], the data is a Uint8Array, Float32Array or
 * Float64Array of exactly that many values, and float values are finite. `what` names the
 * argument in messages ("fit: images").
 */
export function readImages(input: unknown, expected: readonly [number, number, number], what: string, minCount = 1): Images {
  if (typeof input !== 'object' || input === null) throw new InputError(`${what} must be { data, shape } or an ndarray, got ${typeName(input)}`);
  const { data, shape } = input as { data?: unknown; shape?: unknown };
  if (!isAccepted(data)) {
    throw new InputError(`${what}: data must be a Uint8Array (pixels 0..255), Float32Array or Float64Array, got ${typeName(data)}`);
  }
  if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((v) => Number.isSafeInteger(v) && v >= 0)) {
    throw new InputError(`${what}: shape must be [n, c, h, w] (four non-negative integers), got ${JSON.stringify(shape)}`);
  }
  const [n, c, h, w] = shape as [number, number, number, number];
  if (c !== expected[0] || h !== expected[1] || w !== expected[2]) {
    throw new InputError(`${what}: images are [${c}, ${h}, ${w}] (channels, height, width), the network takes [${expected.join(', ')}]`);
  }
  if (n < minCount) throw new InputError(`${what}: ${n} image${n === 1 ? '' : 's'}; at least ${minCount} needed`);
  const per = c * h * w;
  let out: RawPixels;
  if (isNdArray(input)) {
    out = gather(input, n, c, h, w);
  } else {
    if (data.length !== n * per) throw new InputError(`${what}: shape [${shape.join(', ')}] needs ${n * per} values, data holds ${data.length}`);
    out = data;
  }
  if (!(out instanceof Uint8Array)) {
    for (let i = 0; i < out.length; i++) {
      if (!Number.isFinite(out[i]!)) {
        const img = Math.floor(i / per);
        throw new InputError(`${what}: image ${img} holds ${out[i]} at value ${i - img * per}; every value must be a finite number`);
      }
    }
  }
  return { data: out, count: n, shape: [c, h, w] };
}

/** Copies an ndarray view of shape [n, c, h, w] (any strides and offset) into a new contiguous array of its type. */
function gather(a: ndarray.NdArray<RawPixels>, n: number, c: number, h: number, w: number): RawPixels {
  const src = a.data;
  const [sn, sc, sh, sw] = a.stride as [number, number, number, number];
  const count = n * c * h * w;
  const out = new (src.constructor as { new(len: number): RawPixels })(count);
  // Bounds: every index the strides reach must lie inside the buffer.
  const reach = (dims: number[], strides: number[]): [number, number] => {
    let lo = a.offset, hi = a.offset;
    dims.forEach((d, i) => { const s = strides[i]! * (d - 1); if (s < 0) lo += s; else hi += s; });
    return [lo, hi];
  };
  if (count > 0) {
    const [lo, hi] = reach([n, c, h, w], [sn, sc, sh, sw]);
    if (lo < 0 || hi >= src.length) throw new InputError(`ndarray: its strides reach index ${lo < 0 ? lo : hi}, outside its data of ${src.length} values`);
  }
  // The fast path: already contiguous NCHW.
  if (sw === 1 && sh === w && sc === h * w && sn === c * h * w) {
    out.set(src.subarray(a.offset, a.offset + count));
    return out;
  }
  let k = 0;
  for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) {
    let at = a.offset + i * sn + ch * sc + y * sh;
    for (let x = 0; x < w; x++, at += sw) out[k++] = src[at]!;
  }
  return out;
}

/** Wraps a contiguous NCHW typed array as an ndarray (the layout the estimator reads). */
export function asNdArray<D extends RawPixels>(data: D, shape: readonly [number, number, number, number]): ndarray.NdArray<D> {
  return ndarray(data, [...shape]);
}
