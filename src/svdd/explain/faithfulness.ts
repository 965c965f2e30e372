/**
 * Faithfulness of an attribution map, measured (Petsiuk et al. 2018, RISE; Samek et al. 2017):
 *
 *   deletion   start from x and replace pixels (all channels of a location) with the baseline, in
 *              order of decreasing attribution; track S. A map that finds what makes x anomalous
 *              makes S fall early: a LOW area under the curve is good.
 *   insertion  start from the baseline and put x's pixels back in the same order: S should rise
 *              early, a HIGH area is good.
 *
 * Curves have steps + 1 points, point k with round(k·P/steps) of the P pixels changed, on a [0, 1]
 * axis; areas by the trapezoid rule. Scores are normalised per image as (S − S₀) / (S(x) − S₀),
 * S₀ the score's lower bound (0 for a squared distance, −R² for soft-boundary): the share of the
 * image's own distance that is left (deletion) or reached (insertion), so areas can be averaged
 * over images. The areas are of the curves clipped to [0, 1]: a score is unbounded above, and
 * half-deleted or half-inserted images are often MORE anomalous than x itself (off-manifold
 * mixtures); unclipped, that overshoot would reward insertion orders for making odd images rather
 * than for reaching x's score early. The raw areas (score units, unclipped) are kept beside them. (Normalising by S(x) − S(b) instead, as for classifier probabilities, divides by
 * nearly zero for the many anomalies that score close to the baseline.) Random pixel orders
 * (averaged over seeds) are the floor a map has to beat. Ties (e.g. the zeros of a Grad-CAM map)
 * are broken by a seeded random key, never by position, which would favour the top rows.
 */
import { Rng } from '../../tensor/creation.ts';

/** Scores of `count` flat CHW images. */
export type BatchScore = (images: Float64Array, count: number) => Float64Array;

/** Pixel indices by decreasing value; ties in seeded random order. */
export function attributionOrder(map: ArrayLike<number>, rng: Rng): Int32Array {
  const n = map.length;
  const key = Float64Array.from({ length: n }, () => rng.uniform());
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => (map[b]! - map[a]!) || (key[a]! - key[b]!));
  return Int32Array.from(idx);
}

/** A uniformly random order of `n` pixels. */
export function randomOrder(n: number, rng: Rng): Int32Array {
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  rng.shuffle(idx);
  return idx;
}

/** How many pixels are changed at each of the steps + 1 curve points. */
export function curveCounts(pixels: number, steps: number): Int32Array {
  if (!(Number.isInteger(steps) && steps >= 1)) throw new Error(`curve steps must be a positive integer, got ${steps}`);
  return Int32Array.from({ length: steps + 1 }, (_, k) => Math.round((k * pixels) / steps));
}

/**
 * The images of a deletion (or insertion) curve: point k is x with the first counts[k] pixels of
 * `order` set to the baseline (insertion: the baseline with them set to x). [steps + 1, c·h·w].
 */
export function perturbedImages(
  x: ArrayLike<number>, baseline: ArrayLike<number>, order: ArrayLike<number>, channels: number, kind: 'deletion' | 'insertion', steps: number,
): Float64Array {
  const per = x.length, plane = per / channels;
  if (baseline.length !== per || order.length !== plane || !Number.isInteger(plane)) {
    throw new Error(`perturbedImages: x has ${per} values, baseline ${baseline.length}, order ${order.length} pixels of ${channels} channel(s)`);
  }
  const counts = curveCounts(plane, steps);
  const [from, to] = kind === 'deletion' ? [x, baseline] : [baseline, x];
  const out = new Float64Array((steps + 1) * per);
  const cur = Float64Array.from(from);
  let done = 0;
  for (let k = 0; k <= steps; k++) {
    for (; done < counts[k]!; done++) {
      const p = order[done]!;
      for (let ch = 0; ch < channels; ch++) cur[ch * plane + p] = to[ch * plane + p]!;
    }
    out.set(cur, k * per);
  }
  return out;
}

