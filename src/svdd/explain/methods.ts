/**
 * Attribution methods for the anomaly score S(x) of one-class models, all on the network's input
 * (preprocessed images, [n, c, h, w]) and all explaining the same ImageScorer:
 *
 *   gradcam     Grad-CAM at a conv layer (gradcam.ts), bilinearly upsampled to the image;
 *               non-negative, in CAM units (score per unit of feature), resolution of the layer.
 *   gradxinput  x ⊙ ∂S/∂x (Shrikumar et al. 2016): a first-order Taylor term relative to x = 0.
 *   ig          integrated gradients (Sundararajan et al. 2017): (x − b) ⊙ ∫₀¹ ∂S/∂x(b + α(x − b)) dα
 *               with the midpoint rule over `steps` points; completeness: Σ attributions =
 *               S(x) − S(b) up to the quadrature error (reported per image).
 *   occlusion   (Zeiler & Fergus 2014) S(x) − S(x with a patch replaced by the baseline), spread
 *               evenly over the patch's pixels and averaged over the patches covering each pixel;
 *               model-agnostic, no gradients: the reference the others are judged against.
 *
 * Every method returns per-element attributions where it has them ([n, c·h·w]) and a per-pixel
 * map [n, h·w] (channels summed), which figures and deletion/insertion curves use. Positive
 * values push the score up (towards "anomalous").
 */
import { tensorFromArray } from '../../tensor/tensor.ts';
import { tidy } from '../../tensor/engine.ts';
import { convLayerNames, gradCam, lastConvLayer, type CamTarget } from '../gradcam.ts';
import { asDtype, inputGradients, scoreMany, type ImageScorer, type Pixels } from './score.ts';

export type MethodName = 'gradcam' | 'gradxinput' | 'ig' | 'occlusion';
export const METHOD_NAMES: readonly MethodName[] = ['gradcam', 'gradxinput', 'ig', 'occlusion'];

export interface GradCamSpec { method: 'gradcam'; layer?: string; at?: CamTarget }
export interface GradXInputSpec { method: 'gradxinput' }
export interface IgSpec { method: 'ig'; steps: number }
export interface OcclusionSpec { method: 'occlusion'; patch: number; stride: number }
export type MethodSpec = GradCamSpec | GradXInputSpec | IgSpec | OcclusionSpec;

export interface Attribution {
  spec: MethodSpec;
  /** Short name for files and tables: the method, with layer and target for Grad-CAM when asked. */
  id: string;
  /** Human-readable, for captions, e.g. "Grad-CAM conv2 (after BN + activation)". */
  label: string;
  /** The unit of the values, for colour bars. */
  unit: string;
  count: number;
  /** S(x) per image as this computation saw it. */
  scores: Float64Array;
  /** Per-element attributions [n, c·h·w]; null for Grad-CAM (it has only a spatial map). */
  elements: Float64Array | null;
  /** Per-pixel map [n, h·w]. */
  pixels: Float64Array;
  /** Whether the map can be negative. */
  signed: boolean;
  /** Integrated gradients: S(baseline), Σ attributions and the completeness gap per image. */
  completeness?: { baselineScores: Float64Array; sums: Float64Array; gaps: Float64Array };
  /** Grad-CAM: the layer, target, CAM grid size and the map before its ReLU (diagnosis). */
  cam?: { layer: string; at: CamTarget; height: number; width: number; linear: Float64Array };
}

const TARGET_WORDS: Record<CamTarget, string> = { conv: 'raw conv output, before BN', bn: 'after BN', act: 'after BN + activation' };

/** Sums [n, c, h·w] over channels into [n, h·w]. */
export function channelSum(elements: ArrayLike<number>, n: number, c: number, plane: number): Float64Array {
  const out = new Float64Array(n * plane);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) {
    const base = (i * c + ch) * plane;
    for (let p = 0; p < plane; p++) out[i * plane + p]! += elements[base + p]!;
  }
  return out;
}

function dims(scorer: ImageScorer): { c: number; h: number; w: number; plane: number; per: number } {
  const [c, h, w] = scorer.shape;
  return { c, h, w, plane: h * w, per: c * h * w };
}

/** Hears how many images of the batch a method has finished (explain's progress). */
export type ImagesDone = (done: number) => void;

/** x ⊙ ∂S/∂x. */
export function gradientTimesInput(scorer: ImageScorer, x: Pixels, count: number, onImages?: ImagesDone): Attribution {
  const { c, plane } = dims(scorer);
  const { scores, grads } = inputGradients(scorer, x, count, undefined, onImages);
  const elements = Float64Array.from(grads, (g, i) => g * x[i]!);
  return {
    spec: { method: 'gradxinput' }, id: 'gradxinput', label: 'gradient x input', unit: 'score',
    count, scores, elements, pixels: channelSum(elements, count, c, plane), signed: true,
  };
}

