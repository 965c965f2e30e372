/**
 * Grad-CAM (Selvaraju et al. 2017) of the anomaly score instead of a class logit: which regions
 * of an image push its code φ(x) away from the center c (or from the Gaussian's mean)?
 *
 * For a target feature map A of a conv block, per image:
 *   w_k = mean_hw ∂S/∂A_k,   CAM = ReLU(Σ_k w_k · A_k),
 * then bilinear upsampling to the input size (PyTorch F.interpolate, align_corners=False) and
 * division by the map's max (an all-zero map stays zero).
 *
 * Which A (`at`): 'conv' is the conv layer's raw output, before its BatchNorm (the definition the
 * PyTorch fixture pins); 'bn' the BatchNorm's output; 'act' the block's activation output, the
 * features the next layer sees. Grad-CAM reads A = 0 as "feature absent". The raw conv output of
 * these networks (BatchNorm without affine parameters) has per-channel offsets, the running means
 * the next layer never sees: Σ_k w_k·A_k = Σ_k w'_k·Â_k + Σ_k w_k·mean_k, and the constant decides
 * the map's sign; often it is negative everywhere and ReLU leaves nothing but a residue on the
 * border (README, "Explanations"). The BatchNorm output Â is centred on the normal class (its
 * running statistics come from normal training data only), so Â = 0 means "as in a normal image"
 * and the CAM shows where features deviate from normal in the direction that raises S: use 'bn'.
 * After the leaky ReLU ('act') below-normal deviations are squashed 100×, which brings back tiny
 * all-negative-but-for-a-residue maps. For 'act' the activation is applied to the captured
 * BatchNorm output and ∂S/∂act follows exactly from ∂S/∂bn through the activation's (nonzero)
 * derivative: the network has no module boundary after its functional activation.
 *
 * In eval mode BatchNorm uses running statistics, so images do not interact: one backward pass
 * of Σ_i S_i yields every image's own ∂S_i/∂A_i, and a batch costs one forward and one backward.
 */
import * as ag from '../autograd/index.ts';
import { grad } from '../autograd/engine.ts';
import { BatchNorm, Conv2d, type Module } from '../nn/index.ts';
import { tensorFromArray, type Tensor } from '../tensor/tensor.ts';
import { shapeStr } from '../tensor/layout.ts';
import { choleskyLower, Gaussian } from './gaussian.ts';
import { ModelError, type ModelMeta } from './model.ts';
import type { NetName } from './networks.ts';
import { radiusSquared, squaredDistance } from './svdd-model.ts';

/** Maps a batch of codes [n, d] to per-image scores [n], built from autograd ops. */
export type ScoreFn = (codes: Tensor) => Tensor;

export type CamScore = 'svdd' | 'mahalanobis';

/**
 * Deep SVDD score Σ_j (φ(x)_j − c_j)². The soft-boundary objective subtracts R², a constant that
 * does not change the gradient but is kept so the reported scores equal the model's.
 */
export function svddScoreFn(center: ArrayLike<number>, radiusSq = 0): ScoreFn {
  return (codes) => {
    const c = tensorFromArray(codes.dtype === 'float64' ? Float64Array.from(center) : Float32Array.from(center), [1, center.length]);
    const s = squaredDistance(codes, c);
    return radiusSq !== 0 ? ag.addScalar(s, -radiusSq) : s;
  };
}

/** L⁻¹ of a lower-triangular row-major d×d matrix, by forward substitution on the identity. */
export function lowerTriangularInverse(l: ArrayLike<number>, d: number): Float64Array {
  const inv = new Float64Array(d * d);
  for (let col = 0; col < d; col++) {
    for (let i = col; i < d; i++) {
      let v = i === col ? 1 : 0;
      for (let k = col; k < i; k++) v -= l[i * d + k]! * inv[k * d + col]!;
      inv[i * d + col] = v / l[i * d + i]!;
    }
  }
  return inv;
}

/**
 * Squared Mahalanobis distance (q − μ)ᵀΣ⁻¹(q − μ) = ‖L⁻¹(q − μ)‖² with Σ = LLᵀ. The whitening
 * matrix L⁻¹ is a constant, formed once; whitening rather than multiplying by Σ⁻¹ keeps the
 * computation the same as Gaussian.mahalanobisSq's forward substitution.
 */
