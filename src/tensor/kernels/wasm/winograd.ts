/**
 * Winograd minimal filtering F(2×2, 5×5) for stride-1 5×5 convolutions: each 2×2 block of
 * outputs ("tile") of one (input, output) channel pair costs 36 multiplications instead of 100.
 * The forward convolution and its weight gradient can instead take F(4×4, 5×5) (4×4 tiles, 8×8
 * transformed: 64 multiplications instead of 400), which trades accuracy for fewer multiplications
 * (F4X5 and its own forward input and output kernels, wgInput4 / wgOutput4, below; the weight
 * gradient's transforms are generated for either tile size).
 *
 *   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        (g: 5×5 filter, d: 6×6 input window, Y: 2×2 outputs)
 *
 * Summed over input channels, the ⊙ becomes 36 independent GEMMs (one per position ξ of the
 * 6×6 transformed tile): M_ξ[cout, tiles] = U_ξ[cout, cin] · V_ξ[cin, tiles]. The JS driver
 * (ops.ts) runs those on the packed GEMM micro-kernel; this file derives the transform matrices
 * and generates the three transform kernels, which read and write the packed-panel layouts that
 * micro-kernel uses, so no separate packing pass is needed.
 *
 * The matrices are not typed in: `cookToom` derives them from the interpolation points, and the
 * kernels are generated from whatever it returns (zero coefficients emit nothing, ±1 an add or a
 * subtract, anything else one multiply-add). test/winograd.test.ts checks them against direct
 * correlation.
 */
import { FnBuilder, T, type Local, type V128 } from './emitter.ts';

export interface WinogradTransforms {
  /** Outputs per tile side (m) and filter size (r); a tile reads α = m + r − 1 inputs per side. */
  m: number; r: number; alpha: number;
  /** Output transform, m × α. */
  AT: number[][];
  /** Filter transform, α × r. */
  G: number[][];
  /** Input transform, α × α. */
  BT: number[][];
}

/** The inverse of a small square matrix (Gauss–Jordan with partial pivoting, float64). */
function invert(a: readonly number[][]): number[][] {
  const n = a.length;
  const m = a.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r]![col]!) > Math.abs(m[piv]![col]!)) piv = r;
    if (m[piv]![col] === 0) throw new Error('cookToom: interpolation points must be distinct');
    [m[col], m[piv]] = [m[piv]!, m[col]!];
    const p = m[col]!, s = p[col]!;
    for (let j = 0; j < 2 * n; j++) p[j]! /= s;
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const row = m[r]!, k = row[col]!;
      if (k !== 0) for (let j = 0; j < 2 * n; j++) row[j]! -= k * p[j]!;
    }
  }
  return m.map((row) => row.slice(n));
}

const transpose = (a: readonly number[][]): number[][] => a[0]!.map((_, j) => a.map((row) => row[j]!));
/** Snaps float64 noise off values that are integers (so the kernels get exact constants). */
const clean = (v: number): number => (Math.abs(v - Math.round(v)) < 1e-9 ? Math.round(v) + 0 : v);

/**
 * Toom–Cook matrices for F(m, r) from α − 1 finite interpolation points plus the point at infinity.
 *
 * A linear convolution s = u ∗ v (u of length m, v of length r, s of length α) is evaluated at the
 * points, s(aᵢ) = u(aᵢ)·v(aᵢ) (at infinity: the leading coefficients' product), then interpolated:
 * s = C·[(E_m u) ⊙ (E_r v)], where E_k (α × k) evaluates a polynomial with k coefficients at the
 * points (its infinity row picks the leading coefficient) and C = E_α⁻¹. For fixed v that is the
 * linear map s = Conv_v·u, Conv_v = C·diag(E_r v)·E_m, and correlation with v, y = Conv_vᵀ·d, is its
 * transpose: y = E_mᵀ [(E_r v) ⊙ (Cᵀ d)]. So Aᵀ = E_mᵀ, G = E_r, Bᵀ = Cᵀ.
 *
 * Row i of Cᵀ holds the coefficients of the Lagrange basis polynomial of point aᵢ over the finite
 * points, ∏_{j≠i}(x − aⱼ) / ∏_{j≠i}(aᵢ − aⱼ) (and the infinity row those of ∏ⱼ(x − aⱼ)). Moving
 * each denominator fᵢ = ∏_{j≠i}(aᵢ − aⱼ) from Bᵀ's row into G's row (they multiply lane-wise, so
 * the product is unchanged) leaves Bᵀ with small integers and G with the fractions: G is applied
 * once per filter, Bᵀ once per input tile.
 */
export function cookToom(m: number, r: number, points: readonly number[]): WinogradTransforms {
  const alpha = m + r - 1;
  if (points.length !== alpha - 1) throw new Error(`cookToom: F(${m}, ${r}) needs ${alpha - 1} finite points`);
  const evaluate = (k: number): number[][] => [
    ...points.map((a) => Array.from({ length: k }, (_, j) => a ** j)),
    Array.from({ length: k }, (_, j) => (j === k - 1 ? 1 : 0)),
  ];
  const denom = [...points.map((a, i) => points.reduce((p, b, j) => (j === i ? p : p * (a - b)), 1)), 1];
  const AT = transpose(evaluate(m)).map((row) => row.map(clean));
  const G = evaluate(r).map((row, i) => row.map((v) => clean(v / denom[i]!)));
  const BT = transpose(invert(evaluate(alpha))).map((row, i) => row.map((v) => clean(v * denom[i]!)));
  return { m, r, alpha, AT, G, BT };
}