/**
 * Integrated gradients with the midpoint rule: α_k = (k + ½)/steps, k = 0..steps−1. `baselines`
 * holds one baseline per image ([n, c·h·w]) or one for all ([c·h·w]).
 */
export function integratedGradients(scorer: ImageScorer, x: Pixels, count: number, baselines: Pixels, steps: number, onImages?: ImagesDone): Attribution {
  if (!(Number.isInteger(steps) && steps >= 1)) throw new Error(`integratedGradients: steps must be a positive integer, got ${steps}`);
  const { c, plane, per } = dims(scorer);
  const shared = baselines.length === per;
  if (!shared && baselines.length !== count * per) throw new Error(`integratedGradients: baselines must hold ${per} or ${count}×${per} values, got ${baselines.length}`);
  const base = (i: number): Pixels => (shared ? baselines : baselines.subarray(i * per, (i + 1) * per));
  const elements = new Float64Array(count * per);
  // Path points of up to `chunk` images at a time (steps points each) form one gradient batch.
  const chunk = Math.max(1, Math.floor(256 / steps));
  for (let start = 0; start < count; start += chunk) {
    const n = Math.min(chunk, count - start);
    const path = new Float64Array(n * steps * per);
    for (let i = 0; i < n; i++) {
      const xi = x.subarray((start + i) * per, (start + i + 1) * per), bi = base(start + i);
      for (let k = 0; k < steps; k++) {
        const a = (k + 0.5) / steps, off = (i * steps + k) * per;
        for (let p = 0; p < per; p++) path[off + p] = bi[p]! + a * (xi[p]! - bi[p]!);
      }
    }
    const { grads } = inputGradients(scorer, asDtype(path, scorer.dtype), n * steps);
    for (let i = 0; i < n; i++) {
      const xi = x.subarray((start + i) * per, (start + i + 1) * per), bi = base(start + i);
      const out = elements.subarray((start + i) * per, (start + i + 1) * per);
      for (let k = 0; k < steps; k++) {
        const g = grads.subarray((i * steps + k) * per, (i * steps + k + 1) * per);
        for (let p = 0; p < per; p++) out[p]! += g[p]!;
      }
      for (let p = 0; p < per; p++) out[p] = (out[p]! / steps) * (xi[p]! - bi[p]!);
    }
    onImages?.(start + n);
  }
  const scores = scoreMany(scorer, x, count);
  const allBase = shared ? new Float64Array(count * per).map((_, i) => baselines[i % per]!) : baselines;
  const baselineScores = scoreMany(scorer, asDtype(allBase, scorer.dtype), count);
  const sums = new Float64Array(count), gaps = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    let s = 0;
    for (let p = 0; p < per; p++) s += elements[i * per + p]!;
    sums[i] = s;
    gaps[i] = s - (scores[i]! - baselineScores[i]!);
  }
  return {
    spec: { method: 'ig', steps }, id: 'ig', label: `integrated gradients (${steps} steps)`, unit: 'score',
    count, scores, elements, pixels: channelSum(elements, count, c, plane), signed: true,
    completeness: { baselineScores, sums, gaps },
  };
}

/** Top-left corners of patches of size `patch` every `stride`, the last one flush with the edge. */
export function patchStarts(size: number, patch: number, stride: number): number[] {
  if (!(Number.isInteger(patch) && patch >= 1 && patch <= size)) throw new Error(`occlusion: patch must be an integer in 1..${size}, got ${patch}`);
  if (!(Number.isInteger(stride) && stride >= 1)) throw new Error(`occlusion: stride must be a positive integer, got ${stride}`);
  const out: number[] = [];
  for (let s = 0; s + patch <= size; s += stride) out.push(s);
  if (out[out.length - 1]! + patch < size) out.push(size - patch);
  return out;
}

/**
 * Occlusion: for every patch position, Δ = S(x) − S(x with the patch (all channels) set to the
 * baseline); each pixel gets the mean over the patches covering it of Δ / patch², so a map sums
 * to about the total effect and a patch's Δ is not counted once per pixel.
 */
