/**
 * Generates the memory-bound kernels: leaky ReLU, BatchNorm's per-row sums and affine passes,
 * 2×2 max pooling and ×2 nearest upsampling. Each streams its operands once with f32x4 vectors
 * and finishes ragged ends with scalar code; none branches on data (selects and bit masks), which
 * is what makes them several times faster than the reference loops on random-signed activations.
 *
 * Addresses are byte addresses. "Rows" are runs of `inner` contiguous floats: for NCHW data one
 * row is one (image, channel) plane, so per-channel parameters arrive expanded to one value per
 * row (the JS driver does that), and the kernels never need to know about channels. Float
 * parameters travel as their i32 bit patterns, since command lists are i32 arrays.
 */
import { FnBuilder, T, type Local } from './emitter.ts';

const i32s = (n: number): T[] => Array<T>(n).fill(T.i32);

/**
 * Loops a pointer `p` from `start` over `count` floats: `vec` runs per 4 floats while 4 remain,
 * then `scalar` per float. Both bodies advance nothing themselves; `step` (called with the byte
 * stride, 16 or 4) must advance every pointer they use.
 */
function stream(f: FnBuilder, count: Local<T.i32>, vec: () => void, scalar: () => void, step: (bytes: number) => void): void {
  const left = f.local(T.i32);
  f.set(left, count);
  f.while_(() => f.i32GtS(left, 3), () => { vec(); step(16); f.set(left, () => f.i32Sub(left, 4)); });
  f.while_(() => f.i32GtS(left, 0), () => { scalar(); step(4); f.set(left, () => f.i32Sub(left, 1)); });
}

/** Sum of the four lanes, as (l0 + l1) + (l2 + l3). */
function hsum(f: FnBuilder, v: Local<T.v128>): void {
  f.f32Add(() => f.f32Add(() => f.f32x4ExtractLane(v, 0), () => f.f32x4ExtractLane(v, 1)),
    () => f.f32Add(() => f.f32x4ExtractLane(v, 2), () => f.f32x4ExtractLane(v, 3)));
}

/** leaky(x, y, n, slopeBits): y = x > 0 ? x : x·slope. */
function leaky(): FnBuilder {
  const f = new FnBuilder('leaky', i32s(4));
  const x = f.param(0, T.i32), y = f.param(1, T.i32), n = f.param(2, T.i32), pb = f.param(3, T.i32);
  const p = f.local(T.f32), pv = f.local(T.v128), v = f.local(T.v128), s = f.local(T.f32);
  f.set(p, () => f.f32FromBits(pb));
  f.set(pv, () => f.f32x4Splat(p));
  stream(f, n, () => {
    f.set(v, () => f.v128Load(x));
    f.v128Store(y, () => f.v128Bitselect(v, () => f.f32x4Mul(v, pv), () => f.f32x4Gt(v, () => f.v128Zero())));
  }, () => {
    f.set(s, () => f.f32Load(x));
    f.f32Store(y, () => f.selectF32(s, () => f.f32Mul(s, p), () => f.f32Gt(s, () => f.f32Const(0))));
  }, (b) => { f.inc(x, b); f.inc(y, b); });
  return f;
}

/** leakyGrad(x, gy, gx, n, slopeBits): gx = x > 0 ? gy : gy·slope. */
function leakyGrad(): FnBuilder {
  const f = new FnBuilder('leakyGrad', i32s(5));
  const x = f.param(0, T.i32), gy = f.param(1, T.i32), gx = f.param(2, T.i32), n = f.param(3, T.i32), pb = f.param(4, T.i32);
  const p = f.local(T.f32), pv = f.local(T.v128), g = f.local(T.v128), s = f.local(T.f32);
  f.set(p, () => f.f32FromBits(pb));
  f.set(pv, () => f.f32x4Splat(p));
  stream(f, n, () => {
    f.set(g, () => f.v128Load(gy));
    f.v128Store(gx, () => f.v128Bitselect(g, () => f.f32x4Mul(g, pv), () => f.f32x4Gt(() => f.v128Load(x), () => f.v128Zero())));
  }, () => {
    f.set(s, () => f.f32Load(gy));
    f.f32Store(gx, () => f.selectF32(s, () => f.f32Mul(s, p), () => f.f32Gt(() => f.f32Load(x), () => f.f32Const(0))));
  }, (b) => { f.inc(x, b); f.inc(gy, b); f.inc(gx, b); });
  return f;
}

/**
 * A per-row reduction: rowReduce(a, b, rows, inner, param, out) with out[r] = Σ term(a, b, param[r])
 * over the row. Each row's sum is short (one plane), so float32 lanes lose little; the driver adds
 * rows up per channel in float64.
 */
