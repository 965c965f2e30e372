/**
 * Conv2d and ConvTranspose2d (NCHW). The transposed convolution's forward is the convolution's
 * input-gradient and vice versa, so both ops share three kernels: conv2d, conv2dGradInput,
 * conv2dGradWeight.
 */
import { record } from '../tape.ts';
import { kernels } from '../../tensor/kernels/registry.ts';
import type { ConvGeom } from '../../tensor/kernels/types.ts';
import { shapeStr } from '../../tensor/layout.ts';
import { Tensor, outputArray, tensorFromArray } from '../../tensor/tensor.ts';
import { add, reshapeDense, sameDtype } from './elementwise.ts';

export interface ConvOptions { stride?: number; padding?: number }

function addChannelBias(y: Tensor, b: Tensor | null | undefined, channels: number, op: string): Tensor {
  if (!b) return y;
  if (b.rank !== 1 || b.shape[0] !== channels) throw new Error(`${op}: bias ${shapeStr(b.shape)} does not match ${channels} output channels`);
  return add(y, reshapeDense(b, [1, channels, 1, 1]));
}

/** y = x ⋆ w (+ b): x [n, cin, h, w], w [cout, cin, kh, kw]. */
export function conv2d(x: Tensor, w: Tensor, b?: Tensor | null, opts: ConvOptions = {}): Tensor {
  sameDtype('conv2d', x, w);
  const stride = opts.stride ?? 1, pad = opts.padding ?? 0;
  if (x.rank !== 4 || w.rank !== 4 || x.shape[1] !== w.shape[1]) {
    throw new Error(`conv2d: input ${shapeStr(x.shape)} does not match weight ${shapeStr(w.shape)} ([cout, cin, kh, kw])`);
  }
  const [n, cin, h, wd] = x.shape as [number, number, number, number];
  const [cout, , kh, kw] = w.shape as [number, number, number, number];
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1, ow = Math.floor((wd + 2 * pad - kw) / stride) + 1;
  if (oh <= 0 || ow <= 0) throw new Error(`conv2d: kernel ${kh}x${kw} does not fit input ${h}x${wd} with padding ${pad}`);
  const g: ConvGeom = { n, cin, h, w: wd, cout, kh, kw, stride, pad, oh, ow };
  const xv = x.values(), wv = w.values();
  const out = outputArray(x.dtype, n * cout * oh * ow);
  kernels(x.dtype).conv2d(xv, wv, out, g);
  const y = record(tensorFromArray(out, [n, cout, oh, ow]), 'conv2d', [x, w], (gy, needs) => {
    const ks = kernels(x.dtype);
    const gyv = gy.values();
    let gx: Tensor | null = null, gw: Tensor | null = null;
    if (needs[0]) { const o = outputArray(x.dtype, xv.length); ks.conv2dGradInput(gyv, wv, o, g); gx = tensorFromArray(o, x.shape); }
    if (needs[1]) { const o = outputArray(x.dtype, wv.length); ks.conv2dGradWeight(xv, gyv, o, g); gw = tensorFromArray(o, w.shape); }
    return [gx, gw];
  });
  return addChannelBias(y, b, cout, 'conv2d');
}

/**
 * Transposed convolution: x [n, cin, h, w], w [cin, cout, kh, kw] (PyTorch's layout),
 * output size (h − 1)·stride − 2·padding + kh. It is the adjoint of a conv2d whose input is our
 * output and whose output is our input.
 */
export function convTranspose2d(x: Tensor, w: Tensor, b?: Tensor | null, opts: ConvOptions = {}): Tensor {
  sameDtype('convTranspose2d', x, w);
  const stride = opts.stride ?? 1, pad = opts.padding ?? 0;
  if (x.rank !== 4 || w.rank !== 4 || x.shape[1] !== w.shape[0]) {
    throw new Error(`convTranspose2d: input ${shapeStr(x.shape)} does not match weight ${shapeStr(w.shape)} ([cin, cout, kh, kw])`);
  }
  const [n, cin, h, wd] = x.shape as [number, number, number, number];
  const [, cout, kh, kw] = w.shape as [number, number, number, number];
  const oh = (h - 1) * stride - 2 * pad + kh, ow = (wd - 1) * stride - 2 * pad + kw;
  if (oh <= 0 || ow <= 0) throw new Error(`convTranspose2d: output size ${oh}x${ow} is not positive for input ${h}x${wd}, padding ${pad}`);
  // The equivalent convolution maps our output (its input) to our input (its output).
  const g: ConvGeom = { n, cin: cout, h: oh, w: ow, cout: cin, kh, kw, stride, pad, oh: h, ow: wd };
  const xv = x.values(), wv = w.values();
  const out = outputArray(x.dtype, n * cout * oh * ow);
  kernels(x.dtype).conv2dGradInput(xv, wv, out, g);
  const y = record(tensorFromArray(out, [n, cout, oh, ow]), 'convTranspose2d', [x, w], (gy, needs) => {
    const ks = kernels(x.dtype);
    const gyv = gy.values();
    let gx: Tensor | null = null, gw: Tensor | null = null;
    if (needs[0]) { const o = outputArray(x.dtype, xv.length); ks.conv2d(gyv, wv, o, g); gx = tensorFromArray(o, x.shape); }
    if (needs[1]) { const o = outputArray(x.dtype, wv.length); ks.conv2dGradWeight(gyv, xv, o, g); gw = tensorFromArray(o, w.shape); }
    return [gx, gw];
  });
  return addChannelBias(y, b, cout, 'convTranspose2d');
}
