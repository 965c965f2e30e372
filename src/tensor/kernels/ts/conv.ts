import type { ConvGeom, FloatArray } from '../types.ts';
import { floatArrayLike as like } from '../float-array.ts';
import { gemmTs } from './gemm.ts';

/**
 * im2col for one image: col[(ci·kh + ky)·kw + kx, oy·ow + ox] = x[ci, oy·s − p + ky, ox·s − p + kx]
 * (zero outside the image). Rows of the output map are contiguous runs of the input row when s = 1.
 */
export function im2colTs(x: FloatArray, xOff: number, col: FloatArray, g: ConvGeom): void {
  const { cin, h, w, kh, kw, stride, pad, oh, ow } = g;
  const P = oh * ow;
  for (let ci = 0; ci < cin; ci++) {
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        const row = ((ci * kh + ky) * kw + kx) * P;
        for (let oy = 0; oy < oh; oy++) {
          const iy = oy * stride - pad + ky;
          const dst = row + oy * ow;
          if (iy < 0 || iy >= h) { col.fill(0, dst, dst + ow); continue; }
          const src = xOff + (ci * h + iy) * w;
          for (let ox = 0; ox < ow; ox++) {
            const ix = ox * stride - pad + kx;
            col[dst + ox] = ix >= 0 && ix < w ? x[src + ix]! : 0;
          }
        }
      }
    }
  }
}

/** The adjoint of im2col: gx[ci, iy, ix] += col[...] for every window position that read it. */
export function col2imTs(col: FloatArray, gx: FloatArray, gxOff: number, g: ConvGeom): void {
  const { cin, h, w, kh, kw, stride, pad, oh, ow } = g;
  const P = oh * ow;
  for (let ci = 0; ci < cin; ci++) {
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        const row = ((ci * kh + ky) * kw + kx) * P;
        for (let oy = 0; oy < oh; oy++) {
          const iy = oy * stride - pad + ky;
          if (iy < 0 || iy >= h) continue;
          const src = row + oy * ow;
          const dst = gxOff + (ci * h + iy) * w;
          for (let ox = 0; ox < ow; ox++) {
            const ix = ox * stride - pad + kx;
            if (ix >= 0 && ix < w) gx[dst + ix] += col[src + ox]!;
          }
        }
      }
    }
  }
}

/** Per image: y[cout, P] = W[cout, cin·kh·kw] · col[cin·kh·kw, P]. */
export function conv2dTs(x: FloatArray, wt: FloatArray, y: FloatArray, g: ConvGeom): void {
  const K = g.cin * g.kh * g.kw, P = g.oh * g.ow;
  const col = like(x, K * P);
  const yImg = like(x, g.cout * P);
  for (let img = 0; img < g.n; img++) {
    im2colTs(x, img * g.cin * g.h * g.w, col, g);
    gemmTs(wt, col, yImg, g.cout, P, K, false, false, false);
    y.set(yImg, img * g.cout * P);
  }
}

/** Per image: dcol = Wᵀ · gy, then col2im. */
export function conv2dGradInputTs(gy: FloatArray, wt: FloatArray, gx: FloatArray, g: ConvGeom): void {
  const K = g.cin * g.kh * g.kw, P = g.oh * g.ow;
  const col = like(gy, K * P);
  gx.fill(0);
  for (let img = 0; img < g.n; img++) {
    const gyImg = gy.subarray(img * g.cout * P, (img + 1) * g.cout * P);
    gemmTs(wt, gyImg, col, K, P, g.cout, true, false, false);
    col2imTs(col, gx, img * g.cin * g.h * g.w, g);
  }
}

/** gw[cout, K] = Σ_images gy[cout, P] · col[K, P]ᵀ. */
export function conv2dGradWeightTs(x: FloatArray, gy: FloatArray, gw: FloatArray, g: ConvGeom): void {
  const K = g.cin * g.kh * g.kw, P = g.oh * g.ow;
  const col = like(x, K * P);
  gw.fill(0);
  for (let img = 0; img < g.n; img++) {
    im2colTs(x, img * g.cin * g.h * g.w, col, g);
    const gyImg = gy.subarray(img * g.cout * P, (img + 1) * g.cout * P);
    gemmTs(gyImg, col, gw, g.cout, K, P, false, true, true);
  }
}