function rowReduce(name: string, term: (f: FnBuilder, va: () => void, vb: () => void, pv: Local<T.v128>, vector: boolean) => void,
                   second = false): FnBuilder {
  // Params: a, b, rows, inner, param (f32 per row, or 0), out, [out2].
  const f = new FnBuilder(name, i32s(second ? 7 : 6));
  const a = f.param(0, T.i32), b = f.param(1, T.i32), rows = f.param(2, T.i32), inner = f.param(3, T.i32);
  const param = f.param(4, T.i32), out = f.param(5, T.i32), out2 = second ? f.param(6, T.i32) : null;
  const acc = f.local(T.v128), acc2 = f.local(T.v128), pv = f.local(T.v128), s = f.local(T.f32), s2 = f.local(T.f32);
  const r = f.local(T.i32);
  f.set(r, 0);
  f.while_(() => f.i32LtS(r, rows), () => {
    f.set(acc, () => f.v128Zero()).set(acc2, () => f.v128Zero());
    f.set(pv, () => f.f32x4Splat(() => f.f32Load(param)));
    f.set(s, () => f.f32Const(0)).set(s2, () => f.f32Const(0));
    stream(f, inner, () => {
      if (second) {
        // Two sums at once: Σa and Σa·b (BatchNorm's backward).
        f.set(acc, () => f.f32x4Add(acc, () => f.v128Load(a)));
        f.set(acc2, () => f.f32x4Add(acc2, () => f.f32x4Mul(() => f.v128Load(a), () => f.v128Load(b))));
      } else {
        f.set(acc, () => f.f32x4Add(acc, () => term(f, () => f.v128Load(a), () => f.v128Load(b), pv, true)));
      }
    }, () => {
      if (second) {
        f.set(s, () => f.f32Add(s, () => f.f32Load(a)));
        f.set(s2, () => f.f32Add(s2, () => f.f32Mul(() => f.f32Load(a), () => f.f32Load(b))));
      } else {
        f.set(s, () => f.f32Add(s, () => term(f, () => f.f32Load(a), () => f.f32Load(b), pv, false)));
      }
    }, (bytes) => { f.inc(a, bytes); if (second) f.inc(b, bytes); });
    f.f32Store(out, () => f.f32Add(() => hsum(f, acc), s));
    if (out2) { f.f32Store(out2, () => f.f32Add(() => hsum(f, acc2), s2)); f.inc(out2, 4); }
    f.inc(out, 4).inc(param, 4).inc(r, 1);
  });
  return f;
}

/** rowSum(x, _, rows, inner, _, out): out[r] = Σ x over row r. */
const rowSum = (): FnBuilder => rowReduce('rowSum', (f, va) => va());
/** rowSqDev(x, _, rows, inner, mu, out): out[r] = Σ (x − mu[r])². */
const rowSqDev = (): FnBuilder => rowReduce('rowSqDev', (f, va, _vb, pv, vector) => {
  const d = (): void => { if (vector) f.f32x4Sub(va, pv); else f.f32Sub(va, () => f.f32x4ExtractLane(pv, 0)); };
  if (vector) f.f32x4Mul(d, d); else f.f32Mul(d, d);
});
/** rowDot2(gy, xhat, rows, inner, _, sumG, sumGX): Σ gy and Σ gy·xhat per row. */
const rowDot2 = (): FnBuilder => rowReduce('rowDot2', () => undefined, true);

/**
 * rowAffine(x, y, rows, inner, mu, s, xhat, c): per row r, y = ((x − mu[r]) − xhat·c[r])·s[r].
 * With xhat = 0 (address −1 means "none") it is BatchNorm's normalisation; with xhat it is
 * BatchNorm's input gradient, x = gy, mu = mean(gy), c = mean(gy·xhat), s = invStd.
 */
function rowAffine(): FnBuilder {
  const f = new FnBuilder('rowAffine', i32s(8));
  const x = f.param(0, T.i32), y = f.param(1, T.i32), rows = f.param(2, T.i32), inner = f.param(3, T.i32);
  const mu = f.param(4, T.i32), sc = f.param(5, T.i32), xh = f.param(6, T.i32), cc = f.param(7, T.i32);
  const r = f.local(T.i32), muv = f.local(T.v128), sv = f.local(T.v128), cv = f.local(T.v128);
  const m = f.local(T.f32), s = f.local(T.f32), c = f.local(T.f32);
  const withXhat = (): void => { f.i32GtS(xh, -1); };
  f.set(r, 0);
  f.while_(() => f.i32LtS(r, rows), () => {
    f.set(m, () => f.f32Load(mu)).set(s, () => f.f32Load(sc));
    f.set(muv, () => f.f32x4Splat(m)).set(sv, () => f.f32x4Splat(s));
    f.if_(withXhat, () => {
      f.set(c, () => f.f32Load(cc));
      f.set(cv, () => f.f32x4Splat(c));
      stream(f, inner, () => {
        f.v128Store(y, () => f.f32x4Mul(() => f.f32x4Sub(() => f.f32x4Sub(() => f.v128Load(x), muv), () => f.f32x4Mul(() => f.v128Load(xh), cv)), sv));
      }, () => {
        f.f32Store(y, () => f.f32Mul(() => f.f32Sub(() => f.f32Sub(() => f.f32Load(x), m), () => f.f32Mul(() => f.f32Load(xh), c)), s));
      }, (b) => { f.inc(x, b); f.inc(y, b); f.inc(xh, b); });
      f.inc(cc, 4);
    }, () => {
      stream(f, inner, () => {
        f.v128Store(y, () => f.f32x4Mul(() => f.f32x4Sub(() => f.v128Load(x), muv), sv));
      }, () => {
        f.f32Store(y, () => f.f32Mul(() => f.f32Sub(() => f.f32Load(x), m), s));
      }, (b) => { f.inc(x, b); f.inc(y, b); });
    });
    f.inc(mu, 4).inc(sc, 4).inc(r, 1);
  });
  return f;
}