/**
 * F(2, 5) from the points 0, ±3/2, ±2/3, ∞. The textbook points 0, ±1, ±2 (cookToom(2, 5, [0, 1,
 * −1, 2, −2]) gives the usual integer Bᵀ) are about 2× less accurate in float32: the rounding
 * error of the 36 transformed-domain sums, weighted by Aᵀ, is what Winograd adds over a direct
 * convolution, and its size depends only on the points. A float32 simulation of a 32-channel tile
 * over every 5-point set with 0 drawn from {±1, ±2, ±1/2, ±3, ±1/3, ±3/2, ±2/3, ±3/4, ±4/3, ±4,
 * ±1/4} put this set first (relative RMS error 6.4e-7, textbook 1.2e-6); on CIFAR-shaped layers the
 * kernels measure 4–9e-7 against 0.7–2e-6 (a direct convolution: 2.5e-7). The network parity tests
 * (batch-2 BatchNorm amplifies every rounding error ~100×) need that margin. Each row of Bᵀ keeps a
 * coefficient of 1 (the basis polynomials are monic), so the transforms cost what the textbook
 * ones do: one multiply-add per further coefficient.
 */
export const F2X5 = cookToom(2, 5, [0, 1.5, -1.5, 2 / 3, -2 / 3]);

/**
 * F(4, 5) from the points 0, ±1, ±2, ±1/2, ∞: 8×8 transformed tiles, 64 multiplications per 4×4
 * outputs (4 per output instead of F(2×2)'s 9). bench/winograd-accuracy.ts simulated float32 over
 * candidate point sets and put this one first: relative RMS error 2.4e-6 on 32 channels, against
 * 7.0e-7 for F2X5, so the backend uses it only where asked (SVDD_WINOGRAD_TILE=4).
 */
export const F4X5 = snapDyadic(cookToom(4, 5, [0, 1, -1, 2, -2, 0.5, -0.5]));

/**
 * t with float64 noise snapped off coefficients that are multiples of 1/4096 (cookToom's inverse
 * leaves 0.49999999999999856 where F(4, 5)'s Bᵀ has 1/2, and −4.249999999999999 next to −4.25):
 * exact constants, one splat per distinct value, and ±1 coefficients emitted as adds.
 */
function snapDyadic(t: WinogradTransforms): WinogradTransforms {
  const snap = (v: number): number => {
    const q = Math.round(v * 4096) / 4096;
    return Math.abs(v - q) < 1e-9 ? q + 0 : v;
  };
  const each = (a: number[][]): number[][] => a.map((row) => row.map(snap));
  return { ...t, AT: each(t.AT), G: each(t.G), BT: each(t.BT) };
}

const i32s = (n: number): T[] => Array<T>(n).fill(T.i32);

/** f32x4 splats of the constants a kernel multiplies by, set once before its loops. */
function constants(f: FnBuilder, matrices: number[][][]): (c: number) => Local<T.v128> {
  const locals = new Map<number, Local<T.v128>>();
  for (const mat of matrices) {
    for (const row of mat) {
      for (const c of row) {
        if (c === 0 || c === 1 || c === -1 || locals.has(c)) continue;
        const l = f.local(T.v128);
        f.set(l, () => f.f32x4Splat(() => f.f32Const(c)));
        locals.set(c, l);
      }
    }
  }
  return (c) => locals.get(c)!;
}

/**
 * Code pushing Σₖ coeffs[k]·terms[k] (f32x4). A +1 term starts the sum when there is one, so a
 * row costs one add, subtract or multiply-add per further non-zero coefficient.
 */
function linComb(f: FnBuilder, coeffs: readonly number[], terms: readonly V128[], k: (c: number) => Local<T.v128>,
                 relaxed: boolean): () => void {
  const nz = coeffs.map((c, i) => [c, i] as const).filter(([c]) => c !== 0);
  if (nz.length === 0) return () => { f.v128Zero(); };
  const rank = (c: number): number => (c === 1 ? 0 : c === -1 ? 2 : 1);
  nz.sort((a, b) => rank(a[0]) - rank(b[0]));
  const [c0, i0] = nz[0]!;
  let expr: () => void = c0 === 1 ? () => { pushV(f, terms[i0]!); }
    : c0 === -1 ? () => { f.f32x4Sub(() => f.v128Zero(), terms[i0]!); }
      : () => { f.f32x4Mul(k(c0), terms[i0]!); };
  for (const [c, i] of nz.slice(1)) {
    const prev = expr, t = terms[i]!;
    expr = c === 1 ? () => { f.f32x4Add(prev, t); }
      : c === -1 ? () => { f.f32x4Sub(prev, t); }
        : () => { f.f32x4Madd(k(c), t, prev, relaxed); };
  }
  return expr;
}

/**
 * Stores a transformed α×α tile, one f32x4 per position ξ = i·α + j (the order every transform
 * writes), at start + ξ·xiStride (+ offset bytes); `element(i, j)` pushes the value of (i, j).
 */
function storeByXi(f: FnBuilder, xa: Local<T.i32>, start: Local<T.i32>, alpha: number, xiStride: Local<T.i32>,
                   element: (i: number, j: number) => () => void, offset = 0): void {
  f.set(xa, start);
  for (let i = 0; i < alpha; i++) {
    for (let j = 0; j < alpha; j++) {
      f.v128Store(xa, element(i, j), offset);
      if (i * alpha + j < alpha * alpha - 1) f.inc(xa, xiStride);
    }
  }
}

/**
 * After a group of 4 tiles in packed-B layout (wgInput, wgInput4): the next group fills the other
 * half of this 8-tile panel (h = 1: step back to its second half), or the first half of the next one.
 */
function advanceHalfPanel(f: FnBuilder, h: Local<T.i32>, d: Local<T.i32>, panelBytes: Local<T.i32>): void {
  f.if_(h, () => f.inc(d, () => f.i32Sub(panelBytes, 16)), () => f.inc(d, 16));
  f.set(h, () => f.i32Sub(1, h));
}

/**
 * A call that ends half-way into a panel (h = 1) zeroes the panel's other half at every ξ and input
 * channel, so the GEMM never reads stale arena bytes there (see wgInput).
 */
