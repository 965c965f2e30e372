/** Batch normalisation without affine parameters (the affine part is composed in nn.BatchNorm). */
import { gradRecording, record } from '../tape.ts';
import { fusedHere, leakyReluMaxPool2d } from './spatial.ts';
import { kernels } from '../../tensor/kernels/registry.ts';
import { shapeStr } from '../../tensor/layout.ts';
import { Tensor, allocArray, outputArray, tensorFromArray } from '../../tensor/tensor.ts';

export interface BatchNormState {
  /** Running statistics, updated in place in training mode. */
  runningMean: Tensor;
  runningVar: Tensor;
  training: boolean;
  momentum: number;
  eps: number;
}

/**
 * Normalises x ([n, c] or [n, c, h, w]) per channel. Training mode uses the batch mean and the
 * biased batch variance and moves the running stats toward the batch mean and the UNBIASED batch
 * variance (PyTorch's convention); eval mode uses the running stats.
 */
export function batchNorm(x: Tensor, s: BatchNormState): Tensor {
  if (x.rank !== 2 && x.rank !== 4) throw new Error(`batchNorm: expected [n, c] or [n, c, h, w], got ${shapeStr(x.shape)}`);
  const outer = x.shape[0]!, c = x.shape[1]!, inner = x.rank === 4 ? x.shape[2]! * x.shape[3]! : 1;
  if (s.runningMean.size !== c) throw new Error(`batchNorm: ${c} channels but running stats for ${s.runningMean.size}`);
  const ks = kernels(x.dtype);
  const xv = x.values();
  const invStd = allocArray(x.dtype, c);
  const y = outputArray(x.dtype, xv.length);
  const rm = s.runningMean.storage, rv = s.runningVar.storage;
  if (s.training) {
    const m = outer * inner;
    if (m < 2) throw new Error(`batchNorm: training mode needs more than one value per channel, got input ${shapeStr(x.shape)}`);
    const mu = allocArray(x.dtype, c), varB = allocArray(x.dtype, c);
    ks.channelMoments(xv, mu, varB, outer, c, inner);
    for (let ch = 0; ch < c; ch++) {
      invStd[ch] = 1 / Math.sqrt(varB[ch]! + s.eps);
      rm[ch] = (1 - s.momentum) * rm[ch]! + s.momentum * mu[ch]!;
      rv[ch] = (1 - s.momentum) * rv[ch]! + s.momentum * varB[ch]! * (m / (m - 1));
    }
    ks.channelNormalize(xv, mu, invStd, y, outer, c, inner);
    return record(tensorFromArray(y, x.shape), 'batchNorm', [x], (gy) => {
      const gx = outputArray(x.dtype, xv.length);
      ks.batchNormGrad(gy.values(), y, invStd, gx, outer, c, inner);
      return [tensorFromArray(gx, x.shape)];
    });
  }
  const mu = allocArray(x.dtype, c);
  for (let ch = 0; ch < c; ch++) { mu[ch] = rm[ch]!; invStd[ch] = 1 / Math.sqrt(rv[ch]! + s.eps); }
  ks.channelNormalize(xv, mu, invStd, y, outer, c, inner);
  return record(tensorFromArray(y, x.shape), 'batchNormEval', [x], (gy) => {
    const gx = outputArray(x.dtype, xv.length);
    ks.channelNormalize(gy.values(), allocArray(x.dtype, c), invStd, gx, outer, c, inner);
    return [tensorFromArray(gx, x.shape)];
  });
}

/**
 * leakyReluMaxPool2d(batchNorm(x, s), slope, k) with s in eval mode, in one pass for inference:
 * neither the normalised values nor the activation are stored. Bit for bit the composition, which
 * it is when a graph is being recorded (its nodes are needed) or when the active backend does not
 * run the fused kernel alongside the ones it replaces.
 */
export function batchNormLeakyReluMaxPool2d(x: Tensor, s: Omit<BatchNormState, 'training'>, slope = 0.01, k = 2): Tensor {
  const composed = (): Tensor => leakyReluMaxPool2d(batchNorm(x, { ...s, training: false }), slope, k);
  if (x.rank !== 4 || (gradRecording() && x.requiresGrad)) return composed();
  if (!fusedHere(x.dtype, 'normLeakyMaxPool2d', ['channelNormalize', 'unary', 'maxPool2d'])) return composed();
  const [n, c, h, w] = x.shape as [number, number, number, number];
  if (s.runningMean.size !== c) throw new Error(`batchNorm: ${c} channels but running stats for ${s.runningMean.size}`);
  const oh = Math.floor(h / k), ow = Math.floor(w / k);
  if (oh === 0 || ow === 0) throw new Error(`maxPool2d: input ${h}x${w} is smaller than the ${k}x${k} window`);
  // The running statistics as batchNorm's eval branch turns them into kernel arguments.
  const rm = s.runningMean.storage, rv = s.runningVar.storage;
  const mu = allocArray(x.dtype, c), invStd = allocArray(x.dtype, c);
  for (let ch = 0; ch < c; ch++) { mu[ch] = rm[ch]!; invStd[ch] = 1 / Math.sqrt(rv[ch]! + s.eps); }
  const out = outputArray(x.dtype, n * c * oh * ow);
  const argStore = outputArray('float32', out.length);
  const argmax = new Int32Array(argStore.buffer, argStore.byteOffset, out.length);
  kernels(x.dtype).normLeakyMaxPool2d(x.values(), mu, invStd, out, argmax, n, c, h, w, k, slope);
  return tensorFromArray(out, [n, c, oh, ow]);
}