/**
 * maxPool2(x, y, argmax, planes, h, w, idx0): 2×2 / stride-2 pooling (floor mode) of `planes`
 * planes of h×w, argmax holding flat input indices counted from idx0. Candidates are visited in
 * the reference's order (top-left, top-right, bottom-left, bottom-right) and one replaces the best
 * only when greater, so the first maximum wins; a NaN wins once and then stays.
 *
 * leakyMaxPool2(x, y, argmax, planes, h, w, idx0, slopeBits) pools leaky(x) instead: each input is
 * passed through `leaky`'s own expression as it is loaded, so y and argmax are bit for bit those of
 * leaky followed by maxPool2, without writing and re-reading the activation.
 *
 * normLeakyMaxPool2(x, y, argmax, planes, h, w, idx0, slopeBits, mu, s) first normalises each input
 * as rowAffine does without xhat, (x − mu[p])·s[p] per plane p: BatchNorm's normalisation, then
 * leaky, then pooling, none of them stored.
 */
function maxPool2(mode: 'plain' | 'leaky' | 'normLeaky' = 'plain'): FnBuilder {
  const withLeaky = mode !== 'plain', withNorm = mode === 'normLeaky';
  const f = new FnBuilder({ plain: 'maxPool2', leaky: 'leakyMaxPool2', normLeaky: 'normLeakyMaxPool2' }[mode], i32s({ plain: 7, leaky: 8, normLeaky: 10 }[mode]));
  const x = f.param(0, T.i32), y = f.param(1, T.i32), am = f.param(2, T.i32), planes = f.param(3, T.i32);
  const h = f.param(4, T.i32), w = f.param(5, T.i32), idx0 = f.param(6, T.i32);
  const oh = f.local(T.i32), ow = f.local(T.i32), p = f.local(T.i32), oy = f.local(T.i32), ox = f.local(T.i32);
  const row0 = f.local(T.i32), rowIdx = f.local(T.i32), addr = f.local(T.i32);
  const a0 = f.local(T.v128), a1 = f.local(T.v128), best = f.local(T.v128), bi = f.local(T.v128), c = f.local(T.v128), mask = f.local(T.v128);
  const bs = f.local(T.f32), cs = f.local(T.f32), bis = f.local(T.i32), cis = f.local(T.i32), back = f.local(T.i32);
  const slope = f.local(T.f32), slopeV = f.local(T.v128);
  const mu = withNorm ? f.param(8, T.i32) : null, sc = withNorm ? f.param(9, T.i32) : null;
  const m = f.local(T.f32), sf = f.local(T.f32), muV = f.local(T.v128), sV = f.local(T.v128);
  if (withLeaky) {
    f.set(slope, () => f.f32FromBits(f.param(7, T.i32)));
    f.set(slopeV, () => f.f32x4Splat(slope));
  }
  // rowAffine's and leaky's vector and scalar expressions, applied in place to a loaded value.
  const act = (v: Local<T.v128>): void => {
    if (withNorm) f.set(v, () => f.f32x4Mul(() => f.f32x4Sub(v, muV), sV));
    if (withLeaky) f.set(v, () => f.v128Bitselect(v, () => f.f32x4Mul(v, slopeV), () => f.f32x4Gt(v, () => f.v128Zero())));
  };
  const actS = (s: Local<T.f32>): void => {
    if (withNorm) f.set(s, () => f.f32Mul(() => f.f32Sub(s, m), sf));
    if (withLeaky) f.set(s, () => f.selectF32(s, () => f.f32Mul(s, slope), () => f.f32Gt(s, () => f.f32Const(0))));
  };
  f.set(oh, () => f.i32ShrS(h, 1)).set(ow, () => f.i32ShrS(w, 1));
  const take = (cand: () => void, idx: () => void): void => {
    f.set(c, cand);
    f.set(mask, () => f.v128Or(() => f.f32x4Gt(c, best),
      () => f.v128And(() => f.f32x4Ne(c, c), () => f.f32x4Eq(best, best))));
    f.set(best, () => f.v128Bitselect(c, best, mask));
    f.set(bi, () => f.v128Bitselect(idx, bi, mask));
  };
  const takeScalar = (off: number, di: () => void): void => {
    f.set(cs, () => f.f32Load(addr, off));
    actS(cs);
    f.set(cis, di);
    // (c > best) | (c ≠ c & best = best)
    f.if_(() => f.i32Or(() => f.f32Gt(cs, bs), () => f.i32And(() => f.f32Ne(cs, cs), () => f.f32Eq(bs, bs))), () => {
      f.set(bs, cs).set(bis, cis);
    });
  };
  f.set(p, 0);
  f.while_(() => f.i32LtS(p, planes), () => {
    if (mu && sc) {
      f.set(m, () => f.f32Load(() => f.i32Add(mu, () => f.i32Shl(p, 2)))).set(sf, () => f.f32Load(() => f.i32Add(sc, () => f.i32Shl(p, 2))));
      f.set(muV, () => f.f32x4Splat(m)).set(sV, () => f.f32x4Splat(sf));
    }
    f.set(oy, 0);
    f.while_(() => f.i32LtS(oy, oh), () => {
      // Element index (from idx0) and byte address of the window row's first input.
      f.set(rowIdx, () => f.i32Mul(() => f.i32Add(() => f.i32Mul(p, h), () => f.i32Shl(oy, 1)), w));
      f.set(row0, () => f.i32Add(x, () => f.i32Shl(rowIdx, 2)));
      f.inc(rowIdx, idx0);
      f.set(ox, 0);
      const group = (): void => {
        f.set(addr, () => f.i32Add(row0, () => f.i32Shl(ox, 3)));
        const base = (): void => { f.i32x4Add(() => f.i32x4Splat(() => f.i32Add(rowIdx, () => f.i32Shl(ox, 1))), () => f.i32x4Const([0, 2, 4, 6])); };
        const plus = (d: I32Like): (() => void) => () => { f.i32x4Add(base, () => f.i32x4Splat(d)); };
        f.set(a0, () => f.v128Load(addr)).set(a1, () => f.v128Load(addr, 16));
        act(a0); act(a1);
        f.set(best, () => f.f32x4Shuffle(a0, a1, [0, 2, 4, 6]));
        f.set(bi, base);
        take(() => f.f32x4Shuffle(a0, a1, [1, 3, 5, 7]), plus(1));
        f.set(addr, () => f.i32Add(addr, () => f.i32Shl(w, 2)));
        f.set(a0, () => f.v128Load(addr)).set(a1, () => f.v128Load(addr, 16));
        act(a0); act(a1);
        take(() => f.f32x4Shuffle(a0, a1, [0, 2, 4, 6]), plus(w));
        take(() => f.f32x4Shuffle(a0, a1, [1, 3, 5, 7]), plus(() => f.i32Add(w, 1)));
        f.v128Store(y, best);
        f.v128Store(am, bi);
        f.inc(y, 16).inc(am, 16).inc(ox, 4);
      };
      f.while_(() => f.i32LeS(() => f.i32Add(ox, 4), ow), group);
      // A ragged end of a row of at least 4 outputs is one more group, moved back to overlap the
      // previous one: the outputs it computes again get the same bits, and no scalar step is left.
      f.if_(() => f.i32And(() => f.i32LtS(ox, ow), () => f.i32GtS(ow, 3)), () => {
        f.set(back, () => f.i32Shl(() => f.i32Sub(() => f.i32Sub(ow, 4), ox), 2));
        f.inc(y, back).inc(am, back).set(ox, () => f.i32Sub(ow, 4));
        group();
      });
      f.while_(() => f.i32LtS(ox, ow), () => {
        f.set(addr, () => f.i32Add(row0, () => f.i32Shl(ox, 3)));
        f.set(bs, () => f.f32Load(addr));
        actS(bs);
        f.set(bis, () => f.i32Add(rowIdx, () => f.i32Shl(ox, 1)));
        takeScalar(4, () => f.i32Add(bis, 1));
        // Second window row: addresses move down one input row; indices follow from the first's.
        const first = f.local(T.i32);
        f.set(first, () => f.i32Add(rowIdx, () => f.i32Shl(ox, 1)));
        f.set(addr, () => f.i32Add(addr, () => f.i32Shl(w, 2)));
        takeScalar(0, () => f.i32Add(first, w));
        takeScalar(4, () => f.i32Add(() => f.i32Add(first, w), 1));
        f.f32Store(y, bs);
        f.i32Store(am, bis);
        f.inc(y, 4).inc(am, 4).inc(ox, 1);
      });
      f.inc(oy, 1);
    });
    f.inc(p, 1);
  });
  return f;
}
type I32Like = Local<T.i32> | number | (() => void);