function zeroOpenHalfPanel(f: FnBuilder, l: { h: Local<T.i32>; d: Local<T.i32>; dc: Local<T.i32>; c: Local<T.i32>; xa: Local<T.i32>;
  cin: Local<T.i32>; xiStride: Local<T.i32> }, alpha: number): void {
  f.if_(l.h, () => {
    f.set(l.dc, l.d).set(l.c, 0);
    f.doWhile(() => {
      storeByXi(f, l.xa, l.dc, alpha, l.xiStride, () => () => { f.v128Zero(); });
      f.inc(l.dc, 32).inc(l.c, 1);
    }, () => f.i32LtS(l.c, l.cin));
  });
}

/** Pushes a V128 operand by itself (f32x4 ops push their operands; a lone term needs this). */
function pushV(f: FnBuilder, v: V128): void { if (typeof v === 'function') v(); else f.get(v); }

/**
 * wgWeights(dst, src, groups, xiStride): filter transform U = G·g·Gᵀ for `groups` groups of four
 * 5×5 filters. src holds each group as 25 f32x4 vectors (tap-major, one filter per lane: what
 * pack4 makes of a [cout, cin·25] weight matrix, group = (row panel, input channel)). U[ξ] of group
 * q goes to dst + ξ·xiStride + 16q: per ξ, the packed-A layout [cout/4][cin][4] of U_ξ.
 */
export function wgWeights(relaxed: boolean, t: WinogradTransforms = F2X5): FnBuilder {
  const f = new FnBuilder(t.m === 2 ? 'wgWeights' : `wgWeights${t.m}`, i32s(4));
  const dst = f.param(0, T.i32), src = f.param(1, T.i32), groups = f.param(2, T.i32), xiStride = f.param(3, T.i32);
  const { alpha, r, G } = t;
  const end = f.local(T.i32), xa = f.local(T.i32);
  const g: Local<T.v128>[] = Array.from({ length: r * r }, () => f.local(T.v128));
  const gT: Local<T.v128>[] = Array.from({ length: alpha * r }, () => f.local(T.v128));
  const k = constants(f, [G]);
  f.set(end, () => f.i32Add(src, () => f.i32Mul(groups, r * r * 16)));
  f.doWhile(() => {
    for (let i = 0; i < r * r; i++) f.set(g[i]!, () => f.v128Load(src, i * 16));
    // (G·g)[i][x] = Σ_y G[i][y]·g[y][x]
    for (let i = 0; i < alpha; i++) {
      for (let x = 0; x < r; x++) f.set(gT[i * r + x]!, linComb(f, G[i]!, g.filter((_, q) => q % r === x), k, relaxed));
    }
    // U[i][j] = Σ_x (G·g)[i][x]·G[j][x], stored in ξ = i·α + j order.
    storeByXi(f, xa, dst, alpha, xiStride, (i, j) => linComb(f, G[j]!, gT.slice(i * r, i * r + r), k, relaxed));
    f.inc(src, r * r * 16);
    f.inc(dst, 16);
  }, () => f.i32LtS(src, end));
  return f;
}

/**
 * wgInput(dst, src, cin, rows, groups, rowBytes, planeBytes, xiStride, half): input transform
 * V = Bᵀ·d·B for `rows` rows of `groups` groups of 4 horizontally adjacent tiles, one f32x4 lane per
 * tile. src is the zero-padded input (α − 2 = 4 extra columns and rows past the tiles) at channel 0
 * of the first tile row; rows are rowBytes apart, channels planeBytes apart, and a tile row starts
 * two input rows below the previous one.
 *
 * V goes straight into packed-B layout, per ξ [tiles/8][cin][8] at dst + ξ·xiStride: a group fills
 * half of an 8-tile panel, starting with the half given by `half` (0: lanes 0–3, 1: lanes 4–7).
 * A call that ends half-way into a panel zeroes the panel's other half, so that the GEMM never
 * multiplies stale arena bytes (which could be slow denormals); a following call overwrites them.
 *
 * The 6 columns of 4 tiles sit 2 floats apart: two loads 4 floats apart give columns x and x + 1
 * (even and odd lanes), so five unaligned loads per input row yield all six columns.
 */
export function wgInput(relaxed: boolean, t: WinogradTransforms = F2X5): FnBuilder {
  if (t.alpha !== 6) throw new Error('wgInput: the column shuffles assume 6-wide tiles');
  const f = new FnBuilder('wgInput', i32s(9));
  const [dst, src, cin, rows, groups, rowBytes, planeBytes, xiStride, half] = f.params as Local<T.i32>[];
  const { alpha, BT } = t;
  const r = f.local(T.i32), q = f.local(T.i32), c = f.local(T.i32);
  const rowSrc = f.local(T.i32), s = f.local(T.i32), sc = f.local(T.i32), dc = f.local(T.i32), ra = f.local(T.i32);
  const xa = f.local(T.i32), panelBytes = f.local(T.i32), h = f.local(T.i32), d = f.local(T.i32);
  const ld: Local<T.v128>[] = Array.from({ length: 5 }, () => f.local(T.v128));
  const col: Local<T.v128>[] = Array.from({ length: alpha }, () => f.local(T.v128));
  const dB: Local<T.v128>[] = Array.from({ length: alpha * alpha }, () => f.local(T.v128));
  const k = constants(f, [BT]);
  const even: [number, number, number, number] = [0, 2, 4, 6], odd: [number, number, number, number] = [1, 3, 5, 7];

  f.set(panelBytes, () => f.i32Shl(cin!, 5));
  f.set(h, half!).set(d, dst!).set(rowSrc, src!).set(r, 0);
  f.doWhile(() => {
    f.set(s, rowSrc).set(q, 0);
    f.doWhile(() => {
      f.set(sc, s).set(dc, d).set(c, 0);
      f.doWhile(() => {
        f.set(ra, sc);
        for (let y = 0; y < alpha; y++) {
          // ld[i] = the 4 floats at column 2i of this row (i = 0..4).
          for (let i = 0; i < 5; i++) f.set(ld[i]!, () => f.v128Load(ra, i * 8));
          for (let x = 0; x < alpha; x++) {
            const a = ld[x >> 1]!, b = ld[(x >> 1) + 2]!;
            f.set(col[x]!, () => f.f32x4Shuffle(a, b, x & 1 ? odd : even));
          }
          // (d·B)[y][j] = Σ_x d[y][x]·Bᵀ[j][x]
          for (let j = 0; j < alpha; j++) f.set(dB[y * alpha + j]!, linComb(f, BT[j]!, col, k, relaxed));
          if (y < alpha - 1) f.inc(ra, rowBytes!);
        }
        // V[i][j] = Σ_y Bᵀ[i][y]·(d·B)[y][j], stored in ξ = i·α + j order.
        storeByXi(f, xa, dc, alpha, xiStride!, (i, j) => linComb(f, BT[i]!, dB.filter((_, p) => p % alpha === j), k, relaxed));
        f.inc(sc, planeBytes!).inc(dc, 32).inc(c, 1);
      }, () => f.i32LtS(c, cin!));
      advanceHalfPanel(f, h, d, panelBytes);
      f.inc(s, 32).inc(q, 1);
    }, () => f.i32LtS(q, groups!));
    f.inc(rowSrc, () => f.i32Shl(rowBytes!, 1)).inc(r, 1);
  }, () => f.i32LtS(r, rows!));
  zeroOpenHalfPanel(f, { h, d, dc, c, xa, cin: cin!, xiStride: xiStride! }, alpha);
  return f;
}

