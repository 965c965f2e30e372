/**
 * The score every attribution method explains, as a differentiable function of the network's
 * input (preprocessed images), and the two things every method needs of it: scores of many
 * images without a graph, and input gradients.
 */
import * as ag from '../../autograd/index.ts';
import { grad } from '../../autograd/engine.ts';
import type { Module } from '../../nn/index.ts';
import type { DType } from '../../tensor/kernels/types.ts';
import { tensorFromArray, type Tensor } from '../../tensor/tensor.ts';
import { tidy } from '../../tensor/engine.ts';
import { combinedScoreTensor, radiusSquared, type SvddModel } from '../svdd-model.ts';
import { modelScoreFn, netActivation, type BlockActivation, type ScoreFn } from '../gradcam.ts';
import { ModelError, type ModelMeta } from '../model.ts';
import { buildAutoencoder, buildEncoder, type Autoencoder } from '../networks.ts';
import { reconstructionError } from '../trainer.ts';

/** svdd: ‖φ(x) − c‖² (− R² soft-boundary); mahalanobis: of φ(x) under the saved Gaussian; combined: the hybrid's μ1·svdd + μ2·‖x − dec(φ(x))‖². */
export type ExplainScore = 'svdd' | 'mahalanobis' | 'combined';
export const EXPLAIN_SCORES: readonly ExplainScore[] = ['svdd', 'mahalanobis', 'combined'];

/** A model's anomaly score as a function of its input batch [n, c, h, w]. */
export interface ImageScorer {
  readonly name: ExplainScore;
  /** The formula, for captions. */
  readonly formula: string;
  readonly net: Module;
  readonly dtype: DType;
  /** [c, h, w]. */
  readonly shape: readonly [number, number, number];
  readonly activation: BlockActivation;
  /** The score's lower bound S₀: 0 for a squared distance, −R² for soft-boundary (faithfulness curves are normalised with it). */
  readonly floor: number;
  /** Codes φ(x) of a batch (runs `net` once). */
  encode(x: Tensor): Tensor;
  /** Scores of a batch, [n], recorded by autograd; `net` must be in eval mode. */
  score(x: Tensor): Tensor;
}

export interface ScorerOptions {
  /** Compute in this precision; 'float64' rebuilds the network in float64 (ts kernels, exact to ~1e-12). Default: the model's float32. */
  dtype?: DType;
}

/** The scoring network of `model` rebuilt in float64, with the same weights and running statistics. */
function float64Net(model: SvddModel): { net: Module; encode: (x: Tensor) => Tensor; autoencoder: Autoencoder | null } {
  const { meta } = model;
  const values = new Map<string, { shape: readonly number[]; data: ArrayLike<number> }>();
  for (const [name, t] of model.net.stateDict()) values.set(name, { shape: t.shape, data: t.values() });
  if (meta.kind === 'autoencoder') {
    const ae = buildAutoencoder(meta.net, { dtype: 'float64' });
    ae.loadStateDict(values);
    ae.eval();
    return { net: ae, encode: (x) => ae.encode(x), autoencoder: ae };
  }
  const enc = buildEncoder(meta.net, { dtype: 'float64' });
  enc.loadStateDict(values);
  enc.eval();
  return { net: enc, encode: (x) => enc.forward(x), autoencoder: null };
}

export function scoreFormula(meta: ModelMeta, score: ExplainScore): string {
  const svdd = meta.objective === 'soft-boundary' ? '||phi(x) - c||^2 - R^2' : '||phi(x) - c||^2';
  if (score === 'mahalanobis') return 'Mahalanobis^2 of phi(x)';
  if (score === 'combined') return `${meta.hybrid?.mu1}*(${svdd}) + ${meta.hybrid?.mu2}*||x - dec(phi(x))||^2`;
  return svdd;
}

/** The scorer of a saved (or just trained) model for `score`. */
export function modelScorer(model: SvddModel, score: ExplainScore, opts: ScorerOptions = {}): ImageScorer {
  const { meta } = model;
  if (score === 'combined' && (!meta.hybrid || meta.kind !== 'autoencoder')) {
    throw new ModelError('the combined score needs a hybrid model (train with --hybrid)');
  }
  const dtype = opts.dtype ?? 'float32';
  const built = dtype === 'float64' ? float64Net(model) : { net: model.net, encode: model.encode, autoencoder: model.autoencoder };
  const codeScore: ScoreFn = modelScoreFn(meta, score === 'mahalanobis' ? 'mahalanobis' : 'svdd');
  const scoreImages = score === 'combined'
    ? (x: Tensor): Tensor => {
      const ae = built.autoencoder!;
      const z = built.encode(x);
      return combinedScoreTensor(codeScore(z), reconstructionError(ae.decode(z), x), meta.hybrid!);
    }
    : (x: Tensor): Tensor => codeScore(built.encode(x));
  const r2 = radiusSquared(meta);
  const floor = score === 'mahalanobis' ? 0 : score === 'combined' ? -meta.hybrid!.mu1 * r2 : -r2;
  return {
    name: score, formula: scoreFormula(meta, score), net: built.net, dtype, shape: meta.inputShape, floor,
    activation: netActivation(meta.net), encode: built.encode, score: scoreImages,
  };
}

