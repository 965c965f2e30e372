import type { FloatArray } from '../types.ts';
import { floatArrayLike as like } from '../float-array.ts';
import { unaryGradTs, unaryTs } from './elementwise.ts';

/** k×k max pooling with stride k, floor mode (trailing rows/cols that do not fill a window are dropped). */
export function maxPool2dTs(x: FloatArray, y: FloatArray, argmax: Int32Array, n: number, c: number, h: number, w: number, k: number): void {
  const oh = Math.floor(h / k), ow = Math.floor(w / k);
  let o = 0;
  for (let plane = 0; plane < n * c; plane++) {
    const base = plane * h * w;
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++, o++) {
        let best = -Infinity, bestIdx = base + oy * k * w + ox * k;
        for (let dy = 0; dy < k; dy++) {
          const row = base + (oy * k + dy) * w + ox * k;
          for (let dx = 0; dx < k; dx++) {
            const v = x[row + dx]!;
            // First maximum wins on ties, and NaN propagates, as in PyTorch.
            if (v > best || Number.isNaN(v)) { best = v; bestIdx = row + dx; if (Number.isNaN(v)) break; }
          }
        }
        y[o] = best; argmax[o] = bestIdx;
      }
    }
  }
}

export function maxPool2dGradTs(gy: FloatArray, argmax: Int32Array, gx: FloatArray): void {
  for (let o = 0; o < gy.length; o++) gx[argmax[o]!] += gy[o]!;
}

/** The reference is the composition itself: leaky ReLU into a temporary, then max pooling. */
export function leakyMaxPool2dTs(x: FloatArray, y: FloatArray, argmax: Int32Array, n: number, c: number, h: number, w: number, k: number,
                                 slope: number): void {
  const act = like(x);
  unaryTs('leakyRelu', x, act, slope);
  maxPool2dTs(act, y, argmax, n, c, h, w, k);
}

export function leakyMaxPool2dGradTs(gy: FloatArray, argmax: Int32Array, x: FloatArray, gx: FloatArray,
                                     _n: number, _c: number, _h: number, _w: number, _k: number, slope: number): void {
  const g = like(x);
  maxPool2dGradTs(gy, argmax, g);
  unaryGradTs('leakyRelu', x, x, g, gx, slope);
}

export function normLeakyMaxPool2dTs(x: FloatArray, mean: FloatArray, invStd: FloatArray, y: FloatArray, argmax: Int32Array,
                                     n: number, c: number, h: number, w: number, k: number, slope: number): void {
  const xhat = like(x);
  channelNormalizeTs(x, mean, invStd, xhat, n, c, h * w);
  leakyMaxPool2dTs(xhat, y, argmax, n, c, h, w, k, slope);
}

export function upsampleNearestTs(x: FloatArray, y: FloatArray, nc: number, h: number, w: number, f: number): void {
  const W = w * f;
  for (let plane = 0; plane < nc; plane++) {
    const xb = plane * h * w, yb = plane * h * w * f * f;
    for (let iy = 0; iy < h; iy++) {
      const rowStart = yb + iy * f * W;
      for (let ix = 0; ix < w; ix++) {
        const v = x[xb + iy * w + ix]!;
        for (let dx = 0; dx < f; dx++) y[rowStart + ix * f + dx] = v;
      }
      // The other f−1 output rows repeat the first one.
      for (let dy = 1; dy < f; dy++) y.copyWithin(rowStart + dy * W, rowStart, rowStart + W);
    }
  }
}

export function upsampleNearestGradTs(gy: FloatArray, gx: FloatArray, nc: number, h: number, w: number, f: number): void {
  const W = w * f;
  gx.fill(0);
  for (let plane = 0; plane < nc; plane++) {
    const xb = plane * h * w, yb = plane * h * w * f * f;
    for (let Y = 0; Y < h * f; Y++) {
      const xRow = xb + Math.floor(Y / f) * w, yRow = yb + Y * W;
      for (let X = 0; X < W; X++) gx[xRow + Math.floor(X / f)] += gy[yRow + X]!;
    }
  }
}

/** Two-pass (mean, then squared deviations) for accuracy in float32. */
export function channelMomentsTs(x: FloatArray, mean: FloatArray, varB: FloatArray, outer: number, c: number, inner: number): void {
  const m = outer * inner;
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let o = 0; o < outer; o++) { const b = (o * c + ch) * inner; for (let i = 0; i < inner; i++) s += x[b + i]!; }
    const mu = s / m;
    let q = 0;
    for (let o = 0; o < outer; o++) { const b = (o * c + ch) * inner; for (let i = 0; i < inner; i++) { const d = x[b + i]! - mu; q += d * d; } }
    mean[ch] = mu; varB[ch] = q / m;
  }
}

export function channelNormalizeTs(x: FloatArray, mean: FloatArray, invStd: FloatArray, y: FloatArray, outer: number, c: number, inner: number): void {
  for (let o = 0; o < outer; o++) {
    for (let ch = 0; ch < c; ch++) {
      const b = (o * c + ch) * inner, mu = mean[ch]!, is = invStd[ch]!;
      for (let i = 0; i < inner; i++) y[b + i] = (x[b + i]! - mu) * is;
    }
  }
}

export function batchNormGradTs(gy: FloatArray, xhat: FloatArray, invStd: FloatArray, gx: FloatArray, outer: number, c: number, inner: number): void {
  const m = outer * inner;
  for (let ch = 0; ch < c; ch++) {
    let sg = 0, sgx = 0;
    for (let o = 0; o < outer; o++) {
      const b = (o * c + ch) * inner;
      for (let i = 0; i < inner; i++) { const g = gy[b + i]!; sg += g; sgx += g * xhat[b + i]!; }
    }
    const k = invStd[ch]! / m;
    for (let o = 0; o < outer; o++) {
      const b = (o * c + ch) * inner;
      for (let i = 0; i < inner; i++) gx[b + i] = k * (m * gy[b + i]! - sg - xhat[b + i]! * sgx);
    }
  }
}
