/**
 * The explanation API: explain(model, images) runs any set of attribution methods on the same
 * score of a saved (or just trained) model, and evaluateFaithfulness measures how well each map
 * ranks the pixels that move that score (deletion / insertion against random orders).
 * Images are the network's input, i.e. already preprocessed (predict.ts's preprocessRaw, or a
 * model's test split); baselines live in the same space.
 */
import type { DType } from '../../tensor/kernels/types.ts';
import type { SvddModel } from '../svdd-model.ts';
import { imageFaithfulness, summarizeFaithfulness, type FaithfulnessSummary, type ImageFaithfulness } from './faithfulness.ts';
import { attribute, type Attribution, type MethodSpec } from './methods.ts';
import { asDtype, modelScorer, scoreMany, type ExplainScore, type ImageScorer, type Pixels } from './score.ts';
import type { ProgressCallback } from '../progress.ts';

export type BaselineKind = 'black' | 'mean';
export const BASELINE_KINDS: readonly BaselineKind[] = ['black', 'mean'];

/**
 * The baseline image in network-input space: 'black' is all zeros, the bottom of the model's
 * min-max range (no training pixel is darker); 'mean' the mean of the preprocessed normal-class
 * training images, a "typical normal" image, the natural reference for an anomaly score.
 */
export function baselineImage(kind: BaselineKind, per: number, meanImage?: ArrayLike<number>): Float64Array {
  if (kind === 'black') return new Float64Array(per);
  if (!meanImage || meanImage.length !== per) throw new Error(`the mean baseline needs the mean normal training image (${per} values)`);
  return Float64Array.from(meanImage);
}

/** Mean of `count` flat images. */
export function meanOfImages(images: ArrayLike<number>, count: number, per: number): Float64Array {
  const out = new Float64Array(per);
  for (let i = 0; i < count; i++) for (let p = 0; p < per; p++) out[p]! += images[i * per + p]!;
  for (let p = 0; p < per; p++) out[p] = out[p]! / count;
  return out;
}

/** Gives every attribution a unique id: a repeated method gets its variant appended (gradcam-conv1-act). */
export function assignIds(attributions: Attribution[]): void {
  const counts = new Map<string, number>();
  for (const a of attributions) counts.set(a.spec.method, (counts.get(a.spec.method) ?? 0) + 1);
  const seen = new Set<string>();
  attributions.forEach((a, i) => {
    let id: string = a.spec.method;
    if (counts.get(a.spec.method)! > 1) {
      id = a.spec.method === 'gradcam' ? `gradcam-${a.cam!.layer}-${a.cam!.at}` : `${a.spec.method}-${i}`;
    }
    while (seen.has(id)) id = `${id}-${i}`;
    seen.add(id);
    a.id = id;
  });
}

export interface ExplainOptions {
  /** Which score (default 'svdd'). */
  score?: ExplainScore;
  /** Methods to run (default Grad-CAM at the last conv layer's BatchNorm output). */
  methods?: MethodSpec[];
  /** Baseline of integrated gradients, occlusion and the faithfulness curves (default 'black' unless meanImage is given). */
  baseline?: BaselineKind;
  /** The mean normal training image in network-input space, for the 'mean' baseline. */
  meanImage?: ArrayLike<number>;
  /** Compute in float64 (a float64 copy of the network); default float32, as the model scores. */
  dtype?: DType;
  /** Hears the maps done, method × image, over all methods ('attribution maps'). */
  onProgress?: ProgressCallback;
}

export interface Explanation {
  scorer: ImageScorer;
  baseline: { kind: BaselineKind; image: Float64Array };
  attributions: Attribution[];
}

/** Explains `count` preprocessed images (flat CHW values) with every requested method. */
export function explain(model: SvddModel, x: Pixels, count: number, opts: ExplainOptions = {}): Explanation {
  const scorer = modelScorer(model, opts.score ?? 'svdd', { dtype: opts.dtype });
  return explainWith(scorer, x, count, opts);
}

/** explain() for any scorer (tests build small ones). */
export function explainWith(scorer: ImageScorer, x: Pixels, count: number, opts: Omit<ExplainOptions, 'score' | 'dtype'> = {}): Explanation {
  const per = scorer.shape[0] * scorer.shape[1] * scorer.shape[2];
  if (x.length !== count * per) throw new Error(`explain: expected ${count}×${per} values, got ${x.length}`);
  const kind = opts.baseline ?? (opts.meanImage ? 'mean' : 'black');
  const image = baselineImage(kind, per, opts.meanImage);
  const methods = opts.methods ?? [{ method: 'gradcam', at: 'bn' }];
  const xs = asDtype(x, scorer.dtype);
  const progress = opts.onProgress, total = methods.length * count;
  const attributions = methods.map((m, k) => attribute(scorer, m, xs, count, image, progress && ((done) => progress(k * count + done, total, 'attribution maps'))));
  assignIds(attributions);
  return { scorer, baseline: { kind, image }, attributions };
}

export interface FaithfulnessOptions {
  /** Curve resolution: steps + 1 points (default 50). */
  steps?: number;
  /** Random orders averaged as the floor (default 3). */
  randomSeeds?: number;
  /** Seed of the tie-breaking and random orders (default 0). */
  seed?: number | string;
  /** Hears the images whose curves are done ('faithfulness curves'). */
  onProgress?: ProgressCallback;
}

/**
 * Deletion and insertion curves of every attribution in `e`, for images `which` (positions in the
 * explained batch; default all), replacing pixels with e's baseline.
 */
export function evaluateFaithfulness(
  e: Explanation, x: Pixels, which?: readonly number[], opts: FaithfulnessOptions = {},
): { perImage: ImageFaithfulness[]; summary: FaithfulnessSummary } {
  const { scorer } = e;
  const [c, h, w] = scorer.shape;
  const per = c * h * w, plane = h * w;
  const count = e.attributions[0]?.count ?? x.length / per;
  const idx = which ?? Array.from({ length: count }, (_, i) => i);
  const score = (images: Float64Array, n: number): Float64Array => scoreMany(scorer, asDtype(images, scorer.dtype), n);
  opts.onProgress?.(0, idx.length, 'faithfulness curves');
  const perImage = idx.map((i, k) => {
    const maps: Record<string, Float64Array> = {};
    for (const a of e.attributions) maps[a.id] = a.pixels.subarray(i * plane, (i + 1) * plane);
    const r = imageFaithfulness(score, x.subarray(i * per, (i + 1) * per), e.baseline.image, c, maps, {
      steps: opts.steps ?? 50, randomSeeds: opts.randomSeeds ?? 3, seed: `${opts.seed ?? 0}/${i}`, floor: scorer.floor,
    });
    opts.onProgress?.(k + 1, idx.length, 'faithfulness curves');
    return r;
  });
  return { perImage, summary: summarizeFaithfulness(perImage, e.attributions.map((a) => a.id)) };
}