/** scatterAdd(gy, idx, gx, n): gx[idx[i]] += gy[i] (max pooling's backward; gx zeroed by the driver). */
function scatterAdd(): FnBuilder {
  const f = new FnBuilder('scatterAdd', i32s(4));
  const gy = f.param(0, T.i32), idx = f.param(1, T.i32), gx = f.param(2, T.i32), n = f.param(3, T.i32);
  const a = f.local(T.i32);
  stream(f, n, () => {
    for (let k = 0; k < 4; k++) {
      f.set(a, () => f.i32Add(gx, () => f.i32Shl(() => f.i32Load(idx, 4 * k), 2)));
      f.f32Store(a, () => f.f32Add(() => f.f32Load(a), () => f.f32Load(gy, 4 * k)));
    }
  }, () => {
    f.set(a, () => f.i32Add(gx, () => f.i32Shl(() => f.i32Load(idx), 2)));
    f.f32Store(a, () => f.f32Add(() => f.f32Load(a), () => f.f32Load(gy)));
  }, (b) => { f.inc(gy, b); f.inc(idx, b); });
  return f;
}

/**
 * leakyMaxPool2Grad(gy, argmax, x, gx, planes, h, w, idx0, slopeBits), h and w even: the input
 * gradient of leakyMaxPool2, written densely. Each window's argmax position gets 0 + gy (as
 * scatterAdd into a zeroed gradient computes it) and its other three positions 0; then every
 * value goes through leakyGrad's expression. So gx is bit for bit what zeroing, scatterAdd and
 * leakyGrad give, in one pass instead of three (and over threads: windows do not overlap).
 */
