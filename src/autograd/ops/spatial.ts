/** Max pooling and nearest-neighbour upsampling (NCHW). */
import { record } from '../tape.ts';
import { kernelProvider, kernels } from '../../tensor/kernels/registry.ts';
import type { DType, KernelName } from '../../tensor/kernels/types.ts';
import { shapeStr } from '../../tensor/layout.ts';
import { Tensor, allocArray, outputArray, tensorFromArray } from '../../tensor/tensor.ts';
import { leakyRelu } from './elementwise.ts';

function expect4d(op: string, x: Tensor): [number, number, number, number] {
  if (x.rank !== 4) throw new Error(`${op}: expected an NCHW tensor, got ${shapeStr(x.shape)}`);
  return x.shape as [number, number, number, number];
}

/** k×k max pooling with stride k (floor mode), as nn.MaxPool2d(k). */
export function maxPool2d(x: Tensor, k = 2): Tensor {
  const [n, c, h, w] = expect4d('maxPool2d', x);
  const oh = Math.floor(h / k), ow = Math.floor(w / k);
  if (oh === 0 || ow === 0) throw new Error(`maxPool2d: input ${h}x${w} is smaller than the ${k}x${k} window`);
  const out = outputArray(x.dtype, n * c * oh * ow);
  // argmax lives in pooled tensor-sized storage (viewed as int32), so a backend keeps it in its own
  // memory like the activations, and releaseGraph recycles it with the node.
  const argStore = outputArray('float32', out.length);
  const argmax = new Int32Array(argStore.buffer, argStore.byteOffset, out.length);
  kernels(x.dtype).maxPool2d(x.values(), out, argmax, n, c, h, w, k);
  return record(tensorFromArray(out, [n, c, oh, ow]), 'maxPool2d', [x], (gy) => {
    const gx = allocArray(x.dtype, x.size);
    kernels(x.dtype).maxPool2dGrad(gy.values(), argmax, gx);
    return [tensorFromArray(gx, x.shape)];
  }, [argStore]);
}

/** Whether the backend that would run `parts` runs `fused` too (then the fused kernel gives their exact results). */
export function fusedHere(dtype: DType, fused: KernelName, parts: readonly KernelName[]): boolean {
  const by = kernelProvider(fused, dtype);
  return parts.every((p) => kernelProvider(p, dtype) === by);
}

/**
 * maxPool2d(leakyRelu(x, slope), k) as one node: the activation is never stored, and the backward
 * writes x's gradient in one pass instead of zeroing a full-size array, scattering into it and
 * scaling it. Results are bit for bit the composition's; where the active backend does not run the
 * fused kernels alongside the ones they replace (their fallback would not match), it is the
 * composition.
 */
export function leakyReluMaxPool2d(x: Tensor, slope = 0.01, k = 2): Tensor {
  if (!fusedHere(x.dtype, 'leakyMaxPool2d', ['unary', 'maxPool2d'])) return maxPool2d(leakyRelu(x, slope), k);
  const [n, c, h, w] = expect4d('leakyReluMaxPool2d', x);
  const oh = Math.floor(h / k), ow = Math.floor(w / k);
  if (oh === 0 || ow === 0) throw new Error(`maxPool2d: input ${h}x${w} is smaller than the ${k}x${k} window`);
  const xv = x.values();
  const out = outputArray(x.dtype, n * c * oh * ow);
  const argStore = outputArray('float32', out.length);
  const argmax = new Int32Array(argStore.buffer, argStore.byteOffset, out.length);
  kernels(x.dtype).leakyMaxPool2d(xv, out, argmax, n, c, h, w, k, slope);
  return record(tensorFromArray(out, [n, c, oh, ow]), 'leakyReluMaxPool2d', [x], (gy) => {
    const ks = kernels(x.dtype);
    if (fusedHere(x.dtype, 'leakyMaxPool2dGrad', ['maxPool2dGrad', 'unaryGrad'])) {
      const gx = outputArray(x.dtype, x.size);
      ks.leakyMaxPool2dGrad(gy.values(), argmax, xv, gx, n, c, h, w, k, slope);
      return [tensorFromArray(gx, x.shape)];
    }
    const g = allocArray(x.dtype, x.size);
    ks.maxPool2dGrad(gy.values(), argmax, g);
    const gx = outputArray(x.dtype, x.size);
    ks.unaryGrad('leakyRelu', xv, xv, g, gx, slope);
    return [tensorFromArray(gx, x.shape)];
  }, [argStore]);
}

/** Nearest-neighbour upsampling by an integer factor, as F.interpolate(scale_factor=f). */
export function upsampleNearest(x: Tensor, f = 2): Tensor {
  const [n, c, h, w] = expect4d('upsampleNearest', x);
  if (!Number.isInteger(f) || f < 1) throw new Error(`upsampleNearest: factor must be a positive integer, got ${f}`);
  const out = outputArray(x.dtype, n * c * h * w * f * f);
  kernels(x.dtype).upsampleNearest(x.values(), out, n * c, h, w, f);
  return record(tensorFromArray(out, [n, c, h * f, w * f]), 'upsampleNearest', [x], (gy) => {
    const gx = outputArray(x.dtype, x.size);
    kernels(x.dtype).upsampleNearestGrad(gy.values(), gx, n * c, h, w, f);
    return [tensorFromArray(gx, x.shape)];
  });
}
