/**
 * Scoring new images with a saved model: reading them (PNG, IDX image file, CIFAR-10 batch),
 * preprocessing them exactly as the training data was (pixel/255 → GCN-L1 per image → min-max
 * with the model's saved constants), scoring, and deciding with the saved label-free threshold.
 */
import { decodePng, pngInfo } from './images.ts';
import { DataError } from './data/errors.ts';
import { fitImage, type ResizeMode } from './data/folder.ts';
import { contentHead, readInputFile, readMaybeGzip } from './data/files.ts';
import { gunzipBounded, isGzip, type GunzipResult } from '../tensor/io/bounded.ts';
import { readIdxImages, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC } from './data/idx.ts';
import { CIFAR_BATCH_LIMIT, CIFAR_BATCH_RECORDS, CIFAR_CHANNELS, CIFAR_RECORD, CIFAR_SIZE, readCifarBatch } from './data/cifar.ts';
import { applyPreprocessing, type MinMax, type Preprocessing } from './data/preprocess.ts';
import { Gaussian } from './gaussian.ts';
import { ModelError, type DecisionRule, type ModelMeta, type ThresholdRecord } from './model.ts';
import { encodeAll } from './trainer.ts';
import { svddScoresOfCodes, type SvddModel } from './svdd-model.ts';
import type { ProgressCallback } from './progress.ts';

export type DecisionScore = 'svdd' | 'mahalanobis';
export type Decision = 'normal' | 'anomalous';