function leakyMaxPool2Grad(): FnBuilder {
  const f = new FnBuilder('leakyMaxPool2Grad', i32s(9));
  const gy = f.param(0, T.i32), am = f.param(1, T.i32), x = f.param(2, T.i32), gx = f.param(3, T.i32), planes = f.param(4, T.i32);
  const h = f.param(5, T.i32), w = f.param(6, T.i32), idx0 = f.param(7, T.i32), pb = f.param(8, T.i32);
  const oh = f.local(T.i32), ow = f.local(T.i32), p = f.local(T.i32), oy = f.local(T.i32), ox = f.local(T.i32);
  const rel = f.local(T.i32), rowIdx = f.local(T.i32), x0 = f.local(T.i32), g0 = f.local(T.i32), wb = f.local(T.i32);
  const slope = f.local(T.f32), slopeV = f.local(T.v128);
  const g = f.local(T.v128), a = f.local(T.v128), base = f.local(T.v128);
  const tl = f.local(T.v128), tr = f.local(T.v128), bl = f.local(T.v128), br = f.local(T.v128), v = f.local(T.v128);
  const gs = f.local(T.f32), ai = f.local(T.i32), i0 = f.local(T.i32), s = f.local(T.f32), back = f.local(T.i32);
  f.set(slope, () => f.f32FromBits(pb));
  f.set(slopeV, () => f.f32x4Splat(slope));
  f.set(oh, () => f.i32ShrS(h, 1)).set(ow, () => f.i32ShrS(w, 1)).set(wb, () => f.i32Shl(w, 2));
  // gx at `at` = leakyGrad(x at `at`, value), vector and scalar (leakyGrad's expressions).
  const emit = (at: () => void, value: () => void): void => {
    f.set(v, value);
    f.v128Store(() => f.i32Add(g0, at), () => f.v128Bitselect(v, () => f.f32x4Mul(v, slopeV),
      () => f.f32x4Gt(() => f.v128Load(() => f.i32Add(x0, at)), () => f.v128Zero())));
  };
  const emitS = (at: () => void, idx: () => void): void => {
    f.set(s, () => f.selectF32(gs, () => f.f32Const(0), () => f.i32Eq(ai, idx)));
    f.f32Store(() => f.i32Add(g0, at), () => f.selectF32(s, () => f.f32Mul(s, slope),
      () => f.f32Gt(() => f.f32Load(() => f.i32Add(x0, at)), () => f.f32Const(0))));
  };
  f.set(p, 0);
  f.while_(() => f.i32LtS(p, planes), () => {
    f.set(oy, 0);
    f.while_(() => f.i32LtS(oy, oh), () => {
      // Element offset of the window row's first input within this call's planes.
      f.set(rel, () => f.i32Mul(() => f.i32Add(() => f.i32Mul(p, h), () => f.i32Shl(oy, 1)), w));
      f.set(x0, () => f.i32Add(x, () => f.i32Shl(rel, 2)));
      f.set(g0, () => f.i32Add(gx, () => f.i32Shl(rel, 2)));
      f.set(rowIdx, () => f.i32Add(rel, idx0));
      f.set(ox, 0);
      const group = (): void => {
        f.set(g, () => f.f32x4Add(() => f.v128Zero(), () => f.v128Load(gy)));
        f.set(a, () => f.v128Load(am));
        f.set(base, () => f.i32x4Add(() => f.i32x4Splat(() => f.i32Add(rowIdx, () => f.i32Shl(ox, 1))), () => f.i32x4Const([0, 2, 4, 6])));
        f.set(tl, () => f.v128And(g, () => f.i32x4Eq(a, base)));
        f.set(tr, () => f.v128And(g, () => f.i32x4Eq(a, () => f.i32x4Add(base, () => f.i32x4Splat(1)))));
        f.set(bl, () => f.v128And(g, () => f.i32x4Eq(a, () => f.i32x4Add(base, () => f.i32x4Splat(w)))));
        f.set(br, () => f.v128And(g, () => f.i32x4Eq(a, () => f.i32x4Add(base, () => f.i32x4Splat(() => f.i32Add(w, 1))))));
        emit(() => f.i32Const(0), () => f.f32x4Shuffle(tl, tr, [0, 4, 1, 5]));
        emit(() => f.i32Const(16), () => f.f32x4Shuffle(tl, tr, [2, 6, 3, 7]));
        emit(() => f.get(wb), () => f.f32x4Shuffle(bl, br, [0, 4, 1, 5]));
        emit(() => f.i32Add(wb, 16), () => f.f32x4Shuffle(bl, br, [2, 6, 3, 7]));
        f.inc(x0, 32).inc(g0, 32).inc(gy, 16).inc(am, 16).inc(ox, 4);
      };
      f.while_(() => f.i32LeS(() => f.i32Add(ox, 4), ow), group);
      // A ragged row end as in maxPool2: one more group overlapping the previous, rewriting the same values.
      f.if_(() => f.i32And(() => f.i32LtS(ox, ow), () => f.i32GtS(ow, 3)), () => {
        f.set(back, () => f.i32Shl(() => f.i32Sub(() => f.i32Sub(ow, 4), ox), 2));
        f.inc(gy, back).inc(am, back).inc(x0, () => f.i32Shl(back, 1)).inc(g0, () => f.i32Shl(back, 1)).set(ox, () => f.i32Sub(ow, 4));
        group();
      });
      f.while_(() => f.i32LtS(ox, ow), () => {
        f.set(gs, () => f.f32Add(() => f.f32Const(0), () => f.f32Load(gy)));
        f.set(ai, () => f.i32Load(am));
        f.set(i0, () => f.i32Add(rowIdx, () => f.i32Shl(ox, 1)));
        emitS(() => f.i32Const(0), () => f.get(i0));
        emitS(() => f.i32Const(4), () => f.i32Add(i0, 1));
        emitS(() => f.get(wb), () => f.i32Add(i0, w));
        emitS(() => f.i32Add(wb, 4), () => f.i32Add(() => f.i32Add(i0, w), 1));
        f.inc(x0, 8).inc(g0, 8).inc(gy, 4).inc(am, 4).inc(ox, 1);
      });
      f.inc(oy, 1);
    });
    f.inc(p, 1);
  });
  return f;
}