/** Area under a curve sampled uniformly on [0, 1] (trapezoid rule). */
export function curveArea(curve: ArrayLike<number>): number {
  const m = curve.length - 1;
  if (m < 1) throw new Error('curveArea: a curve needs at least two points');
  let s = 0;
  for (let k = 0; k < m; k++) s += (curve[k]! + curve[k + 1]!) / 2;
  return s / m;
}

/** (S − S₀) / (S(x) − S₀) per point; null when S(x) is at the bound S₀ (nothing to normalise by). */
export function normalizeCurve(curve: ArrayLike<number>, scoreX: number, floor: number): Float64Array | null {
  const d = scoreX - floor;
  if (!(d > 1e-12 * Math.max(1, Math.abs(scoreX), Math.abs(floor)))) return null;
  return Float64Array.from(curve, (s) => (s - floor) / d);
}

export interface CurvePair {
  /** Raw scores along the curves, steps + 1 points each. */
  deletion: Float64Array;
  insertion: Float64Array;
}

/** Deletion and insertion curves of one image for each order, scored in one batch per order pair. */
export function perturbationCurves(
  score: BatchScore, x: ArrayLike<number>, baseline: ArrayLike<number>, orders: readonly ArrayLike<number>[], channels: number, steps: number,
): CurvePair[] {
  const per = x.length, pts = steps + 1;
  const images = new Float64Array(orders.length * 2 * pts * per);
  orders.forEach((order, o) => {
    images.set(perturbedImages(x, baseline, order, channels, 'deletion', steps), (2 * o) * pts * per);
    images.set(perturbedImages(x, baseline, order, channels, 'insertion', steps), (2 * o + 1) * pts * per);
  });
  const s = score(images, orders.length * 2 * pts);
  return orders.map((_, o) => ({ deletion: s.slice(2 * o * pts, (2 * o + 1) * pts), insertion: s.slice((2 * o + 1) * pts, (2 * o + 2) * pts) }));
}

export interface ImageFaithfulness {
  scoreX: number;
  scoreBaseline: number;
  /** S₀, the score's lower bound the curves are normalised with. */
  floor: number;
  /** Per method id: areas of the normalised curves clipped to [0, 1] (null when S(x) is at the floor) and of the raw ones (score units). */
  methods: Record<string, { deletion: number | null; insertion: number | null; deletionRaw: number; insertionRaw: number }>;
  /** Random orders: the curves averaged over seeds first, then their areas. */
  random: { deletion: number | null; insertion: number | null; deletionRaw: number; insertionRaw: number };
  /** Raw curves, for plots: per method id and 'random'. */
  curves: Record<string, CurvePair>;
}

/** Values clipped to [0, 1]. */
export function clip01(curve: ArrayLike<number>): Float64Array {
  return Float64Array.from(curve, (v) => (v < 0 ? 0 : v > 1 ? 1 : v));
}

function areas(c: CurvePair, sx: number, floor: number): { deletion: number | null; insertion: number | null; deletionRaw: number; insertionRaw: number } {
  const d = normalizeCurve(c.deletion, sx, floor), i = normalizeCurve(c.insertion, sx, floor);
  return { deletion: d && curveArea(clip01(d)), insertion: i && curveArea(clip01(i)), deletionRaw: curveArea(c.deletion), insertionRaw: curveArea(c.insertion) };
}

/**
 * Deletion/insertion for one image: every map in `maps` (method id → [h·w] per-pixel values) and
 * `randomSeeds` random orders. The curves' end points are S(x) and S(baseline) by construction.
 */