export function mahalanobisScoreFn(gaussian: Gaussian): ScoreFn {
  const d = gaussian.d;
  const linv = lowerTriangularInverse(choleskyLower(gaussian.covariance, d), d);
  // Rows of codes are samples, so z = (q − μ)·(L⁻¹)ᵀ.
  const linvT = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) linvT[j * d + i] = linv[i * d + j]!;
  return (codes) => {
    if (codes.shape[1] !== d) throw new Error(`mahalanobis score: codes ${shapeStr(codes.shape)} do not match the Gaussian's dimension ${d}`);
    const f64 = codes.dtype === 'float64';
    const mu = tensorFromArray(f64 ? Float64Array.from(gaussian.mean) : Float32Array.from(gaussian.mean), [1, d]);
    const w = tensorFromArray(f64 ? linvT : Float32Array.from(linvT), [d, d]);
    return ag.sum(ag.square(ag.matmul(ag.sub(codes, mu), w)), 1);
  };
}

/** The score function of a saved model: its SVDD score (minus R² for soft-boundary) or its Mahalanobis score. */
export function modelScoreFn(meta: ModelMeta, score: CamScore): ScoreFn {
  if (score === 'mahalanobis') {
    if (!meta.gaussian) throw new ModelError('the model has no Gaussian for the Mahalanobis score (train with --threshold adaptive)');
    return mahalanobisScoreFn(Gaussian.fromJSON(meta.gaussian));
  }
  return svddScoreFn(meta.centerC, radiusSquared(meta));
}

/** Names of the network's Conv2d layers in registration (forward) order, e.g. conv1, conv2. */
export function convLayerNames(net: Module): string[] {
  return net.namedModules().filter(([name, m]) => name !== '' && m instanceof Conv2d).map(([name]) => name);
}

/** The last conv layer: the usual Grad-CAM target, with the coarsest, most semantic maps. */
export function lastConvLayer(net: Module): string {
  const names = convLayerNames(net);
  if (names.length === 0) throw new Error('Grad-CAM: the network has no Conv2d layer');
  return names[names.length - 1]!;
}

/** Which tensor of a conv → BatchNorm → activation block Grad-CAM weighs (see the file comment). */
export type CamTarget = 'conv' | 'bn' | 'act';
export const CAM_TARGETS: readonly CamTarget[] = ['conv', 'bn', 'act'];

/** A block's element-wise activation, as the networks apply it after each BatchNorm. */
export type BlockActivation = { name: 'leaky'; slope: number } | { name: 'elu'; alpha: number };

/** The activation of every conv block of a network (networks.ts: leaky ReLU 0.01, or ELU 1). */
export function netActivation(net: NetName): BlockActivation {
  return net === 'cifar10_LeNet_ELU' ? { name: 'elu', alpha: 1 } : { name: 'leaky', slope: 0.01 };
}

/**
 * Features Z = act(B) and ∂S/∂Z from a BatchNorm output B and ∂S/∂B: ∂S/∂B = act'(B)·∂S/∂Z
 * element-wise, with act' = 1 for B > 0 and slope (leaky) or Z + α (ELU) otherwise, the
 * derivatives the autograd kernels use; both are nonzero (ELU's underflows only below B ≈ −700).
 */
export function activationFeatures(b: ArrayLike<number>, gb: ArrayLike<number>, act: BlockActivation): { z: Float64Array; gz: Float64Array } {
  const z = new Float64Array(b.length), gz = new Float64Array(b.length);
  for (let i = 0; i < b.length; i++) {
    const v = b[i]!;
    if (v > 0) { z[i] = v; gz[i] = gb[i]!; continue; }
    if (act.name === 'leaky') { z[i] = v * act.slope; gz[i] = gb[i]! / act.slope; continue; }
    z[i] = act.alpha * Math.expm1(v);
    const d = z[i]! + act.alpha;
    gz[i] = d > 0 ? gb[i]! / d : 0;
  }
  return { z, gz };
}

/** The BatchNorm registered right after conv layer `layer` (its block's normalisation). */
export function blockNorm(net: Module, layer: string): { name: string; bn: BatchNorm } {
  const mods = net.namedModules();
  const at = mods.findIndex(([n]) => n === layer);
  const next = at >= 0 ? mods[at + 1] : undefined;
  if (!next || !(next[1] instanceof BatchNorm)) throw new Error(`Grad-CAM: conv layer '${layer}' is not followed by a BatchNorm, so it has no 'bn' or 'act' features`);
  return { name: next[0], bn: next[1] };
}