/** upsample2(x, y, rows, w): each input row of w floats becomes two output rows of 2w (each value twice). */
function upsample2(): FnBuilder {
  const f = new FnBuilder('upsample2', i32s(4));
  const x = f.param(0, T.i32), y = f.param(1, T.i32), rows = f.param(2, T.i32), w = f.param(3, T.i32);
  const r = f.local(T.i32), y2 = f.local(T.i32), v = f.local(T.v128), s = f.local(T.f32), rowBytes = f.local(T.i32);
  f.set(rowBytes, () => f.i32Shl(w, 3));
  f.set(r, 0);
  f.while_(() => f.i32LtS(r, rows), () => {
    f.set(y2, () => f.i32Add(y, rowBytes));
    stream(f, w, () => {
      f.set(v, () => f.v128Load(x));
      for (const dst of [y, y2]) {
        f.v128Store(dst, () => f.f32x4Shuffle(v, v, [0, 0, 1, 1]));
        f.v128Store(dst, () => f.f32x4Shuffle(v, v, [2, 2, 3, 3]), 16);
      }
    }, () => {
      f.set(s, () => f.f32Load(x));
      for (const dst of [y, y2]) { f.f32Store(dst, s); f.f32Store(dst, s, 4); }
    }, (b) => { f.inc(x, b); f.inc(y, 2 * b); f.inc(y2, 2 * b); });
    f.set(y, y2);
    f.inc(r, 1);
  });
  return f;
}

/** upsample2Grad(gy, gx, rows, w): gx[r, i] = sum of the 2×2 block of gy it was copied to. */
function upsample2Grad(): FnBuilder {
  const f = new FnBuilder('upsample2Grad', i32s(4));
  const gy = f.param(0, T.i32), gx = f.param(1, T.i32), rows = f.param(2, T.i32), w = f.param(3, T.i32);
  const r = f.local(T.i32), g2 = f.local(T.i32), lo = f.local(T.v128), hi = f.local(T.v128), rowBytes = f.local(T.i32);
  f.set(rowBytes, () => f.i32Shl(w, 3));
  f.set(r, 0);
  f.while_(() => f.i32LtS(r, rows), () => {
    f.set(g2, () => f.i32Add(gy, rowBytes));
    stream(f, w, () => {
      // Columns 0..7 of both rows, summed vertically, then even + odd lanes summed horizontally.
      f.set(lo, () => f.f32x4Add(() => f.v128Load(gy), () => f.v128Load(g2)));
      f.set(hi, () => f.f32x4Add(() => f.v128Load(gy, 16), () => f.v128Load(g2, 16)));
      f.v128Store(gx, () => f.f32x4Add(() => f.f32x4Shuffle(lo, hi, [0, 2, 4, 6]), () => f.f32x4Shuffle(lo, hi, [1, 3, 5, 7])));
    }, () => {
      f.f32Store(gx, () => f.f32Add(() => f.f32Add(() => f.f32Load(gy), () => f.f32Load(g2)),
        () => f.f32Add(() => f.f32Load(gy, 4), () => f.f32Load(g2, 4))));
    }, (b) => { f.inc(gx, b); f.inc(gy, 2 * b); f.inc(g2, 2 * b); });
    f.set(gy, g2);
    f.inc(r, 1);
  });
  return f;
}

/**
 * Loops `groups` times over 4-float vectors, advancing each pointer in `ptrs` by 16 bytes. The
 * exp-based kernels below have no scalar tail: their driver pads operands to a multiple of 4
 * floats in the arena and copies back only the real ones.
 */
function vecLoop(f: FnBuilder, groups: Local<T.i32>, ptrs: Local<T.i32>[], body: () => void): void {
  const left = f.local(T.i32);
  f.set(left, groups);
  f.while_(() => f.i32GtS(left, 0), () => {
    body();
    for (const p of ptrs) f.inc(p, 16);
    f.set(left, () => f.i32Sub(left, 1));
  });
}

