/**
 * The convolution entry points of the wasm backend: each picks its path by geometry (Winograd,
 * direct, or im2col GEMM), and the input gradient reuses the forward through a flipped kernel.
 */
import type { ConvGeom } from '../types.ts';
import type { WasmRuntime } from './runtime.ts';
import { geomKey, runPhases, setupFor } from './plan.ts';
import { col2imTs } from '../ts/conv.ts';
import { gemmWasm } from './gemm.ts';
import { convGradWeightSetup, convSetup } from './im2col.ts';
import { DIRECT_GW_MAX, DIRECT_MAX_COUT, DIRECT_MIN_COUT, conv2dDirect, conv2dGradWeightDirect } from './direct.ts';
import { conv2dGradWeightWinograd, conv2dWinograd, usesWinograd, usesWinogradGradWeight } from './winograd-conv.ts';

/** y = conv(x, wt) with wt viewed as [cout, cin·kh·kw]; batches of images form one GEMM's columns. */
export function conv2dWasm(rt: WasmRuntime, x: Float32Array, wt: Float32Array, y: Float32Array, g: ConvGeom): void {
  const { n, cin, h, w, cout, kh, kw, pad, oh, ow } = g;
  const K = cin * kh * kw, P = oh * ow;
  if (n === 0 || cout === 0 || P === 0) return;
  if (K === 0) { y.fill(0, 0, n * cout * P); return; }
  if (usesWinograd(g)) { conv2dWinograd(rt, x, wt, y, g); return; }
  if (g.stride === 1 && cout >= DIRECT_MIN_COUT && cout <= DIRECT_MAX_COUT) { conv2dDirect(rt, x, wt, y, g); return; }
  const s = setupFor(rt, geomKey('conv', g), (table) => convSetup(rt, table, g));
  runPhases(rt, s, [[x, n * cin * h * w, 'in'], [wt, cout * K, 'in'], [y, n * cout * P, 'out']]);
}

/**
 * gw[cout, K] = Σ over images and positions of gy ⊗ im2col(x): a GEMM whose inner dimension is
 * n·P (long), so it is blocked by KC. Threads take disjoint images and sum their partials at the end.
 */
export function conv2dGradWeightWasm(rt: WasmRuntime, x: Float32Array, gy: Float32Array, gw: Float32Array, g: ConvGeom): void {
  const { n, cin, h, w, cout, kh, kw, pad, oh, ow } = g;
  const K = cin * kh * kw, P = oh * ow;
  if (cout === 0 || K === 0) return;
  if (n === 0 || P === 0) { gw.fill(0, 0, cout * K); return; }
  if (usesWinogradGradWeight(g)) { conv2dGradWeightWinograd(rt, x, gy, gw, g); return; }
  if (g.stride === 1 && cout <= DIRECT_MAX_COUT && cout * K <= DIRECT_GW_MAX) { conv2dGradWeightDirect(rt, x, gy, gw, g); return; }
  const s = setupFor(rt, geomKey('convGW', g), (table) => convGradWeightSetup(rt, table, g));
  const { C0 } = s.at as { C0: number };
  runPhases(rt, s, [[x, n * cin * h * w, 'in'], [gy, n * cout * P, 'in']]);
  gw.set(rt.f32.subarray(C0 >> 2, (C0 >> 2) + cout * K));
}

/**
 * The flipped, channel-transposed [cin, cout, kh, kw] version of a [cout, cin, kh, kw] kernel:
 * out[ci][co][kh−1−ky][kw−1−kx] = wt[co][ci][ky][kx]. Reads wt in order, each (co, ci) filter
 * reversed into its place.
 */
function flipKernel(wt: Float32Array, cout: number, cin: number, kh: number, kw: number): Float32Array {
  const taps = kh * kw, out = new Float32Array(cout * cin * taps);
  for (let co = 0; co < cout; co++) {
    for (let ci = 0; ci < cin; ci++) {
      const src = (co * cin + ci) * taps, end = (ci * cout + co) * taps + taps - 1;
      for (let t = 0; t < taps; t++) out[end - t] = wt[src + t]!;
    }
  }
  return out;
}

/**
 * gx = ∂(conv)/∂x. With stride 1 this is itself a convolution of gy with the flipped,
 * channel-transposed kernel and padding k−1−pad, which reuses the fast forward path (and is how
 * ConvTranspose2d runs). Other geometries take GEMM (Wᵀ·gy per image) plus the reference col2im.
 */
export function conv2dGradInputWasm(rt: WasmRuntime, gy: Float32Array, wt: Float32Array, gx: Float32Array, g: ConvGeom): void {
  const { n, cin, h, w, cout, kh, kw, stride, pad, oh, ow } = g;
  if (stride === 1 && kh === kw && pad <= kh - 1 && oh === h + 2 * pad - kh + 1 && ow === w + 2 * pad - kw + 1) {
    conv2dWasm(rt, gy, flipKernel(wt, cout, cin, kh, kw), gx, {
      n, cin: cout, h: oh, w: ow, cout: cin, kh, kw, stride: 1, pad: kh - 1 - pad, oh: h, ow: w,
    });
    return;
  }
  const K = cin * kh * kw, P = oh * ow;
  gx.fill(0, 0, n * cin * h * w);
  if (K === 0 || P === 0) return;
  const col = new Float32Array(K * P);
  for (let img = 0; img < n; img++) {
    gemmWasm(rt, wt, gy.subarray(img * cout * P, (img + 1) * cout * P), col, K, P, cout, true, false, false);
    col2imTs(col, gx, img * cin * h * w, g);
  }
}