export function occlusion(scorer: ImageScorer, x: Pixels, count: number, baselines: Pixels, patch: number, stride: number, onImages?: ImagesDone): Attribution {
  const { c, h, w, plane, per } = dims(scorer);
  const shared = baselines.length === per;
  if (!shared && baselines.length !== count * per) throw new Error(`occlusion: baselines must hold ${per} or ${count}×${per} values, got ${baselines.length}`);
  const ys = patchStarts(h, patch, stride), xs = patchStarts(w, patch, stride);
  const windows = ys.flatMap((y0) => xs.map((x0) => [y0, x0] as const));
  const scores = scoreMany(scorer, x, count);
  const pixels = new Float64Array(count * plane);
  const cover = new Float64Array(plane);
  for (const [y0, x0] of windows) for (let y = y0; y < y0 + patch; y++) for (let xx = x0; xx < x0 + patch; xx++) cover[y * w + xx]! += 1;
  const occluded = new Float64Array(windows.length * per);
  for (let i = 0; i < count; i++) {
    const xi = x.subarray(i * per, (i + 1) * per);
    const bi = shared ? baselines : baselines.subarray(i * per, (i + 1) * per);
    windows.forEach(([y0, x0], k) => {
      const img = occluded.subarray(k * per, (k + 1) * per);
      img.set(xi);
      for (let ch = 0; ch < c; ch++) for (let y = y0; y < y0 + patch; y++) for (let xx = x0; xx < x0 + patch; xx++) {
        const p = ch * plane + y * w + xx;
        img[p] = bi[p]!;
      }
    });
    const s = scoreMany(scorer, asDtype(occluded, scorer.dtype), windows.length);
    const map = pixels.subarray(i * plane, (i + 1) * plane);
    windows.forEach(([y0, x0], k) => {
      const d = (scores[i]! - s[k]!) / (patch * patch);
      for (let y = y0; y < y0 + patch; y++) for (let xx = x0; xx < x0 + patch; xx++) map[y * w + xx]! += d;
    });
    for (let p = 0; p < plane; p++) map[p] = map[p]! / cover[p]!;
    onImages?.(i + 1);
  }
  return {
    spec: { method: 'occlusion', patch, stride }, id: 'occlusion', label: `occlusion (patch ${patch}, stride ${stride})`, unit: 'score',
    count, scores, elements: null, pixels, signed: true,
  };
}

/** Grad-CAM of the scorer's score at `layer` (default the last conv layer), upsampled to the image. */
export function gradCamAttribution(scorer: ImageScorer, x: Pixels, count: number, layer?: string, at: CamTarget = 'bn', onImages?: ImagesDone): Attribution {
  const { plane, per } = dims(scorer);
  const name = layer ?? lastConvLayer(scorer.net);
  const pixels = new Float64Array(count * plane), scores = new Float64Array(count);
  let linear: Float64Array | null = null;
  let camH = 0, camW = 0;
  const batch = 32;
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    const xt = tensorFromArray(asDtype(x.subarray(start * per, (start + n) * per), scorer.dtype), [n, ...scorer.shape]);
    // The graph's storage is recycled once the CAM (plain arrays) has been copied out.
    tidy(() => {
      const r = gradCam(xt, { net: scorer.net, encode: scorer.encode, scoreImages: (t) => scorer.score(t), layer: name, at, activation: scorer.activation });
      camH = r.camHeight; camW = r.camWidth;
      linear ??= new Float64Array(count * camH * camW);
      linear.set(r.camLinear, start * camH * camW);
      pixels.set(r.camUpsampled, start * plane);
      scores.set(r.scores, start);
    });
    onImages?.(start + n);
  }
  return {
    spec: { method: 'gradcam', layer: name, at }, id: 'gradcam', label: `Grad-CAM ${name} (${TARGET_WORDS[at]})`, unit: 'CAM',
    count, scores, elements: null, pixels, signed: false,
    cam: { layer: name, at, height: camH, width: camW, linear: linear ?? new Float64Array(0) },
  };
}

/** Runs one method spec. `baselines` as for integratedGradients (unused by gradcam and gradxinput); `onImages` hears the images done. */
export function attribute(scorer: ImageScorer, spec: MethodSpec, x: Pixels, count: number, baselines: Pixels, onImages?: ImagesDone): Attribution {
  switch (spec.method) {
    case 'gradcam': {
      if (spec.layer !== undefined && !convLayerNames(scorer.net).includes(spec.layer)) {
        throw new Error(`Grad-CAM: '${spec.layer}' is not a conv layer (conv layers: ${convLayerNames(scorer.net).join(', ')})`);
      }
      return gradCamAttribution(scorer, x, count, spec.layer, spec.at ?? 'bn', onImages);
    }
    case 'gradxinput': return gradientTimesInput(scorer, x, count, onImages);
    case 'ig': return integratedGradients(scorer, x, count, baselines, spec.steps, onImages);
    case 'occlusion': return occlusion(scorer, x, count, baselines, spec.patch, spec.stride, onImages);
  }
}