/**
 * expm1 of four lanes t ∈ [−87, 0] (callers clamp), in two parts: t = n·ln2 + r with |r| ≤ ln2/2,
 * `scale` = 2ⁿ (built from exponent bits) and `em1` = expm1(r) by its Taylor series to r⁷
 * (truncation < 2e-8 relative). Then eᵗ = scale·em1 + scale and expm1(t) = scale·em1 + (scale − 1);
 * for n = 0 the latter is em1 itself, so small arguments keep full relative accuracy. ln2 is split
 * in two (Cody–Waite) so n·ln2hi is exact.
 */
function expParts(f: FnBuilder, t: Local<T.v128>, scale: Local<T.v128>, em1: Local<T.v128>): void {
  const c = (v: number) => (): void => { f.f32x4Splat(() => f.f32Const(v)); };
  const n = f.local(T.v128), r = f.local(T.v128);
  f.set(n, () => f.f32x4Nearest(() => f.f32x4Mul(t, c(Math.LOG2E))));
  f.set(r, () => f.f32x4Sub(() => f.f32x4Sub(t, () => f.f32x4Mul(n, c(0.693359375))), () => f.f32x4Mul(n, c(-2.12194440e-4))));
  f.set(scale, () => f.i32x4Shl(() => f.i32x4Add(() => f.i32x4TruncSatF32x4S(n), () => f.i32x4Const([127, 127, 127, 127])), 23));
  // em1 = r + r²·(1/2 + r·(1/6 + r·(1/24 + r·(1/120 + r·(1/720 + r/5040)))))
  let poly: () => void = c(1 / 5040);
  for (const k of [1 / 720, 1 / 120, 1 / 24, 1 / 6, 1 / 2]) {
    const inner = poly;
    poly = () => { f.f32x4Add(c(k), () => f.f32x4Mul(r, inner)); };
  }
  f.set(em1, () => f.f32x4Add(r, () => f.f32x4Mul(() => f.f32x4Mul(r, r), poly)));
}

/**
 * sigmoid(x, y, groups): y = 1/(1 + e^−x) for x ≥ 0, e^x/(1 + e^x) otherwise (the reference's
 * split), both from e = e^−|x|, so exp never overflows.
 */
function sigmoid(): FnBuilder {
  const f = new FnBuilder('sigmoid', i32s(3));
  const x = f.param(0, T.i32), y = f.param(1, T.i32), groups = f.param(2, T.i32);
  const v = f.local(T.v128), t = f.local(T.v128), scale = f.local(T.v128), em1 = f.local(T.v128), e = f.local(T.v128), d = f.local(T.v128);
  vecLoop(f, groups, [x, y], () => {
    f.set(v, () => f.v128Load(x));
    // t = max(−|x|, −87) = max(min(x, −x), −87)
    f.set(t, () => f.f32x4Max(() => f.f32x4Min(v, () => f.f32x4Sub(() => f.v128Zero(), v)), () => f.f32x4Splat(() => f.f32Const(-87))));
    expParts(f, t, scale, em1);
    f.set(e, () => f.f32x4Add(() => f.f32x4Mul(scale, em1), scale));
    f.set(d, () => f.f32x4Add(() => f.f32x4Splat(() => f.f32Const(1)), e));
    f.v128Store(y, () => f.v128Bitselect(() => f.f32x4Div(() => f.f32x4Splat(() => f.f32Const(1)), d), () => f.f32x4Div(e, d),
      () => f.f32x4Ge(v, () => f.v128Zero())));
  });
  return f;
}

/** sigmoidGrad(y, gy, gx, groups): gx = gy·y·(1 − y). */
function sigmoidGrad(): FnBuilder {
  const f = new FnBuilder('sigmoidGrad', i32s(4));
  const y = f.param(0, T.i32), gy = f.param(1, T.i32), gx = f.param(2, T.i32), groups = f.param(3, T.i32);
  const s = f.local(T.v128);
  vecLoop(f, groups, [y, gy, gx], () => {
    f.set(s, () => f.v128Load(y));
    f.v128Store(gx, () => f.f32x4Mul(() => f.f32x4Mul(() => f.v128Load(gy), s), () => f.f32x4Sub(() => f.f32x4Splat(() => f.f32Const(1)), s)));
  });
  return f;
}

/** elu(x, y, groups, alphaBits): y = x > 0 ? x : α·expm1(x). */
function elu(): FnBuilder {
  const f = new FnBuilder('elu', i32s(4));
  const x = f.param(0, T.i32), y = f.param(1, T.i32), groups = f.param(2, T.i32), ab = f.param(3, T.i32);
  const v = f.local(T.v128), t = f.local(T.v128), scale = f.local(T.v128), em1 = f.local(T.v128), av = f.local(T.v128);
  f.set(av, () => f.f32x4Splat(() => f.f32FromBits(ab)));
  vecLoop(f, groups, [x, y], () => {
    f.set(v, () => f.v128Load(x));
    f.set(t, () => f.f32x4Max(() => f.f32x4Min(v, () => f.v128Zero()), () => f.f32x4Splat(() => f.f32Const(-87))));
    expParts(f, t, scale, em1);
    const expm1 = (): void => { f.f32x4Add(() => f.f32x4Mul(scale, em1), () => f.f32x4Sub(scale, () => f.f32x4Splat(() => f.f32Const(1)))); };
    f.v128Store(y, () => f.v128Bitselect(v, () => f.f32x4Mul(av, expm1), () => f.f32x4Gt(v, () => f.v128Zero())));
  });
  return f;
}