/** A scorer from parts (tests, other networks). */
export function customScorer(parts: Omit<ImageScorer, 'formula' | 'name' | 'activation' | 'floor'> & Partial<Pick<ImageScorer, 'formula' | 'name' | 'activation' | 'floor'>>): ImageScorer {
  return { name: 'svdd', formula: 'S(x)', activation: { name: 'leaky', slope: 0.01 }, floor: 0, ...parts };
}

/** Images per batch for scoring (no graph) and for gradients (graph kept until backward). */
export const SCORE_BATCH = 200;
export const GRAD_BATCH = 64;

export type Pixels = Float32Array | Float64Array;

/** values in `dtype`: the array itself when it already is, else a converted copy. */
export function asDtype(values: Pixels, dtype: DType): Pixels {
  if (dtype === 'float64') return values instanceof Float64Array ? values : Float64Array.from(values);
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

/** Runs fn with `net` in eval mode (restored afterwards). */
export function inEval<T>(net: Module, fn: () => T): T {
  const was = net.training;
  net.eval();
  try { return fn(); } finally { net.train(was); }
}

/** Scores of `count` images (flat CHW values), in batches, without recording a graph; `onImages` hears the images done. */
export function scoreMany(scorer: ImageScorer, images: Pixels, count: number, batch = SCORE_BATCH, onImages?: (done: number) => void): Float64Array {
  const per = scorer.shape[0] * scorer.shape[1] * scorer.shape[2];
  if (images.length !== count * per) throw new Error(`scoreMany: expected ${count}×${per} values, got ${images.length}`);
  const out = new Float64Array(count);
  inEval(scorer.net, () => ag.noGrad(() => {
    for (let start = 0; start < count; start += batch) {
      const n = Math.min(batch, count - start);
      const chunk = images.subarray(start * per, (start + n) * per);
      tidy(() => {
        const s = scorer.score(tensorFromArray(asDtype(chunk, scorer.dtype), [n, ...scorer.shape])).values();
        for (let i = 0; i < n; i++) out[start + i] = s[i]!;
      });
      onImages?.(start + n);
    }
  }));
  return out;
}

/**
 * Scores and ∂S_i/∂x_i of `count` images. In eval mode the images of a batch do not interact, so
 * one backward pass of Σ_i S_i gives every image its own gradient. Parameters are frozen for the
 * pass (no weight gradients are computed; restored afterwards). `onImages` hears the images done.
 */
export function inputGradients(scorer: ImageScorer, images: Pixels, count: number, batch = GRAD_BATCH, onImages?: (done: number) => void): { scores: Float64Array; grads: Float64Array } {
  const per = scorer.shape[0] * scorer.shape[1] * scorer.shape[2];
  if (images.length !== count * per) throw new Error(`inputGradients: expected ${count}×${per} values, got ${images.length}`);
  const scores = new Float64Array(count), grads = new Float64Array(count * per);
  const params = scorer.net.parameters();
  const flags = params.map((p) => p.requiresGrad);
  for (const p of params) p.requiresGrad = false;
  try {
    inEval(scorer.net, () => {
      for (let start = 0; start < count; start += batch) {
        const n = Math.min(batch, count - start);
        const chunk = images.subarray(start * per, (start + n) * per);
        tidy(() => {
          const x = tensorFromArray(asDtype(chunk, scorer.dtype), [n, ...scorer.shape]).requireGrad();
          const s = scorer.score(x);
          const [g] = grad(ag.sum(s), [x]) as [Tensor];
          const sv = s.values(), gv = g.values();
          for (let i = 0; i < n; i++) scores[start + i] = sv[i]!;
          for (let i = 0; i < n * per; i++) grads[start * per + i] = gv[i]!;
        });
        onImages?.(start + n);
      }
    });
  } finally {
    params.forEach((p, i) => { p.requiresGrad = flags[i]!; });
  }
  return { scores, grads };
}