/**
 * Code setting y[a·m + b] (a, b < m) to the output transform Y = Aᵀ·M·A of one group of 4 tiles
 * (one per lane), M_ξ read at src + ξ·xiStride; xa, mv and am (m·α vectors) are scratch.
 */
function outputTransform(f: FnBuilder, t: WinogradTransforms, src: Local<T.i32>, xiStride: Local<T.i32>, xa: Local<T.i32>, mv: Local<T.v128>,
                         am: readonly Local<T.v128>[], y: readonly Local<T.v128>[], k: (c: number) => Local<T.v128>, relaxed: boolean): void {
  const { alpha, m, AT } = t;
  // (Aᵀ·M)[a][x] = Σ_y Aᵀ[a][y]·M[y][x], accumulated as M is read in ξ = y·α + x order,
  // so only m·α sums and one M vector are live.
  f.set(xa, src);
  const started = new Set<number>();
  for (let yy = 0; yy < alpha; yy++) {
    for (let x = 0; x < alpha; x++) {
      f.set(mv, () => f.v128Load(xa));
      if (yy * alpha + x < alpha * alpha - 1) f.inc(xa, xiStride);
      for (let a = 0; a < m; a++) {
        const cf = AT[a]![yy]!, acc = am[a * alpha + x]!;
        if (cf === 0) continue;
        if (!started.has(a * alpha + x)) {
          started.add(a * alpha + x);
          f.set(acc, linComb(f, [cf], [mv], k, relaxed));
        } else {
          f.set(acc, cf === 1 ? () => f.f32x4Add(acc, mv) : cf === -1 ? () => f.f32x4Sub(acc, mv)
            : () => f.f32x4Madd(k(cf), mv, acc, relaxed));
        }
      }
    }
  }
  if (started.size !== m * alpha) throw new Error('wgOutput: Aᵀ has a zero column');
  // Y[a][b] = Σ_x (Aᵀ·M)[a][x]·Aᵀ[b][x]
  for (let a = 0; a < m; a++) {
    for (let b = 0; b < m; b++) {
      const terms = am.slice(a * alpha, a * alpha + alpha);
      f.set(y[a * m + b]!, linComb(f, AT[b]!, terms, k, relaxed));
    }
  }
}

/**
 * wgOutput(dst, src, cout, rows, groups, ldcBytes, xiStride, outRowBytes, outPlaneBytes): output
 * transform Y = Aᵀ·M·A for `rows` rows of `groups` groups of 4 tiles and every output channel.
 * M_ξ is row-major [cout][tiles] at src + ξ·xiStride (rows ldcBytes apart), src pointing at the
 * first tile; each group writes two output rows of 8 floats at dst (channel planes outPlaneBytes
 * apart, rows outRowBytes apart), so the output rows must hold whole groups (the driver pads).
 */
export function wgOutput(relaxed: boolean, t: WinogradTransforms = F2X5): FnBuilder {
  if (t.m !== 2) throw new Error('wgOutput: the output interleave assumes 2×2 tiles');
  const f = new FnBuilder('wgOutput', i32s(9));
  const [dst, src, cout, rows, groups, ldcBytes, xiStride, outRowBytes, outPlaneBytes] = f.params as Local<T.i32>[];
  const { alpha, m, AT } = t;
  const co = f.local(T.i32), r = f.local(T.i32), q = f.local(T.i32);
  const cs = f.local(T.i32), cd = f.local(T.i32), s = f.local(T.i32), o = f.local(T.i32), ro = f.local(T.i32), xa = f.local(T.i32);
  const mv = f.local(T.v128);
  const am: Local<T.v128>[] = Array.from({ length: m * alpha }, () => f.local(T.v128));
  const y: Local<T.v128>[] = Array.from({ length: m * m }, () => f.local(T.v128));
  const k = constants(f, [AT]);

  f.set(co, 0).set(cs, src!).set(cd, dst!);
  f.doWhile(() => {
    f.set(s, cs).set(ro, cd).set(r, 0);
    f.doWhile(() => {
      f.set(o, ro).set(q, 0);
      f.doWhile(() => {
        outputTransform(f, t, s, xiStride!, xa, mv, am, y, k, relaxed);
        // Lane i of y[a][b] is output (row a, column 2i + b) of the group: interleave to rows.
        for (let a = 0; a < m; a++) {
          const addr = a === 0 ? o : (): void => { f.i32Add(o, outRowBytes!); };
          f.v128Store(addr, () => f.f32x4Shuffle(y[a * m]!, y[a * m + 1]!, [0, 4, 1, 5]));
          f.v128Store(addr, () => f.f32x4Shuffle(y[a * m]!, y[a * m + 1]!, [2, 6, 3, 7]), 16);
        }
        f.inc(s, 16).inc(o, 32).inc(q, 1);
      }, () => f.i32LtS(q, groups!));
      f.inc(ro, () => f.i32Shl(outRowBytes!, 1)).inc(r, 1);
    }, () => f.i32LtS(r, rows!));
    f.inc(cs, ldcBytes!).inc(cd, outPlaneBytes!).inc(co, 1);
  }, () => f.i32LtS(co, cout!));
  return f;
}

