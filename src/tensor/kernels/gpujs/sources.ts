/**
 * gpu.js kernel bodies, as source text (gpu.js parses them and translates them to GLSL, WGSL,
 * wasm or plain JS). Written as strings so the TypeScript transpiler never touches them.
 *
 * Rules followed throughout, from what gpu.js 2.24.1 does wrongly otherwise:
 * - Every array is read with 2-D/3-D indices built from thread ids; no flat index is computed
 *   in the kernel (kernel arithmetic is float32: a flat index past 2^24 silently rounds).
 * - Every loop bound is a `this.constants` value (a bound from an argument is truncated at
 *   `loopMaxIterations`), so a kernel is compiled per shape and cached by the caller.
 * - Integer quotients of small non-negative integers are taken as floor((q + 0.5) / d): the
 *   half keeps float division error from crossing an integer (exact far beyond the sizes here).
 */
import type { UnaryName } from '../types.ts';

/** C[i,j] = Σ_p op(A)[i,p]·op(B)[p,j] (+ C). Output [n, mc]: thread.y = row within the chunk. */
export function gemmSource(transA: boolean, transB: boolean, accumulate: boolean): string {
  const a = transA ? 'a[p][this.thread.y + this.constants.I0]' : 'a[this.thread.y][p]';
  const b = transB ? 'b[this.thread.x][p]' : 'b[p][this.thread.x]';
  const params = accumulate ? 'a, b, c' : 'a, b';
  const init = accumulate ? 'c[this.thread.y][this.thread.x]' : '0';
  return `function (${params}) {
  let s = 0;
  for (let p = 0; p < this.constants.K; p++) {
    s += ${a} * ${b};
  }
  return s + ${init};
}`;
}

/** col[img, r, pix] for r = (ci·kh + ky)·kw + kx, pix = oy·ow + ox; x is [nb·cin, h, w]. Output [P, K, nb]. */
export const im2colSource = `function (x) {
  const r = this.thread.y;
  const ci = Math.floor((r + 0.5) / this.constants.KHW);
  const rem = r - ci * this.constants.KHW;
  const ky = Math.floor((rem + 0.5) / this.constants.KW);
  const kx = rem - ky * this.constants.KW;
  const pix = this.thread.x;
  const oy = Math.floor((pix + 0.5) / this.constants.OW);
  const ox = pix - oy * this.constants.OW;
  const iy = oy * this.constants.S - this.constants.PAD + ky;
  const ix = ox * this.constants.S - this.constants.PAD + kx;
  let v = 0;
  if (iy >= 0 && iy < this.constants.H && ix >= 0 && ix < this.constants.W) {
    v = x[this.thread.z * this.constants.CIN + ci][iy][ix];
  }
  return v;
}`;

/** y[img, co, pix] = Σ_r w[co, r]·col[img, r, pix]. Output [P, cout, nb]. */
export const convGemmSource = `function (w, col) {
  let s = 0;
  for (let r = 0; r < this.constants.K; r++) {
    s += w[this.thread.y][r] * col[this.thread.z][r][this.thread.x];
  }
  return s;
}`;

/** dcol[img, r, pix] = Σ_co w[co, r]·gy[img, co, pix]. Output [P, K, nb]. */
export const convGradColSource = `function (w, gy) {
  let s = 0;
  for (let co = 0; co < this.constants.COUT; co++) {
    s += w[co][this.thread.y] * gy[this.thread.z][co][this.thread.x];
  }
  return s;
}`;

/** col2im as a gather: gx[img·cin + ci, iy, ix] = Σ over the windows that read (iy, ix). Output [w, h, nb·cin]. */
export const col2imSource = `function (dcol) {
  const z = this.thread.z;
  const img = Math.floor((z + 0.5) / this.constants.CIN);
  const ci = z - img * this.constants.CIN;
  let s = 0;
  for (let ky = 0; ky < this.constants.KH; ky++) {
    const ty = this.thread.y + this.constants.PAD - ky;
    const oy = Math.floor((ty + 0.5) / this.constants.S);
    if (ty >= 0 && oy * this.constants.S == ty && oy < this.constants.OH) {
      for (let kx = 0; kx < this.constants.KW; kx++) {
        const tx = this.thread.x + this.constants.PAD - kx;
        const ox = Math.floor((tx + 0.5) / this.constants.S);
        if (tx >= 0 && ox * this.constants.S == tx && ox < this.constants.OW) {
          s += dcol[img][(ci * this.constants.KH + ky) * this.constants.KW + kx][oy * this.constants.OW + ox];
        }
      }
    }
  }
  return s;
}`;

/** gw[co, r] = Σ_img Σ_pix gy[img, co, pix]·col[img, r, pix] over one chunk of images. Output [K, cout]. */
export const convGradWeightSource = `function (gy, col) {
  let s = 0;
  for (let img = 0; img < this.constants.NB; img++) {
    for (let pix = 0; pix < this.constants.P; pix++) {
      s += gy[img][this.thread.y][pix] * col[img][this.thread.x][pix];
    }
  }
  return s;
}`;

