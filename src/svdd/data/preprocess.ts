import seedrandom from 'seedrandom';
import type { TrainDatasetName, RawDataset } from './datasets.ts';
import { DataError } from './errors.ts';

export type FloatArray = Float32Array | Float64Array;

export interface MinMax {
  min: number;
  max: number;
}

/**
 * Global contrast normalisation with the L1 scale, per image over all its channels, in place:
 * x <- (x - mean) / mean(|x - mean|), as `global_contrast_normalization(x, scale='l1')` of the
 * reference Deep-SVDD-PyTorch code. A constant image has scale 0; the reference would produce
 * NaNs there, we leave it all zeros (its centred value) so one blank image cannot poison the
 * min/max of a whole class.
 */
export function gcnL1InPlace(x: FloatArray, count: number, pixelsPerImage: number): void {
  const p = pixelsPerImage;
  if (x.length < count * p) {
    throw new RangeError(`gcnL1InPlace: array of ${x.length} values is shorter than ${count} images of ${p}`);
  }
  for (let i = 0; i < count; i++) {
    const off = i * p;
    let sum = 0;
    for (let j = off; j < off + p; j++) sum += x[j]!;
    const mean = sum / p;
    let abs = 0;
    for (let j = off; j < off + p; j++) abs += Math.abs(x[j]! - mean);
    const scale = abs / p;
    const inv = scale > 0 ? 1 / scale : 0;
    for (let j = off; j < off + p; j++) x[j] = (x[j]! - mean) * inv;
  }
}

/**
 * Raw images: uint8 pixels 0..255, or float intensities on the 0..1 scale that pixels / 255 gives
 * (for the estimator's float input). `pixelDivisor` is what takes either to that scale (255 or 1;
 * dividing by 1 is exact, so float input of pixels / 255 gives the uint8 path's numbers).
 */
export type RawPixels = Uint8Array | Float32Array | Float64Array;
export const pixelDivisor = (images: RawPixels): number => (images instanceof Uint8Array ? 255 : 1);

/**
 * GCN of one image into `dst` (float64), including the reference's ToTensor /255 for bytes.
 * Fused so the whole pipeline needs one small scratch buffer instead of a float copy of the
 * dataset.
 */
function gcnImageFromBytes(src: RawPixels, srcOff: number, p: number, dst: Float64Array, divisor: number): void {
  let sum = 0;
  for (let j = 0; j < p; j++) {
    const v = src[srcOff + j]! / divisor;
    dst[j] = v;
    sum += v;
  }
  const mean = sum / p;
  let abs = 0;
  for (let j = 0; j < p; j++) {
    const c = dst[j]! - mean;
    dst[j] = c;
    abs += Math.abs(c);
  }
  const scale = abs / p;
  const inv = scale > 0 ? 1 / scale : 0;
  for (let j = 0; j < p; j++) dst[j] = dst[j]! * inv;
}

/**
 * Min and max over the listed images (all `count` images when `indices` is omitted) of an
 * already GCN-normalised float array.
 */