/*
 * F(4×4, 5×5) (F4X5, SVDD_WINOGRAD_TILE=4). The F(2×2) kernels above take 4 adjacent tiles of one
 * tile row per vector, and the driver pads each tile row to whole groups; with 4×4 tiles that would
 * waste half the work on 8-column outputs (CIFAR conv3) and three quarters on 4-column ones. These
 * take any 4 tiles per vector instead: per group, a table holds each lane's byte offset (its window
 * corner in the padded input, its block in the output), so tiles are packed 4 to a vector across
 * tile rows and images. The filter transform is wgWeights(F4X5).
 */

/**
 * out[k] = lane k of each of a[0..3] (a 4×4 transpose of f32x4 values), through the scratch
 * locals tmp[0..3]: pairs are interleaved first, then their halves combined.
 */
function transpose4(f: FnBuilder, a: readonly V128[], tmp: readonly Local<T.v128>[], out: readonly Local<T.v128>[]): void {
  f.set(tmp[0]!, () => f.f32x4Shuffle(a[0]!, a[1]!, [0, 4, 1, 5])).set(tmp[1]!, () => f.f32x4Shuffle(a[0]!, a[1]!, [2, 6, 3, 7]));
  f.set(tmp[2]!, () => f.f32x4Shuffle(a[2]!, a[3]!, [0, 4, 1, 5])).set(tmp[3]!, () => f.f32x4Shuffle(a[2]!, a[3]!, [2, 6, 3, 7]));
  for (let k = 0; k < 4; k++) f.set(out[k]!, () => f.f32x4Shuffle(tmp[k >> 1]!, tmp[2 + (k >> 1)]!, k & 1 ? [2, 3, 6, 7] : [0, 1, 4, 5]));
}

/**
 * wgInput4(dst, src, cin, groups, laneTab, rowBytes, planeBytes, xiStride, half): input transform
 * V = Bᵀ·d·B of F(4×4) for `groups` groups of 4 tiles, one f32x4 lane per tile. Lane i of group q is the tile whose 8×8 window (channel 0) starts at
 * src + laneTab[4q + i]; rows rowBytes apart, channels planeBytes apart. dst, xiStride and half as
 * wgInput (packed B, a group filling half of an 8-tile panel). Per input row, each lane's 8 columns
 * are two loads; two 4×4 transposes put columns 0–3 and 4–7 of the 4 tiles into vectors.
 */
export function wgInput4(relaxed: boolean, t: WinogradTransforms = F4X5): FnBuilder {
  if (t.m !== 4 || t.r !== 5) throw new Error('wgInput4: the column transposes assume F(4×4, 5×5)');
  const f = new FnBuilder('wgInput4', i32s(9));
  const [dst, src, cin, groups, laneTab, rowBytes, planeBytes, xiStride, half] = f.params as Local<T.i32>[];
  const { alpha, BT } = t;
  const q = f.local(T.i32), c = f.local(T.i32), tab = f.local(T.i32), ro = f.local(T.i32);
  const dc = f.local(T.i32), xa = f.local(T.i32), panelBytes = f.local(T.i32), h = f.local(T.i32), d = f.local(T.i32);
  const lane: Local<T.i32>[] = Array.from({ length: 4 }, () => f.local(T.i32));
  const lo: Local<T.v128>[] = Array.from({ length: 4 }, () => f.local(T.v128));
  const hi: Local<T.v128>[] = Array.from({ length: 4 }, () => f.local(T.v128));
  const tr: Local<T.v128>[] = Array.from({ length: 4 }, () => f.local(T.v128));
  const col: Local<T.v128>[] = Array.from({ length: alpha }, () => f.local(T.v128));
  const dB: Local<T.v128>[] = Array.from({ length: alpha * alpha }, () => f.local(T.v128));
  const k = constants(f, [BT]);

  f.set(panelBytes, () => f.i32Shl(cin!, 5));
  f.set(h, half!).set(d, dst!).set(tab, laneTab!).set(q, 0);
  f.doWhile(() => {
    for (let i = 0; i < 4; i++) f.set(lane[i]!, () => f.i32Add(src!, () => f.i32Load(tab, 4 * i)));
    f.set(dc, d).set(c, 0);
    f.doWhile(() => {
      f.set(ro, 0);
      for (let y = 0; y < alpha; y++) {
        for (let i = 0; i < 4; i++) {
          const at = (): void => { f.i32Add(lane[i]!, ro); };
          f.set(lo[i]!, () => f.v128Load(at)).set(hi[i]!, () => f.v128Load(at, 16));
        }
        transpose4(f, lo, tr, col.slice(0, 4));
        transpose4(f, hi, tr, col.slice(4, 8));
        // (d·B)[y][j] = Σ_x d[y][x]·Bᵀ[j][x]
        for (let j = 0; j < alpha; j++) f.set(dB[y * alpha + j]!, linComb(f, BT[j]!, col, k, relaxed));
        if (y < alpha - 1) f.inc(ro, rowBytes!);
      }
      // V[i][j] = Σ_y Bᵀ[i][y]·(d·B)[y][j], stored in ξ = i·α + j order.
      storeByXi(f, xa, dc, alpha, xiStride!, (i, j) => linComb(f, BT[i]!, dB.filter((_, p) => p % alpha === j), k, relaxed));
      for (let i = 0; i < 4; i++) f.inc(lane[i]!, planeBytes!);
      f.inc(dc, 32).inc(c, 1);
    }, () => f.i32LtS(c, cin!));
    advanceHalfPanel(f, h, d, panelBytes);
    f.inc(tab, 16).inc(q, 1);
  }, () => f.i32LtS(q, groups!));
  zeroOpenHalfPanel(f, { h, d, dc, c, xa, cin: cin!, xiStride: xiStride! }, alpha);
  return f;
}