export function imageFaithfulness(
  score: BatchScore, x: ArrayLike<number>, baseline: ArrayLike<number>, channels: number, maps: Record<string, ArrayLike<number>>,
  opts: { steps: number; randomSeeds: number; seed: number | string; floor?: number },
): ImageFaithfulness {
  const floor = opts.floor ?? 0;
  const plane = x.length / channels;
  const ids = Object.keys(maps);
  const rng = new Rng(`${opts.seed}`);
  const orders = ids.map((id) => attributionOrder(maps[id]!, rng.child(`ties/${id}`)));
  for (let r = 0; r < opts.randomSeeds; r++) orders.push(randomOrder(plane, rng.child(`random/${r}`)));
  const curves = perturbationCurves(score, x, baseline, orders, channels, opts.steps);
  const sx = curves[0]?.deletion[0] ?? score(Float64Array.from(x), 1)[0]!;
  const sb = curves[0]?.deletion[opts.steps] ?? score(Float64Array.from(baseline), 1)[0]!;
  const out: ImageFaithfulness = { scoreX: sx, scoreBaseline: sb, floor, methods: {}, random: { deletion: null, insertion: null, deletionRaw: NaN, insertionRaw: NaN }, curves: {} };
  ids.forEach((id, k) => { out.methods[id] = areas(curves[k]!, sx, floor); out.curves[id] = curves[k]!; });
  if (opts.randomSeeds > 0) {
    const pts = opts.steps + 1;
    const mean: CurvePair = { deletion: new Float64Array(pts), insertion: new Float64Array(pts) };
    for (let r = 0; r < opts.randomSeeds; r++) {
      const c = curves[ids.length + r]!;
      for (let k = 0; k < pts; k++) { mean.deletion[k]! += c.deletion[k]! / opts.randomSeeds; mean.insertion[k]! += c.insertion[k]! / opts.randomSeeds; }
    }
    out.random = areas(mean, sx, floor);
    out.curves.random = mean;
  }
  return out;
}

export interface FaithfulnessSummary {
  images: number;
  /** Images whose S(x) is at the score's lower bound (left out of the normalised means). */
  degenerate: number;
  /** Images whose baseline scores above the image itself (deletion then moves towards a MORE anomalous image). */
  baselineAbove: number;
  rows: { id: string; deletion: MeanSd; insertion: MeanSd; deletionRaw: MeanSd; insertionRaw: MeanSd }[];
}

export interface MeanSd { mean: number | null; sd: number | null }

function meanSd(values: readonly (number | null)[]): MeanSd {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x));
  if (v.length === 0) return { mean: null, sd: null };
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1)) : 0;
  return { mean: m, sd };
}

/** Mean ± sd over images of each method's areas, the random floor last. */
export function summarizeFaithfulness(results: readonly ImageFaithfulness[], ids: readonly string[]): FaithfulnessSummary {
  const row = (id: string, get: (r: ImageFaithfulness) => ImageFaithfulness['random']) => ({
    id,
    deletion: meanSd(results.map((r) => get(r).deletion)),
    insertion: meanSd(results.map((r) => get(r).insertion)),
    deletionRaw: meanSd(results.map((r) => get(r).deletionRaw)),
    insertionRaw: meanSd(results.map((r) => get(r).insertionRaw)),
  });
  return {
    images: results.length,
    degenerate: results.filter((r) => normalizeCurve([0], r.scoreX, r.floor) === null).length,
    baselineAbove: results.filter((r) => r.scoreBaseline > r.scoreX).length,
    rows: [...ids.map((id) => row(id, (r) => r.methods[id]!)), row('random', (r) => r.random)],
  };
}

/** Per method id (and 'random'): the normalised curves averaged over the images that have them. */
export function meanNormalizedCurves(results: readonly ImageFaithfulness[]): Record<string, { deletion: number[]; insertion: number[]; images: number }> {
  const out: Record<string, { deletion: number[]; insertion: number[]; images: number }> = {};
  for (const r of results) {
    for (const [id, c] of Object.entries(r.curves)) {
      const d = normalizeCurve(c.deletion, r.scoreX, r.floor), i = normalizeCurve(c.insertion, r.scoreX, r.floor);
      if (!d || !i) continue;
      const acc = out[id] ??= { deletion: new Array<number>(d.length).fill(0), insertion: new Array<number>(i.length).fill(0), images: 0 };
      d.forEach((v, k) => { acc.deletion[k]! += v; });
      i.forEach((v, k) => { acc.insertion[k]! += v; });
      acc.images++;
    }
  }
  for (const acc of Object.values(out)) {
    acc.deletion = acc.deletion.map((v) => v / acc.images);
    acc.insertion = acc.insertion.map((v) => v / acc.images);
  }
  return out;
}