export function computeMinMax(
  images: FloatArray, count: number, pixelsPerImage: number, indices?: ArrayLike<number>,
): MinMax {
  let min = Infinity;
  let max = -Infinity;
  const n = indices ? indices.length : count;
  for (let k = 0; k < n; k++) {
    const i = indices ? indices[k]! : k;
    if (i < 0 || i >= count) throw new RangeError(`computeMinMax: image index ${i} outside 0..${count - 1}`);
    const off = i * pixelsPerImage;
    for (let j = off; j < off + pixelsPerImage; j++) {
      const v = images[j]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  return { min, max };
}

/** Min/max of the GCN-normalised versions of the listed raw images, without storing them. */
export function computeMinMaxFromBytes(
  images: RawPixels, pixelsPerImage: number, indices: ArrayLike<number>,
): MinMax {
  const scratch = new Float64Array(pixelsPerImage);
  const divisor = pixelDivisor(images);
  let min = Infinity;
  let max = -Infinity;
  for (let k = 0; k < indices.length; k++) {
    gcnImageFromBytes(images, indices[k]! * pixelsPerImage, pixelsPerImage, scratch, divisor);
    for (let j = 0; j < pixelsPerImage; j++) {
      const v = scratch[j]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  return { min, max };
}

/**
 * How images become network inputs. 'gcn-minmax' is the paper's: /255, global contrast
 * normalisation (L1), then min-max scaling with constants from the normal class's training
 * images. 'none' is pixels /255 in [0, 1] (what the seed's code applies to Fashion-MNIST).
 */
export type PreprocessingMethod = 'gcn-minmax' | 'none';
export const PREPROCESSING_METHODS: readonly PreprocessingMethod[] = ['gcn-minmax', 'none'];

/** A preprocessing with its constants, as saved in model.json. */
export type Preprocessing = { method: 'gcn-l1+minmax'; min: number; max: number } | { method: 'none' };

export function preprocessingOf(method: PreprocessingMethod, constants: MinMax): Preprocessing {
  return method === 'none' ? { method: 'none' } : { method: 'gcn-l1+minmax', min: constants.min, max: constants.max };
}

export interface Preprocessed {
  x: Float32Array;
  x64?: Float64Array;
}

/**
 * The full pipeline for the listed raw images: /255 (bytes), GCN-L1, then (x - min) / (max - min)
 * with the given constants (or, for { method: 'none' }, /255 alone). Also what scoring new
 * images with a saved model's preprocessing uses.
 */
export function applyPreprocessing(
  images: RawPixels, pixelsPerImage: number, indices: ArrayLike<number>, prep: MinMax | Preprocessing, float64 = false,
): Preprocessed {
  const p = pixelsPerImage;
  const divisor = pixelDivisor(images);
  const n = indices.length;
  const x = new Float32Array(n * p);
  const x64 = float64 ? new Float64Array(n * p) : undefined;
  if ('method' in prep && prep.method === 'none') {
    for (let k = 0; k < n; k++) {
      const src = indices[k]! * p, off = k * p;
      for (let j = 0; j < p; j++) {
        const v = images[src + j]! / divisor;
        x[off + j] = v;
        if (x64) x64[off + j] = v;
      }
    }
    return x64 ? { x, x64 } : { x };
  }
  const scratch = new Float64Array(p);
  const { min, max } = prep as MinMax;
  const range = max - min;
  if (!(range > 0)) throw new DataError(`bad preprocessing constants: max ${max} must exceed min ${min}`);
  for (let k = 0; k < n; k++) {
    gcnImageFromBytes(images, indices[k]! * p, p, scratch, divisor);
    const off = k * p;
    for (let j = 0; j < p; j++) {
      const v = (scratch[j]! - min) / range;
      x[off + j] = v;
      if (x64) x64[off + j] = v;
    }
  }
  return x64 ? { x, x64 } : { x };
}

/**
 * Seeded Fisher-Yates split of `indices` into a training part and a held-out part of
 * round(valFraction * n) items. Both parts are returned in ascending order so the training
 * set keeps the dataset's order and only membership depends on the seed.
 */
export function splitValidation(
  indices: ArrayLike<number>, valFraction: number, seed: number | string,
): { train: Int32Array; val: Int32Array } {
  if (!(valFraction >= 0 && valFraction < 1)) {
    throw new DataError(`validation fraction must be in [0, 1), got ${valFraction}`);
  }
  const n = indices.length;
  const shuffled = Int32Array.from(indices);
  let nVal = Math.round(valFraction * n);
  // A requested validation set should never be empty, nor swallow the whole training set.
  if (valFraction > 0 && n >= 2) nVal = Math.min(Math.max(nVal, 1), n - 1);
  if (nVal === 0) return { train: shuffled, val: new Int32Array(0) };
  const rng = seedrandom(String(seed));
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = shuffled[i]!;
    shuffled[i] = shuffled[j]!;
    shuffled[j] = t;
  }
  const val = shuffled.slice(0, nVal).sort();
  const train = shuffled.slice(nVal).sort();
  return { train, val };
}

export interface PrepareOptions {
  /** Use only the first N normal-class training images (before the validation split). */
  subset?: number;
  /** Use only the first N test images. */
  testSubset?: number;
  /** Hold out this fraction of the (subset of) normal training images for validation. */
  valFraction?: number;
  /** Seed of the validation split; default 0. */
  seed?: number | string;
  /** Also return float64 copies (for gradient checks and parity tests). */
  float64?: boolean;
  /**
   * Min/max to use instead of computing them, e.g. those saved with a trained model. By
   * default they come from ALL normal-class training images, as the reference's hard-coded
   * constants do, so a quick `subset` run scales its inputs exactly like a full run.
   */
  constants?: MinMax;
  /** 'gcn-minmax' (default, the paper's) or 'none' (pixels / 255). */
  method?: PreprocessingMethod;
}

export interface PreparedSplit {
  /** count * pixelsPerImage values, each image CHW, min-max scaled. */
  x: Float32Array;
  x64?: Float64Array;
  count: number;
  /** Position of each image in the raw split it came from. */
  indices: Int32Array;
  /** Original class ids 0..9. */
  classes: Uint8Array;
}

export interface PreparedTest extends PreparedSplit {
  /** 0 = normal class, 1 = anomaly (any other class). */
  labels: Uint8Array;
}

export interface OneClassData {
  dataset: TrainDatasetName;
  normalClass: number;
  channels: number;
  height: number;
  width: number;
  pixelsPerImage: number;
  /** GCN min-max constants of the normal class (computed or given; unused by 'none'). */
  constants: MinMax;
  /** What was applied, as saved with a model. */
  preprocessing: Preprocessing;
  /** Normal-class training images only. */
  train: PreparedSplit;
  /** Held-out normal-class training images; count 0 without `valFraction`. */
  val: PreparedSplit;
  test: PreparedTest;
}

function checkCount(what: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isInteger(v) && v > 0)) {
    throw new DataError(`${what} must be a positive integer, got ${v}`);
  }
}

function gather(labels: Uint8Array, idx: Int32Array): Uint8Array {
  const out = new Uint8Array(idx.length);
  for (let k = 0; k < idx.length; k++) out[k] = labels[idx[k]!]!;
  return out;
}

/**
 * One-class setup of the paper: train on the normal class only, test on the whole test set
 * with every other class as anomaly, all images preprocessed as the reference code does.
 */
export function prepareOneClass(raw: RawDataset, normalClass: number, opts: PrepareOptions = {}): OneClassData {
  if (!(Number.isInteger(normalClass) && normalClass >= 0 && normalClass <= 9)) {
    throw new DataError(`normal class must be an integer 0..9, got ${normalClass}`);
  }
  checkCount('subset', opts.subset);
  checkCount('test subset', opts.testSubset);
  const p = raw.channels * raw.height * raw.width;
  const float64 = opts.float64 ?? false;

  const normal: number[] = [];
  for (let i = 0; i < raw.train.count; i++) if (raw.train.labels[i] === normalClass) normal.push(i);
  if (normal.length === 0) {
    throw new DataError(`${raw.name}: no training images of class ${normalClass} in ${raw.source}`);
  }
  const constants = opts.constants ?? computeMinMaxFromBytes(raw.train.images, p, normal);
  const preprocessing = preprocessingOf(opts.method ?? 'gcn-minmax', constants);

  const chosen = opts.subset !== undefined ? normal.slice(0, opts.subset) : normal;
  const { train: trainIdx, val: valIdx } = splitValidation(chosen, opts.valFraction ?? 0, opts.seed ?? 0);

  const build = (images: Uint8Array, labels: Uint8Array, idx: Int32Array): PreparedSplit => ({
    ...applyPreprocessing(images, p, idx, preprocessing, float64),
    count: idx.length,
    indices: idx,
    classes: gather(labels, idx),
  });

  const nTest = Math.min(raw.test.count, opts.testSubset ?? raw.test.count);
  const testIdx = new Int32Array(nTest);
  for (let i = 0; i < nTest; i++) testIdx[i] = i;
  const test = build(raw.test.images, raw.test.labels, testIdx);
  const labels = new Uint8Array(nTest);
  for (let i = 0; i < nTest; i++) labels[i] = test.classes[i] === normalClass ? 0 : 1;

  return {
    dataset: raw.name,
    normalClass,
    channels: raw.channels,
    height: raw.height,
    width: raw.width,
    pixelsPerImage: p,
    constants,
    preprocessing,
    train: build(raw.train.images, raw.train.labels, trainIdx),
    val: build(raw.train.images, raw.train.labels, valIdx),
    test: { ...test, labels },
  };
}