/**
 * wgOutput4(dst, src, cout, groups, laneTab, ldcBytes, xiStride, outRowBytes, outPlaneBytes): output
 * transform Y = Aᵀ·M·A of F(4×4) for `groups` groups of 4 tiles and every output channel. M_ξ is row-major [cout][4·groups] at src + ξ·xiStride
 * (rows ldcBytes apart); lane i of group q writes its 4×4 block at dst + laneTab[4q + i] (output
 * channel 0; rows outRowBytes apart, channels outPlaneBytes apart). A lane that repeats another
 * lane's tile computes the same values bit for bit, so the driver fills a last, partial group that way.
 */
export function wgOutput4(relaxed: boolean, t: WinogradTransforms = F4X5): FnBuilder {
  if (t.m !== 4) throw new Error('wgOutput4: the output transposes assume 4×4 tiles');
  const f = new FnBuilder('wgOutput4', i32s(9));
  const [dst, src, cout, groups, laneTab, ldcBytes, xiStride, outRowBytes, outPlaneBytes] = f.params as Local<T.i32>[];
  const { alpha, m, AT } = t;
  const co = f.local(T.i32), q = f.local(T.i32), cs = f.local(T.i32), cd = f.local(T.i32), s = f.local(T.i32);
  const tab = f.local(T.i32), xa = f.local(T.i32), ro = f.local(T.i32);
  const lane: Local<T.i32>[] = Array.from({ length: 4 }, () => f.local(T.i32));
  const mv = f.local(T.v128);
  const am: Local<T.v128>[] = Array.from({ length: m * alpha }, () => f.local(T.v128));
  const y: Local<T.v128>[] = Array.from({ length: m * m }, () => f.local(T.v128));
  const tr: Local<T.v128>[] = Array.from({ length: 4 }, () => f.local(T.v128));
  const outs: Local<T.v128>[] = Array.from({ length: 4 }, () => f.local(T.v128));
  const k = constants(f, [AT]);

  f.set(co, 0).set(cs, src!).set(cd, dst!);
  f.doWhile(() => {
    f.set(s, cs).set(tab, laneTab!).set(q, 0);
    f.doWhile(() => {
      outputTransform(f, t, s, xiStride!, xa, mv, am, y, k, relaxed);
      for (let i = 0; i < 4; i++) f.set(lane[i]!, () => f.i32Add(cd, () => f.i32Load(tab, 4 * i)));
      // Output row a of lane i is vector i of the 4×4 transpose of y[a][0..3].
      f.set(ro, 0);
      for (let a = 0; a < m; a++) {
        transpose4(f, y.slice(a * m, a * m + m), tr, outs);
        for (let i = 0; i < 4; i++) f.v128Store(() => f.i32Add(lane[i]!, ro), outs[i]!);
        if (a < m - 1) f.inc(ro, outRowBytes!);
      }
      f.inc(s, 16).inc(tab, 16).inc(q, 1);
    }, () => f.i32LtS(q, groups!));
    f.inc(cs, ldcBytes!).inc(cd, outPlaneBytes!).inc(co, 1);
  }, () => f.i32LtS(co, cout!));
  return f;
}

/*
 * Weight gradient. The forward algorithm is linear in the filter: per tile Y = Aᵀ [U ⊙ V] A with
 * U = G·g·Gᵀ, so its adjoint gives the true gradient: dM = A·dY·Aᵀ per tile, dU_ξ[cout][cin] =
 * Σ_tiles dM_ξ[cout]·V_ξ[cin] (α² GEMMs whose inner dimension is the tiles: 36 for F(2×2), 64 for
 * F(4×4)), dg = Gᵀ·dU·G. The
 * GEMMs need the channels, not the tiles, in the vector lanes (the packed micro-kernel's A is
 * [cout/4][tiles][4], its B [cin/8][tiles][8]), so these transforms read channel-interleaved
 * inputs (made by pack4 / pack8 gathers) and work on 4 channels per f32x4 instead of 4 tiles.
 */

/**
 * log2 of the tile side m: tile windows and tile rows are m pixels apart, a shift of the pixel and
 * row strides. The weight-gradient transforms exist for F(2×2) and F(4×4).
 */
function tileShift(t: WinogradTransforms, name: string): number {
  if (t.m !== 2 && t.m !== 4) throw new Error(`${name}: tiles are 2 or 4 outputs wide, not ${t.m}`);
  return t.m === 2 ? 1 : 2;
}

/**
 * wgInputT(dst, src, rows, tilesX, panels, rowBytes, planeBytes, xiStride, panelDstBytes): input
 * transform V = Bᵀ·d·B for `rows` rows of `tilesX` tiles, 8 input channels (two f32x4) per panel.
 * src is the zero-padded input interleaved by channel, [cin/8][Hw][Ww][8] (pixel rows rowBytes apart,
 * panels planeBytes apart), at the window corner of the first tile; tile windows are m pixels apart
 * (wgInputT for F(2×2), wgInputT4 for F(4×4)).
 * V goes to packed-B layout: per ξ [cin/8][tiles][8] at dst + ξ·xiStride, panels panelDstBytes apart,
 * dst pointing at the first tile's row of panel 0.
 */