/** eluGrad(x, y, gy, gx, groups, alphaBits): gx = x > 0 ? gy : gy·(y + α). */
function eluGrad(): FnBuilder {
  const f = new FnBuilder('eluGrad', i32s(6));
  const x = f.param(0, T.i32), y = f.param(1, T.i32), gy = f.param(2, T.i32), gx = f.param(3, T.i32);
  const groups = f.param(4, T.i32), ab = f.param(5, T.i32);
  const g = f.local(T.v128), av = f.local(T.v128);
  f.set(av, () => f.f32x4Splat(() => f.f32FromBits(ab)));
  vecLoop(f, groups, [x, y, gy, gx], () => {
    f.set(g, () => f.v128Load(gy));
    f.v128Store(gx, () => f.v128Bitselect(g, () => f.f32x4Mul(g, () => f.f32x4Add(() => f.v128Load(y), av)),
      () => f.f32x4Gt(() => f.v128Load(x), () => f.v128Zero())));
  });
  return f;
}

export const POINTWISE_FNS = {
  sigmoid, sigmoidGrad, elu, eluGrad,
  leaky, leakyGrad, rowSum, rowSqDev, rowDot2, rowAffine, maxPool2: () => maxPool2(), scatterAdd, upsample2, upsample2Grad,
  leakyMaxPool2: () => maxPool2('leaky'), leakyMaxPool2Grad, normLeakyMaxPool2: () => maxPool2('normLeaky'),
} as const;

/**
 * dotNT(a, aTab, m, b, bTab, n, len, c, acc): C[i, j] (+)= Σ_{q < len} A[i][q] · B[j][q], where row
 * i of A starts at a + aTab[i] and row j of B at b + bTab[j] (byte offsets), C is m×n row-major.
 * m must be a multiple of 4, n of 2 and len of 4. Vectors run along the reduction, so nothing is
 * packed: convolution weight gradients with few channels use it on shifted rows of the padded
 * input (see conv2dGradWeightDirect), where packing used to cost more than the arithmetic.
 */
export function dotNT(relaxed: boolean): FnBuilder {
  const f = new FnBuilder('dotNT', i32s(9));
  const a = f.param(0, T.i32), aTab = f.param(1, T.i32), m = f.param(2, T.i32), b = f.param(3, T.i32), bTab = f.param(4, T.i32);
  const n = f.param(5, T.i32), len = f.param(6, T.i32), c = f.param(7, T.i32), acc = f.param(8, T.i32);
  const i0 = f.local(T.i32), j0 = f.local(T.i32), q = f.local(T.i32), end = f.local(T.i32), out = f.local(T.i32);
  const ar = [f.local(T.i32), f.local(T.i32), f.local(T.i32), f.local(T.i32)];
  const br = [f.local(T.i32), f.local(T.i32)];
  const va = f.local(T.v128), vb = [f.local(T.v128), f.local(T.v128)];
  const accs: Local<T.v128>[] = [];
  for (let k = 0; k < 8; k++) accs.push(f.local(T.v128));
  f.set(end, () => f.i32Shl(len, 2));
  f.set(i0, 0);
  f.while_(() => f.i32LtS(i0, m), () => {
    for (let r = 0; r < 4; r++) f.set(ar[r]!, () => f.i32Add(a, () => f.i32Load(() => f.i32Add(aTab, () => f.i32Shl(i0, 2)), r * 4)));
    f.set(j0, 0);
    f.while_(() => f.i32LtS(j0, n), () => {
      for (let s = 0; s < 2; s++) f.set(br[s]!, () => f.i32Add(b, () => f.i32Load(() => f.i32Add(bTab, () => f.i32Shl(j0, 2)), s * 4)));
      for (const v of accs) f.set(v, () => f.v128Zero());
      f.set(q, 0);
      f.doWhile(() => {
        f.set(vb[0]!, () => f.v128Load(() => f.i32Add(br[0]!, q)));
        f.set(vb[1]!, () => f.v128Load(() => f.i32Add(br[1]!, q)));
        for (let r = 0; r < 4; r++) {
          f.set(va, () => f.v128Load(() => f.i32Add(ar[r]!, q)));
          for (let s = 0; s < 2; s++) f.set(accs[2 * r + s]!, () => f.f32x4Madd(va, vb[s]!, accs[2 * r + s]!, relaxed));
        }
        f.inc(q, 16);
      }, () => f.i32LtS(q, end));
      for (let r = 0; r < 4; r++) {
        for (let s = 0; s < 2; s++) {
          // out = c + ((i0 + r)·n + j0 + s)·4
          f.set(out, () => f.i32Add(c, () => f.i32Shl(() => f.i32Add(() => f.i32Mul(() => f.i32Add(i0, r), n), () => f.i32Add(j0, s)), 2)));
          f.f32Store(out, () => f.f32Add(() => hsum(f, accs[2 * r + s]!),
            () => f.selectF32(() => f.f32Load(out), () => f.f32Const(0), acc)));
        }
      }
      f.inc(j0, 2);
    });
    f.inc(i0, 4);
  });
  return f;
}