/** uint8 images in the model's CHW layout, with a display name for each. */
export interface RawImageBatch {
  /** `file` for a PNG, `file#i` for the i-th image of an IDX or CIFAR file. */
  names: string[];
  /** count × C×H×W bytes. */
  images: Uint8Array;
  count: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function describeShape([c, h, w]: readonly [number, number, number]): string {
  return `${c === 1 ? 'grayscale' : c === 3 ? 'RGB' : `${c}-channel`} ${h}×${w}`;
}

/**
 * A decoded PNG as the model's bytes. An RGB PNG whose three channels are equal everywhere is
 * accepted as grayscale, since many tools save grey images as RGB.
 */
function pngToModelBytes(path: string, bytes: Uint8Array, shape: readonly [number, number, number]): Uint8Array {
  const [c, h, w] = shape;
  // The header's size is checked before anything is decoded: a 20000×20000 header costs nothing.
  const info = pngInfo(bytes, path);
  if (info.height !== h || info.width !== w) {
    throw new DataError(`${path}: image is ${info.channels === 1 ? 'grayscale' : 'RGB'} ${info.height}×${info.width}, the model expects ${describeShape(shape)} images (resize it first)`, path);
  }
  const img = decodePng(bytes, path);
  const got = `${img.channels === 1 ? 'grayscale' : 'RGB'} ${img.height}×${img.width}`;
  const plane = h * w;
  const toByte = (v: number): number => Math.round(v * 255);
  if (img.channels === c) return Uint8Array.from(img.data, toByte);
  if (c === 1 && img.channels === 3) {
    const d = img.data;
    for (let i = 0; i < plane; i++) {
      if (d[i] !== d[plane + i] || d[i] !== d[2 * plane + i]) {
        throw new DataError(`${path}: image is a colour ${img.height}×${img.width} PNG, the model expects ${describeShape(shape)} images`, path);
      }
    }
    return Uint8Array.from(d.subarray(0, plane), toByte);
  }
  throw new DataError(`${path}: image is ${got}, the model expects ${describeShape(shape)} images`, path);
}

/**
 * Reads every image in `path`, recognised by content: PNG (one image), IDX3 unsigned-byte image
 * file (MNIST layout, gzipped or not) or CIFAR-10 binary batch. Sizes must match the model, but
 * for PNGs when `resize` is given (a --dataset folder model's, data/folder.ts).
 * Only regular files are read, and nothing is decompressed beyond what the format allows.
 */
export function readInputImages(path: string, shape: readonly [number, number, number], resize?: ResizeMode): RawImageBatch {
  const raw = readInputFile(path);
  const head = contentHead(path, raw, 16);
  const [c, h, w] = shape;
  if (PNG_SIGNATURE.every((b, i) => head[i] === b)) {
    const bytes = isGzip(raw) ? readMaybeGzip(path, { what: 'a PNG file' }) : raw;
    // A --dataset folder model fits PNGs of any size as its training images were fitted.
    const images = resize ? fitImage(decodePng(bytes, path), shape, resize) : pngToModelBytes(path, bytes, shape);
    return { names: [path], images, count: 1 };
  }
  const magic = head.length >= 4 ? ((head[0]! << 24) >>> 0) + (head[1]! << 16) + (head[2]! << 8) + head[3]! : -1;
  const numbered = (count: number): string[] => Array.from({ length: count }, (_, i) => `${path}#${i}`);
  if (magic === IDX_IMAGES_MAGIC || magic === IDX_LABELS_MAGIC) {
    if (c !== 1) throw new DataError(`${path}: an IDX file holds grayscale images, the model expects ${describeShape(shape)} images`, path);
    const idx = readIdxImages(path, { rows: h, cols: w });
    return { names: numbered(idx.count), images: idx.images, count: idx.count };
  }
  let length = raw.length;
  if (isGzip(raw)) {
    let r: GunzipResult;
    try { r = gunzipBounded(raw, CIFAR_BATCH_LIMIT.maxBytes); } catch (e) { throw new DataError(`${path}: ${(e as Error).message}`, path); }
    length = r.overflow ? -1 : r.data.length;
  }
  if (length > 0 && length % CIFAR_RECORD === 0 && length <= CIFAR_BATCH_LIMIT.maxBytes) {
    if (c !== CIFAR_CHANNELS || h !== CIFAR_SIZE || w !== CIFAR_SIZE) {
      throw new DataError(`${path}: a CIFAR-10 batch holds RGB 32×32 images, the model expects ${describeShape(shape)} images`, path);
    }
    const batch = readCifarBatch(path);
    return { names: numbered(batch.count), images: batch.images, count: batch.count };
  }
  const hint = length < 0 || length > CIFAR_BATCH_LIMIT.maxBytes ? ` (a CIFAR-10 batch holds at most ${CIFAR_BATCH_RECORDS} records)` : '';
  throw new DataError(`${path}: not a PNG, an IDX image file or a CIFAR-10 binary batch${hint}`, path);
}

/** The training pipeline for `count` uint8 CHW images: /255, GCN-L1 per image, min-max with `constants` (or as `prep` says). */
export function preprocessRaw(images: Uint8Array, count: number, pixelsPerImage: number, constants: MinMax | Preprocessing): Float32Array {
  if (images.length !== count * pixelsPerImage) {
    throw new Error(`preprocessRaw: expected ${count}×${pixelsPerImage} bytes, got ${images.length}`);
  }
  return applyPreprocessing(images, pixelsPerImage, Int32Array.from({ length: count }, (_, i) => i), constants).x;
}

/**
 * Scores of preprocessed images: 'svdd' is ‖φ(x) − c‖² (minus R² for soft-boundary), as
 * results.json's `score`; 'mahalanobis' the squared Mahalanobis distance of φ(x) under the saved
 * Gaussian, as results.json's `mahalanobis`. `onProgress` hears the images encoded ('scoring').
 */
export function scoreInputs(model: SvddModel, x: Float32Array, count: number, score: DecisionScore, onProgress?: ProgressCallback): Float64Array {
  const { meta } = model;
  if (score === 'mahalanobis' && !meta.gaussian) {
    throw new ModelError('the model has no Gaussian for the Mahalanobis score (train with --threshold adaptive)');
  }
  if (count === 0) return new Float64Array(0);
  const codes = encodeAll(model.encode, model.net, { x, count, shape: meta.inputShape }, undefined, onProgress && ((done, total) => onProgress(done, total, 'scoring')));
  if (score === 'mahalanobis') return Gaussian.fromJSON(meta.gaussian).mahalanobisSqBatch(codes);
  return svddScoresOfCodes(codes, count, meta);
}

/** What decides: a threshold calibrated on held-out normal data, or the rule of a model trained without one. */
export type DecisionThreshold = ThresholdRecord | DecisionRule;

/** The saved calibrated threshold for a score, the empirical quantile preferred over χ²; null when none was saved. */
export function decisionThreshold(meta: ModelMeta, score: DecisionScore): ThresholdRecord | null {
  const forScore = meta.thresholds.filter((t) => t.score === score);
  return forScore.find((t) => t.method === 'quantile') ?? forScore[0] ?? null;
}

/**
 * What decides for a score: the saved calibrated threshold (decisionThreshold), else for the SVDD
 * score the model's decision rule (contamination of the training scores, or the soft-boundary
 * radius; a soft-boundary model saved before decision rules existed gets its radius); null when
 * there is none.
 */
export function decisionRuleFor(meta: ModelMeta, score: DecisionScore): DecisionThreshold | null {
  const calibrated = decisionThreshold(meta, score);
  if (calibrated) return calibrated;
  if (score !== 'svdd') return null;
  if (meta.decisionRule) return meta.decisionRule;
  if (meta.objective === 'soft-boundary') return { method: 'radius', tau: 0, score: 'svdd', radiusR: meta.radiusR };
  return null;
}

/** How a threshold was chosen, in words (predict prints it). */
export function describeThreshold(t: DecisionThreshold): string {
  switch (t.method) {
    case 'quantile': return `the (1 − α) quantile of the scores of held-out normal images, α ${t.alpha}`;
    case 'chi2': return `the χ² quantile for the Mahalanobis score, α ${t.alpha}`;
    case 'contamination': return `no validation split: the (1 − c) quantile of the training scores of ${t.trainingImages} images, contamination ${t.contamination}`;
    case 'radius': return `no validation split: the soft-boundary radius R = ${t.radiusR.toPrecision(6)}, anomalous when ‖φ(x) − c‖² > R²`;
  }
}

/**
 * Anomalous when score > τ, strictly: the rule the thresholds were fitted and evaluated with. A
 * score that is not a finite number (NaN, ±Infinity) is anomalous: a decision fails closed.
 */
export function decide(score: number, tau: number): Decision {
  if (!Number.isFinite(score)) return 'anomalous';
  return score > tau ? 'anomalous' : 'normal';
}

export interface Prediction {
  /** `file` or `file#i`. */
  input: string;
  score: number;
  /** null when the model has no saved threshold for the score. */
  decision: Decision | null;
}

/** An input file that could not be read, with the one-line reason (which names the file). */
export interface InputFailure {
  input: string;
  error: string;
}

export interface PredictionReport {
  score: DecisionScore;
  threshold: DecisionThreshold | null;
  predictions: Prediction[];
  /** Inputs that were skipped because they could not be read; empty when every file was read. */
  failures: InputFailure[];
}

/**
 * Reads, preprocesses, scores and decides every image in `paths` (default score: the model's
 * decision score). A file that cannot be read (a DataError: missing, malformed, wrong size) does
 * not stop the others: it is listed in `failures` and the rest are scored. `onProgress` hears the
 * files read ('reading the input files'), then the images scored ('scoring').
 */
export function predictFiles(model: SvddModel, paths: readonly string[], score: DecisionScore = model.meta.decisionScore, onProgress?: ProgressCallback): PredictionReport {
  const { meta } = model;
  const shape = meta.inputShape;
  const per = shape[0] * shape[1] * shape[2];
  const batches: RawImageBatch[] = [];
  const failures: InputFailure[] = [];
  paths.forEach((p, k) => {
    onProgress?.(k, paths.length, 'reading the input files');
    try {
      batches.push(readInputImages(p, shape, meta.resize));
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
      failures.push({ input: p, error: e.message });
    }
  });
  onProgress?.(paths.length, paths.length, 'reading the input files');
  const count = batches.reduce((a, b) => a + b.count, 0);
  const threshold = decisionRuleFor(meta, score);
  if (count === 0) return { score, threshold, predictions: [], failures };
  const images = new Uint8Array(count * per);
  let at = 0;
  for (const b of batches) { images.set(b.images, at * per); at += b.count; }
  const scores = scoreInputs(model, preprocessRaw(images, count, per, meta.preprocessing), count, score, onProgress);
  const names = batches.flatMap((b) => b.names);
  return {
    score,
    threshold,
    predictions: names.map((input, i) => ({ input, score: scores[i]!, decision: threshold ? decide(scores[i]!, threshold.tau) : null })),
    failures,
  };
}