export function wgInputT(relaxed: boolean, t: WinogradTransforms = F2X5): FnBuilder {
  const shift = tileShift(t, 'wgInputT');
  const f = new FnBuilder(t.m === 2 ? 'wgInputT' : `wgInputT${t.m}`, i32s(9));
  const [dst, src, rows, tilesX, panels, rowBytes, planeBytes, xiStride, panelDstBytes] = f.params as Local<T.i32>[];
  const { alpha, BT } = t;
  const r = f.local(T.i32), tx = f.local(T.i32), p = f.local(T.i32);
  const rowSrc = f.local(T.i32), s = f.local(T.i32), d = f.local(T.i32), sp = f.local(T.i32), dp = f.local(T.i32);
  const ra = f.local(T.i32), xa = f.local(T.i32);
  const col: Local<T.v128>[] = Array.from({ length: alpha }, () => f.local(T.v128));
  const dB: Local<T.v128>[] = Array.from({ length: alpha * alpha }, () => f.local(T.v128));
  const k = constants(f, [BT]);
  f.set(d, dst!).set(rowSrc, src!).set(r, 0);
  f.doWhile(() => {
    f.set(s, rowSrc).set(tx, 0);
    f.doWhile(() => {
      f.set(sp, s).set(dp, d).set(p, 0);
      f.doWhile(() => {
        for (let half = 0; half < 2; half++) {
          f.set(ra, sp);
          for (let y = 0; y < alpha; y++) {
            for (let x = 0; x < alpha; x++) f.set(col[x]!, () => f.v128Load(ra, x * 32 + half * 16));
            for (let j = 0; j < alpha; j++) f.set(dB[y * alpha + j]!, linComb(f, BT[j]!, col, k, relaxed));
            if (y < alpha - 1) f.inc(ra, rowBytes!);
          }
          storeByXi(f, xa, dp, alpha, xiStride!, (i, j) => linComb(f, BT[i]!, dB.filter((_, q) => q % alpha === j), k, relaxed), half * 16);
        }
        f.inc(sp, planeBytes!).inc(dp, panelDstBytes!).inc(p, 1);
      }, () => f.i32LtS(p, panels!));
      f.inc(s, 32 << shift).inc(d, 32).inc(tx, 1);
    }, () => f.i32LtS(tx, tilesX!));
    f.inc(rowSrc, () => f.i32Shl(rowBytes!, shift)).inc(r, 1);
  }, () => f.i32LtS(r, rows!));
  return f;
}

/**
 * wgGradOutT(dst, src, rows, tilesX, panels, rowBytes, planeBytes, xiStride, panelDstBytes): output
 * gradient transform dM = A·dY·Aᵀ (the adjoint of Y = Aᵀ·M·A) for `rows` rows of `tilesX` tiles,
 * 4 output channels per f32x4. src is dY interleaved by channel, [cout/4][m·th][m·tw][4] (pixel rows
 * rowBytes apart, panels planeBytes apart), at the first tile; dM goes to packed-A layout: per ξ
 * [cout/4][tiles][4] at dst + ξ·xiStride, panels panelDstBytes apart (wgGradOutT for F(2×2),
 * wgGradOutT4 for F(4×4)).
 */
export function wgGradOutT(relaxed: boolean, t: WinogradTransforms = F2X5): FnBuilder {
  const shift = tileShift(t, 'wgGradOutT');
  const f = new FnBuilder(t.m === 2 ? 'wgGradOutT' : `wgGradOutT${t.m}`, i32s(9));
  const [dst, src, rows, tilesX, panels, rowBytes, planeBytes, xiStride, panelDstBytes] = f.params as Local<T.i32>[];
  const { alpha, m, AT } = t;
  const r = f.local(T.i32), tx = f.local(T.i32), p = f.local(T.i32);
  const rowSrc = f.local(T.i32), s = f.local(T.i32), d = f.local(T.i32), sp = f.local(T.i32), dp = f.local(T.i32);
  const xa = f.local(T.i32), ra = f.local(T.i32);
  const dy: Local<T.v128>[] = Array.from({ length: m * m }, () => f.local(T.v128));
  const tt: Local<T.v128>[] = Array.from({ length: m * alpha }, () => f.local(T.v128));
  const k = constants(f, [AT]);
  f.set(d, dst!).set(rowSrc, src!).set(r, 0);
  f.doWhile(() => {
    f.set(s, rowSrc).set(tx, 0);
    f.doWhile(() => {
      f.set(sp, s).set(dp, d).set(p, 0);
      f.doWhile(() => {
        // dY[a][b]: pixel b of row a, one f32x4 (4 channels) per pixel.
        f.set(ra, sp);
        for (let a = 0; a < m; a++) {
          for (let b = 0; b < m; b++) f.set(dy[a * m + b]!, () => f.v128Load(ra, b * 16));
          if (a < m - 1) f.inc(ra, rowBytes!);
        }
        // t[a][j] = Σ_b Aᵀ[b][j]·dY[a][b]
        for (let a = 0; a < m; a++) {
          for (let j = 0; j < alpha; j++) {
            f.set(tt[a * alpha + j]!, linComb(f, AT.map((row) => row[j]!), dy.slice(a * m, a * m + m), k, relaxed));
          }
        }
        // dM[i][j] = Σ_a Aᵀ[a][i]·t[a][j], stored in ξ = i·α + j order.
        storeByXi(f, xa, dp, alpha, xiStride!, (i, j) => linComb(f, AT.map((row) => row[i]!), tt.filter((_, q) => q % alpha === j), k, relaxed));
        f.inc(sp, planeBytes!).inc(dp, panelDstBytes!).inc(p, 1);
      }, () => f.i32LtS(p, panels!));
      f.inc(s, 16 << shift).inc(d, 16).inc(tx, 1);
    }, () => f.i32LtS(tx, tilesX!));
    f.inc(rowSrc, () => f.i32Shl(rowBytes!, shift)).inc(r, 1);
  }, () => f.i32LtS(r, rows!));
  return f;
}