const unaryExpr: Record<UnaryName, string> = {
  leakyRelu: 'if (v > 0) { return v; } return v * p;',
  relu: 'if (v > 0) { return v; } return 0;',
  // expm1 without cancellation near 0: a short Taylor series there, exp(v) − 1 elsewhere.
  elu: `if (v > 0) { return v; }
  if (v > -0.01) { return p * (v * (1 + v * (0.5 + v * (0.16666666666666666 + v * 0.041666666666666664)))); }
  return p * (Math.exp(v) - 1);`,
  sigmoid: `if (v >= 0) { return 1 / (1 + Math.exp(-v)); }
  const e = Math.exp(v);
  return e / (1 + e);`,
  exp: 'return Math.exp(v);',
  log: 'return Math.log(v);',
  neg: 'return -v;',
  sqrt: 'return Math.sqrt(v);',
  abs: 'return Math.abs(v);',
  square: 'return v * v;',
};

/** out = f(x; p) on a [W, R] view of the flat data. */
export function unarySource(name: UnaryName): string {
  return `function (x, p) {
  const v = x[this.thread.y][this.thread.x];
  ${unaryExpr[name]}
}`;
}

const unaryGradExpr: Record<UnaryName, string> = {
  leakyRelu: 'if (v > 0) { return g; } return g * p;',
  relu: 'if (v > 0) { return g; } return 0;',
  elu: 'if (v > 0) { return g; } return g * (yv + p);',
  sigmoid: 'return g * yv * (1 - yv);',
  exp: 'return g * yv;',
  log: 'return g / v;',
  neg: 'return -g;',
  sqrt: 'return g / (2 * yv);',
  abs: 'if (v > 0) { return g; } if (v < 0) { return -g; } return 0;',
  square: 'return 2 * g * v;',
};

/** gx = gy · f'(x; p) (using y = f(x) where the derivative needs it), on a [W, R] view. */
export function unaryGradSource(name: UnaryName): string {
  return `function (x, y, gy, p) {
  const v = x[this.thread.y][this.thread.x];
  const yv = y[this.thread.y][this.thread.x];
  const g = gy[this.thread.y][this.thread.x];
  ${unaryGradExpr[name]}
}`;
}

/** k×k/stride-k max pooling; x is [plane, h, w], output [ow, oh, planes]. Value, or in-window offset of the first max. */
export function maxPoolSource(wantArg: boolean): string {
  return `function (x) {
  let best = -3.4e38;
  let arg = 0;
  for (let dy = 0; dy < this.constants.K; dy++) {
    for (let dx = 0; dx < this.constants.K; dx++) {
      const v = x[this.thread.z][this.thread.y * this.constants.K + dy][this.thread.x * this.constants.K + dx];
      if (v > best) {
        best = v;
        arg = dy * this.constants.K + dx;
      }
    }
  }
  return ${wantArg ? 'arg' : 'best'};
}`;
}

/** y[plane, Y, X] = x[plane, ⌊Y/f⌋, ⌊X/f⌋]. Output [w·f, h·f, planes]. */
export const upsampleSource = `function (x) {
  const iy = Math.floor((this.thread.y + 0.5) / this.constants.F);
  const ix = Math.floor((this.thread.x + 0.5) / this.constants.F);
  return x[this.thread.z][iy][ix];
}`;

/** gx[plane, iy, ix] = Σ_{dy,dx<f} gy[plane, iy·f + dy, ix·f + dx]. Output [w, h, planes]. */
export const upsampleGradSource = `function (gy) {
  let s = 0;
  for (let dy = 0; dy < this.constants.F; dy++) {
    for (let dx = 0; dx < this.constants.F; dx++) {
      s += gy[this.thread.z][this.thread.y * this.constants.F + dy][this.thread.x * this.constants.F + dx];
    }
  }
  return s;
}`;

/** y = (x − mean[c])·invStd[c] on the [outer, c, inner] view. Output [inner, c, outer]. */
export const channelNormalizeSource = `function (x, mean, invStd) {
  const ch = this.thread.y;
  return (x[this.thread.z][ch][this.thread.x] - mean[ch]) * invStd[ch];
}`;

/** Per channel: row 0 the mean, row 1 the biased variance (two-pass). Output [c, 2]. */
export const channelMomentsSource = `function (x) {
  const ch = this.thread.x;
  let s = 0;
  for (let o = 0; o < this.constants.OUTER; o++) {
    for (let i = 0; i < this.constants.INNER; i++) {
      s += x[o][ch][i];
    }
  }
  const mu = s / this.constants.M;
  let q = 0;
  for (let o = 0; o < this.constants.OUTER; o++) {
    for (let i = 0; i < this.constants.INNER; i++) {
      const d = x[o][ch][i] - mu;
      q += d * d;
    }
  }
  if (this.thread.y == 0) { return mu; }
  return q / this.constants.M;
}`;

/** Per channel: row 0 Σgy, row 1 Σgy·xhat. Output [c, 2]. */
export const bnSumsSource = `function (gy, xhat) {
  const ch = this.thread.x;
  let s = 0;
  for (let o = 0; o < this.constants.OUTER; o++) {
    for (let i = 0; i < this.constants.INNER; i++) {
      if (this.thread.y == 0) {
        s += gy[o][ch][i];
      } else {
        s += gy[o][ch][i] * xhat[o][ch][i];
      }
    }
  }
  return s;
}`;

/** gx = invStd/M·(M·gy − Σgy − xhat·Σ(gy·xhat)); sums is the [c, 2] output of bnSums. Output [inner, c, outer]. */
export const bnGradSource = `function (gy, xhat, invStd, sums) {
  const ch = this.thread.y;
  const g = gy[this.thread.z][ch][this.thread.x];
  const xh = xhat[this.thread.z][ch][this.thread.x];
  return invStd[ch] / this.constants.M * (this.constants.M * g - sums[0][ch] - xh * sums[1][ch]);
}`;