export interface GradCamOptions {
  /** The module whose layer is hooked; must be the one `encode` runs. */
  net: Module;
  encode: (x: Tensor) => Tensor;
  /** Scores from codes; required unless scoreImages is given. */
  score?: ScoreFn;
  /**
   * Scores straight from images (e.g. the hybrid's distance + reconstruction error); when given,
   * it is used instead of score(encode(x)) and must run `net`'s forward once.
   */
  scoreImages?: (x: Tensor) => Tensor;
  /** A Conv2d layer's name; default the last one. */
  layer?: string;
  /** Which tensor of the layer's block; default 'conv' (the raw conv output). */
  at?: CamTarget;
  /** The block's activation; required for at = 'act' (netActivation gives it for the built-in networks). */
  activation?: BlockActivation;
  /** Output size of the upsampled heatmap; default the input's H×W. */
  size?: readonly [number, number];
}

export interface GradCamResult {
  count: number;
  layer: string;
  at: CamTarget;
  /** Per-image scores S_i. */
  scores: Float64Array;
  /** The weighed features A (the conv output, its BatchNorm's output or the activation's), [n, k, h, w]. */
  activation: Tensor;
  /** ∂S_i/∂A_i, [n, k, h, w]. */
  activationGrad: Tensor;
  /** Channel weights mean_hw ∂S/∂A_k, [n, k] row-major. */
  weights: Float64Array;
  camHeight: number;
  camWidth: number;
  /** Σ_k w_k A_k before the ReLU, [n, h, w]: where it is negative everywhere the CAM is all zero. */
  camLinear: Float64Array;
  /** ReLU(Σ_k w_k A_k), [n, h, w]. */
  cam: Float64Array;
  /** cam divided by each image's max, [n, h, w]. */
  camNormalized: Float64Array;
  height: number;
  width: number;
  /** Bilinear upsampling of cam to height×width, [n, height, width]. */
  camUpsampled: Float64Array;
  /** camUpsampled divided by each image's max, [n, height, width]: the heatmap, values in [0, 1]. */
  heatmap: Float64Array;
}

/**
 * Grad-CAM of the anomaly score for a batch x [n, c, h, w]. The network is switched to eval mode
 * for the pass (and restored), since training-mode BatchNorm would mix the images and differ
 * from how the model scores.
 */
export function gradCam(x: Tensor, opts: GradCamOptions): GradCamResult {
  if (x.rank !== 4) throw new Error(`gradCam: expected an NCHW batch, got ${shapeStr(x.shape)}`);
  const layer = opts.layer ?? lastConvLayer(opts.net);
  const at = opts.at ?? 'conv';
  const target = opts.net.getModule(layer);
  if (!(target instanceof Conv2d)) {
    throw new Error(`gradCam: layer '${layer}' is not a conv layer (conv layers: ${convLayerNames(opts.net).join(', ')})`);
  }
  if (!opts.score && !opts.scoreImages) throw new Error('gradCam: give score (codes → scores) or scoreImages (images → scores)');
  if (at === 'act' && !opts.activation) throw new Error('gradCam: at = \'act\' needs the block\'s activation (netActivation(meta.net))');
  const hooked = at === 'conv' ? target : blockNorm(opts.net, layer).bn;
  let captured: Tensor | null = null;
  const remove = hooked.addForwardHook((out) => { captured = out; });
  const wasTraining = opts.net.training;
  opts.net.eval();
  let scores: Tensor;
  try {
    scores = opts.scoreImages ? opts.scoreImages(x) : opts.score!(opts.encode(x));
  } finally {
    remove();
    opts.net.train(wasTraining);
  }
  const act = captured as Tensor | null;
  if (!act) throw new Error(`gradCam: layer '${layer}' was not called by the network's forward pass`);
  const n = x.shape[0]!;
  if (scores.rank !== 1 || scores.shape[0] !== n) throw new Error(`gradCam: score function returned ${shapeStr(scores.shape)}, expected [${n}]`);
  if (!act.requiresGrad) throw new Error('gradCam: the activation is not part of a recorded graph (called inside noGrad?)');
  const [capturedGrad] = grad(ag.sum(scores), [act]) as [Tensor];
  let features = act, featuresGrad = capturedGrad;
  if (at === 'act') {
    const { z, gz } = activationFeatures(act.values(), capturedGrad.values(), opts.activation!);
    features = tensorFromArray(z, act.shape);
    featuresGrad = tensorFromArray(gz, act.shape);
  }
  const [, k, h, w] = act.shape as [number, number, number, number];
  const { weights, cam, linear } = camFromActivation(features.values(), featuresGrad.values(), n, k, h, w);
  const [oh, ow] = opts.size ?? [x.shape[2]!, x.shape[3]!];
  const up = bilinearResize(cam, n, h, w, oh, ow);
  return {
    count: n, layer, at, scores: Float64Array.from(scores.values()),
    activation: features, activationGrad: featuresGrad, weights,
    camHeight: h, camWidth: w, camLinear: linear, cam, camNormalized: normalizeByMax(cam, n, h * w),
    height: oh, width: ow, camUpsampled: up, heatmap: normalizeByMax(up, n, oh * ow),
  };
}