/**
 * wgWeightsT(dst, src, groups, xiStride): filter gradient dg = Gᵀ·dU·G for `groups` groups of four
 * consecutive (cout, cin) pairs. dU_ξ is row-major [cout][cin] at src + ξ·xiStride (src at the
 * group's first pair); dg goes to dst as [pair][5][5] (the gw layout), 25 floats per pair
 * (wgWeightsT for F(2×2), wgWeightsT4 for F(4×4)).
 */
export function wgWeightsT(relaxed: boolean, t: WinogradTransforms = F2X5): FnBuilder {
  const f = new FnBuilder(t.m === 2 ? 'wgWeightsT' : `wgWeightsT${t.m}`, i32s(4));
  const dst = f.param(0, T.i32), src = f.param(1, T.i32), groups = f.param(2, T.i32), xiStride = f.param(3, T.i32);
  const { alpha, r, G } = t;
  const q = f.local(T.i32), xa = f.local(T.i32), out = f.local(T.v128);
  const u: Local<T.v128>[] = Array.from({ length: alpha }, () => f.local(T.v128));
  const s: Local<T.v128>[] = Array.from({ length: alpha * r }, () => f.local(T.v128));
  const k = constants(f, [G]);
  f.set(q, 0);
  f.doWhile(() => {
    f.set(xa, src);
    for (let i = 0; i < alpha; i++) {
      for (let j = 0; j < alpha; j++) {
        f.set(u[j]!, () => f.v128Load(xa));
        if (i * alpha + j < alpha * alpha - 1) f.inc(xa, xiStride);
      }
      // s[i][x] = Σ_j G[j][x]·dU[i][j]
      for (let x = 0; x < r; x++) f.set(s[i * r + x]!, linComb(f, G.map((row) => row[x]!), u, k, relaxed));
    }
    // dg[y][x] = Σ_i G[i][y]·s[i][x]; lane l belongs to pair l, 25 floats further on per lane.
    for (let y = 0; y < r; y++) {
      for (let x = 0; x < r; x++) {
        f.set(out, linComb(f, G.map((row) => row[y]!), s.filter((_, p) => p % r === x), k, relaxed));
        for (let l = 0; l < 4; l++) f.f32Store(dst, () => f.f32x4ExtractLane(out, l), (l * r * r + y * r + x) * 4);
      }
    }
    f.inc(src, 16).inc(dst, 4 * r * r * 4).inc(q, 1);
  }, () => f.i32LtS(q, groups));
  return f;
}

/**
 * interleave4(dst, src, groups, rows, cols4, srcGroupBytes, srcPlaneBytes, srcRowBytes, dstGroupBytes,
 * dstRowBytes, pixelBytes): channel-interleaves `groups` groups of 4 planes of rows × 4·cols4 floats:
 * the 4 values of a pixel (one per plane) become one f32x4 at dst + group·dstGroupBytes +
 * row·dstRowBytes + column·pixelBytes (a 4×4 transpose per 4 pixels). Plane c of group q is at
 * src + q·srcGroupBytes + c·srcPlaneBytes, its rows srcRowBytes apart. The weight gradient's fast
 * path for what pack8 / pack4 gather otherwise.
 */
export function interleave4(): FnBuilder {
  const f = new FnBuilder('interleave4', i32s(11));
  const [dst, src, groups, rows, cols4, srcGroupBytes, srcPlaneBytes, srcRowBytes, dstGroupBytes, dstRowBytes, pixelBytes]
    = f.params as Local<T.i32>[];
  const q = f.local(T.i32), r = f.local(T.i32), x = f.local(T.i32);
  const gs = f.local(T.i32), gd = f.local(T.i32), rs = f.local(T.i32), rd = f.local(T.i32), s = f.local(T.i32), d = f.local(T.i32);
  const p1 = f.local(T.i32), p2 = f.local(T.i32), p3 = f.local(T.i32);
  const a: Local<T.v128>[] = Array.from({ length: 4 }, () => f.local(T.v128));
  const t: Local<T.v128>[] = Array.from({ length: 4 }, () => f.local(T.v128));
  f.set(p1, srcPlaneBytes!).set(p2, () => f.i32Shl(srcPlaneBytes!, 1)).set(p3, () => f.i32Add(p1, p2));
  f.set(gs, src!).set(gd, dst!).set(q, 0);
  f.doWhile(() => {
    f.set(rs, gs).set(rd, gd).set(r, 0);
    f.doWhile(() => {
      f.set(s, rs).set(d, rd).set(x, 0);
      f.doWhile(() => {
        f.set(a[0]!, () => f.v128Load(s));
        f.set(a[1]!, () => f.v128Load(() => f.i32Add(s, p1)));
        f.set(a[2]!, () => f.v128Load(() => f.i32Add(s, p2)));
        f.set(a[3]!, () => f.v128Load(() => f.i32Add(s, p3)));
        f.set(t[0]!, () => f.f32x4Shuffle(a[0]!, a[1]!, [0, 4, 1, 5])).set(t[1]!, () => f.f32x4Shuffle(a[0]!, a[1]!, [2, 6, 3, 7]));
        f.set(t[2]!, () => f.f32x4Shuffle(a[2]!, a[3]!, [0, 4, 1, 5])).set(t[3]!, () => f.f32x4Shuffle(a[2]!, a[3]!, [2, 6, 3, 7]));
        for (let k = 0; k < 4; k++) {
          const lo = t[k >> 1]!, hi = t[2 + (k >> 1)]!;
          f.v128Store(d, () => f.f32x4Shuffle(lo, hi, k & 1 ? [2, 3, 6, 7] : [0, 1, 4, 5]));
          f.inc(d, pixelBytes!);
        }
        f.inc(s, 16).inc(x, 1);
      }, () => f.i32LtS(x, cols4!));
      f.inc(rs, srcRowBytes!).inc(rd, dstRowBytes!).inc(r, 1);
    }, () => f.i32LtS(r, rows!));
    f.inc(gs, srcGroupBytes!).inc(gd, dstGroupBytes!).inc(q, 1);
  }, () => f.i32LtS(q, groups!));
  return f;
}
