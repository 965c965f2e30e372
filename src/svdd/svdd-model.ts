/**
 * A trained Deep SVDD model in memory and its one score: the squared distance of an image's code to
 * the center, S(x) = ‖φ(x) − c‖² (minus R² for the soft-boundary objective), and the hybrid's
 * combined score μ1·S(x) + μ2·‖x − dec(φ(x))‖². Training (the loss), evaluation, prediction,
 * Grad-CAM, the explanations and the report all score through these functions, so the summation
 * order, and with it every saved number, is the same everywhere.
 */
import * as ag from '../autograd/index.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { ModelMeta } from './model.ts';
import type { Autoencoder, Encoder } from './networks.ts';

/**
 * A trained model: its metadata (center, radius, preprocessing, thresholds; model.json) and its
 * network. A Deep SVDD model scores with its encoder; a hybrid model with its autoencoder's
 * encoder, and its decoder gives the reconstruction error.
 */
export interface SvddModel {
  readonly meta: ModelMeta;
  /** The network whose weights model.safetensors holds: the encoder, or the hybrid's autoencoder. */
  readonly net: Encoder | Autoencoder;
  /** Codes φ(x) of a batch [n, c, h, w] → [n, repDim]. */
  readonly encode: (x: Tensor) => Tensor;
  readonly encoder: Encoder | null;
  readonly autoencoder: Autoencoder | null;
}

/** The model of `meta` with its network: an autoencoder for meta.kind 'autoencoder' (hybrid), else an encoder. */
export function svddModel(meta: ModelMeta, net: Encoder | Autoencoder): SvddModel {
  if (meta.kind === 'autoencoder') {
    const ae = net as Autoencoder;
    return { meta, net: ae, encode: (x) => ae.encode(x), encoder: null, autoencoder: ae };
  }
  const enc = net as Encoder;
  return { meta, net: enc, encode: (x) => enc.forward(x), encoder: enc, autoencoder: null };
}

/** R², the constant the soft-boundary score subtracts; 0 for the one-class objective. */
export function radiusSquared(meta: Pick<ModelMeta, 'objective' | 'radiusR'>): number {
  return meta.objective === 'soft-boundary' ? meta.radiusR * meta.radiusR : 0;
}

/** Per-sample squared distance ‖z − c‖² of a batch of codes [n, d], as a [n] tensor (autograd). */
export function squaredDistance(z: Tensor, centerC: Tensor): Tensor {
  return ag.sum(ag.square(ag.sub(z, centerC)), 1);
}

/** ‖z_i − c‖² of `count` codes stored row-major in `codes`, summed over coordinates in order. */
export function squaredDistances(codes: ArrayLike<number>, count: number, centerC: ArrayLike<number>): Float64Array {
  const d = centerC.length;
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) { const v = codes[i * d + j]! - centerC[j]!; s += v * v; }
    out[i] = s;
  }
  return out;
}

/** The SVDD scores of codes: ‖z − c‖² − R² (R² = 0 for one-class), as results.json's `score`. */
export function svddScoresOfCodes(codes: ArrayLike<number>, count: number, meta: Pick<ModelMeta, 'centerC' | 'objective' | 'radiusR'>): Float64Array {
  const dist = squaredDistances(codes, count, meta.centerC);
  if (meta.objective !== 'soft-boundary') return dist;
  const r2 = radiusSquared(meta);
  for (let i = 0; i < count; i++) dist[i] = dist[i]! - r2;
  return dist;
}

/** The hybrid's combined score of one image: μ1·svdd + μ2·reconstruction error. */
export function combinedScore(svdd: number, reconstruction: number, hybrid: { mu1: number; mu2: number }): number {
  return hybrid.mu1 * svdd + hybrid.mu2 * reconstruction;
}

/** combinedScore of every image. */
export function combinedScores(svdd: Float64Array, reconstruction: ArrayLike<number>, hybrid: { mu1: number; mu2: number }): Float64Array {
  return svdd.map((d, i) => combinedScore(d, reconstruction[i]!, hybrid));
}

/** combinedScore as autograd ops on [n] tensors (for gradients of the combined score). */
export function combinedScoreTensor(svdd: Tensor, reconstruction: Tensor, hybrid: { mu1: number; mu2: number }): Tensor {
  return ag.add(ag.scale(svdd, hybrid.mu1), ag.scale(reconstruction, hybrid.mu2));
}