/** CAM = ReLU(Σ_k mean_hw(grad_k) · A_k) per image, from dense [n, k, h, w] arrays; `linear` is the map before the ReLU. */
export function camFromActivation(
  act: ArrayLike<number>, actGrad: ArrayLike<number>, n: number, k: number, h: number, w: number,
): { weights: Float64Array; cam: Float64Array; linear: Float64Array } {
  const plane = h * w;
  if (act.length !== n * k * plane || actGrad.length !== n * k * plane) {
    throw new Error(`camFromActivation: expected ${n}×${k}×${h}×${w} values, got ${act.length} and ${actGrad.length}`);
  }
  const weights = new Float64Array(n * k);
  const cam = new Float64Array(n * plane);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) {
      const base = (i * k + c) * plane;
      let s = 0;
      for (let p = 0; p < plane; p++) s += actGrad[base + p]!;
      const wc = s / plane;
      weights[i * k + c] = wc;
      for (let p = 0; p < plane; p++) cam[i * plane + p]! += wc * act[base + p]!;
    }
  }
  const linear = cam.slice();
  for (let p = 0; p < cam.length; p++) if (!(cam[p]! > 0)) cam[p] = 0;
  return { weights, cam, linear };
}

/** Source coordinate and blend weight per output index, as PyTorch's align_corners=False. */
function bilinearTaps(inSize: number, outSize: number): { i0: Int32Array; i1: Int32Array; frac: Float64Array } {
  const scale = inSize / outSize;
  const i0 = new Int32Array(outSize), i1 = new Int32Array(outSize), frac = new Float64Array(outSize);
  for (let o = 0; o < outSize; o++) {
    // Pixel centres line up: out centre o + ½ sits at input position (o + ½)·scale; negative clamps to 0.
    const src = Math.max(0, (o + 0.5) * scale - 0.5);
    const lo = Math.min(Math.floor(src), inSize - 1);
    i0[o] = lo;
    i1[o] = lo < inSize - 1 ? lo + 1 : lo;
    frac[o] = src - lo;
  }
  return { i0, i1, frac };
}

/** Bilinear resize of n planes h×w to oh×ow, F.interpolate(mode='bilinear', align_corners=False). */
export function bilinearResize(src: ArrayLike<number>, n: number, h: number, w: number, oh: number, ow: number): Float64Array {
  if (src.length !== n * h * w) throw new Error(`bilinearResize: expected ${n}×${h}×${w} values, got ${src.length}`);
  const ty = bilinearTaps(h, oh), tx = bilinearTaps(w, ow);
  const out = new Float64Array(n * oh * ow);
  for (let i = 0; i < n; i++) {
    const sb = i * h * w, ob = i * oh * ow;
    for (let y = 0; y < oh; y++) {
      const r0 = sb + ty.i0[y]! * w, r1 = sb + ty.i1[y]! * w, fy = ty.frac[y]!;
      for (let x = 0; x < ow; x++) {
        const c0 = tx.i0[x]!, c1 = tx.i1[x]!, fx = tx.frac[x]!;
        const top = (1 - fx) * src[r0 + c0]! + fx * src[r0 + c1]!;
        const bottom = (1 - fx) * src[r1 + c0]! + fx * src[r1 + c1]!;
        out[ob + y * ow + x] = (1 - fy) * top + fy * bottom;
      }
    }
  }
  return out;
}

/** Divides each of n maps of `per` values by its max; a map whose max is not positive becomes zeros. */
export function normalizeByMax(values: ArrayLike<number>, n: number, per: number): Float64Array {
  const out = new Float64Array(n * per);
  for (let i = 0; i < n; i++) {
    let m = 0;
    for (let p = 0; p < per; p++) m = Math.max(m, values[i * per + p]!);
    if (m > 0) for (let p = 0; p < per; p++) out[i * per + p] = values[i * per + p]! / m;
  }
  return out;
}
