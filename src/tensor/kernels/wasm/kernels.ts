/**
 * Generates the wasm kernels. The design follows the GotoBLAS/BLIS split: operands are first
 * gathered into small packed panels (which is also where im2col happens, so a convolution never
 * materialises its unpacked column matrix), then a register-tiled micro-kernel streams the panels.
 *
 * All addresses and strides are in bytes. Every function assumes its loop counts are ≥ 1; the
 * JS drivers guarantee that, which lets every loop be a cheap do-while.
 */
import { buildModule, FnBuilder, T, type I32, type Local } from './emitter.ts';
import { POINTWISE_FNS, dotNT } from './pointwise.ts';
import { F4X5, interleave4, wgGradOutT, wgInput, wgInput4, wgInputT, wgOutput, wgOutput4, wgWeights, wgWeightsT } from './winograd.ts';

/** Micro-tile: MR rows of A (broadcast) by NR columns of B (two f32x4 vectors). */
export const MR = 4;
export const NR = 8;

/** Export names, in the order the worker command encoding numbers them, with their arities. */
export const FN = {
  pack4: { id: 0, arity: 6 },
  pack8: { id: 1, arity: 6 },
  kernel: { id: 2, arity: 8 },
  copy2d: { id: 3, arity: 9 },
  zero: { id: 4, arity: 2 },
  addInto: { id: 5, arity: 3 },
  kernel1: { id: 6, arity: 7 },
  // Memory-bound kernels (pointwise.ts).
  leaky: { id: 7, arity: 4 },
  leakyGrad: { id: 8, arity: 5 },
  rowSum: { id: 9, arity: 6 },
  rowSqDev: { id: 10, arity: 6 },
  rowDot2: { id: 11, arity: 7 },
  rowAffine: { id: 12, arity: 8 },
  maxPool2: { id: 13, arity: 7 },
  scatterAdd: { id: 14, arity: 4 },
  upsample2: { id: 15, arity: 4 },
  upsample2Grad: { id: 16, arity: 4 },
  dotNT: { id: 17, arity: 9 },
  kernelDirect: { id: 18, arity: 9 },
  sigmoid: { id: 19, arity: 3 },
  sigmoidGrad: { id: 20, arity: 4 },
  elu: { id: 21, arity: 4 },
  eluGrad: { id: 22, arity: 6 },
  // Winograd F(2×2, 5×5) transforms (winograd.ts).
  wgWeights: { id: 23, arity: 4 },
  wgInput: { id: 24, arity: 9 },
  wgOutput: { id: 25, arity: 9 },
  // Its weight gradient's transforms (winograd.ts).
  wgInputT: { id: 26, arity: 9 },
  wgGradOutT: { id: 27, arity: 9 },
  wgWeightsT: { id: 28, arity: 4 },
  interleave4: { id: 29, arity: 11 },
  // Leaky ReLU fused with 2×2 max pooling (pointwise.ts).
  leakyMaxPool2: { id: 30, arity: 8 },
  leakyMaxPool2Grad: { id: 31, arity: 9 },
  // Zero padding and copy in one pass (above).
  padCopy: { id: 32, arity: 10 },
  // Eval-mode BatchNorm normalisation, leaky ReLU and 2×2 max pooling fused (pointwise.ts).
  normLeakyMaxPool2: { id: 33, arity: 10 },
  // Winograd F(4×4, 5×5) forward transforms (winograd.ts; SVDD_WINOGRAD_TILE=4).
  wgWeights4: { id: 34, arity: 4 },
  wgInput4: { id: 35, arity: 9 },
  wgOutput4: { id: 36, arity: 9 },
  // Its weight gradient's transforms (winograd.ts, generated for F4X5).
  wgInputT4: { id: 37, arity: 9 },
  wgGradOutT4: { id: 38, arity: 9 },
  wgWeightsT4: { id: 39, arity: 4 },
  // The micro-kernel with row panels as its outer loop (same arguments and results as kernel).
  kernelRows: { id: 40, arity: 8 },
  // Runs a whole command list inside wasm (must stay last: it calls every function above).
  execList: { id: 41, arity: 2 },
} as const;
export type FnName = keyof typeof FN;
export const FN_NAMES = Object.keys(FN) as FnName[];

const i32s = (n: number): T[] => Array<T>(n).fill(T.i32);

/**
 * execList(ptr, end): runs the command list [fnId, ...args]* stored in memory from ptr to end, each
 * command a direct call. Calling wasm from JavaScript costs about a microsecond per call through
 * V8's wrappers, and a plan can hold thousands of small commands (one per image), so a list is
 * run with one call instead of one per command. A function's id is its index in the module.
 */
function execList(): FnBuilder {
  const f = new FnBuilder('execList', i32s(2));
  const p = f.param(0, T.i32), end = f.param(1, T.i32), id = f.local(T.i32);
  f.while_(() => f.i32LtS(p, end), () => {
    f.set(id, () => f.i32Load(p));
    for (const name of FN_NAMES) {
      if (name === 'execList') continue;
      const { id: k, arity } = FN[name];
      f.if_(() => f.i32Eq(id, k), () => {
        f.call(k, Array.from({ length: arity }, (_, j) => () => { f.i32Load(p, 4 * (j + 1)); }));
        f.inc(p, 4 * (1 + arity));
      });
    }
  });
  return f;
}

/**
 * pack{L}(dst, src, colTab, rowTab, ncols, nrows): for each panel of L columns,
 *   dst[panel][p][lane] = f32 at src + colTab[panel·L + lane] + rowTab[p]   (0 past ncols).
 * Both tables hold byte offsets and must be strictly increasing; then a panel whose first and
 * last offsets are (L−1)·4 apart is contiguous and is copied with vector loads. That covers plain
 * row-major operands and stride-1 im2col rows; everything else takes the scalar gather.
 */
function pack(L: 4 | 8): FnBuilder {
  const f = new FnBuilder(L === 4 ? 'pack4' : 'pack8', i32s(6));
  const dst = f.param(0, T.i32), src = f.param(1, T.i32), colTab = f.param(2, T.i32);
  const rowTab = f.param(3, T.i32), ncols = f.param(4, T.i32), nrows = f.param(5, T.i32);
  const j0 = f.local(T.i32), nvalid = f.local(T.i32), ct = f.local(T.i32);
  const rp = f.local(T.i32), rend = f.local(T.i32), r = f.local(T.i32);
  const c: Local<T.i32>[] = [];
  for (let i = 0; i < L; i++) c.push(f.local(T.i32));

  const rowLoop = (body: () => void): void => {
    f.set(rp, rowTab);
    f.set(rend, () => f.i32Add(rowTab, () => f.i32Shl(nrows, 2)));
    f.doWhile(() => {
      f.set(r, () => f.i32Load(rp));
      body();
      f.inc(dst, L * 4);
      f.inc(rp, 4);
    }, () => f.i32LtS(rp, rend));
  };
  const elem = (lane: number): I32 => () => f.i32Add(c[lane]!, r);

  f.set(j0, 0);
  f.doWhile(() => {
    f.set(nvalid, () => f.i32Sub(ncols, j0));
    f.set(nvalid, () => f.selectI32(L, nvalid, () => f.i32GtS(nvalid, L)));
    f.set(ct, () => f.i32Add(colTab, () => f.i32Shl(j0, 2)));
    // Lanes past the end reuse lane 0's address so every later load stays in bounds.
    for (let lane = 0; lane < L; lane++) {
      f.set(c[lane]!, () => f.i32Add(src, () => f.i32Load(
        () => f.i32Add(ct, () => f.selectI32(lane * 4, 0, () => f.i32LtS(lane, nvalid))))));
    }
    f.if_(() => f.i32Eq(nvalid, L), () => {
      f.if_(() => f.i32Eq(() => f.i32Sub(c[L - 1]!, c[0]!), (L - 1) * 4), () => {
        rowLoop(() => {
          f.v128Store(dst, () => f.v128Load(elem(0)));
          if (L === 8) f.v128Store(dst, () => f.v128Load(elem(0), 16), 16);
        });
      }, () => {
        rowLoop(() => { for (let lane = 0; lane < L; lane++) f.f32Store(dst, () => f.f32Load(elem(lane)), lane * 4); });
      });
    }, () => {
      rowLoop(() => {
        for (let lane = 0; lane < L; lane++) {
          f.f32Store(dst, () => f.selectF32(() => f.f32Load(elem(lane)), () => f.f32Const(0), () => f.i32LtS(lane, nvalid)), lane * 4);
        }
      });
    });
    f.inc(j0, L);
  }, () => f.i32LtS(j0, ncols));
  return f;
}

/**
 * kernel(ap, bp, c, m, n, kc, ldc, acc): C[m,n] (+)= Apacked · Bpacked with C row-major, row
 * stride ldc floats. Column panels are the outer loop so one B panel (kc·32 bytes) stays in L1
 * while every A panel streams past it; 8 f32x4 accumulators hold the 4×8 tile in registers.
 * kernelRows (rowsOuter) is the same with row panels outer: one A panel (kc·16 bytes) stays in L1
 * while the B panels stream; every tile is computed the same way, so the results are identical.
 */
function microKernel(relaxed: boolean, direct = false, rowsOuter = false): FnBuilder {
  const f = new FnBuilder(direct ? 'kernelDirect' : rowsOuter ? 'kernelRows' : 'kernel', i32s(direct ? 9 : 8));
  const ap = f.param(0, T.i32), bp = f.param(1, T.i32), c = f.param(2, T.i32), m = f.param(3, T.i32);
  const n = f.param(4, T.i32), kc = f.param(5, T.i32), ldc = f.param(6, T.i32), acc = f.param(7, T.i32);
  // kernelDirect: B is not packed; row p of B starts at bp + bTab[p] (bytes), columns contiguous.
  const bTab = direct ? f.param(8, T.i32) : null;
  const pt = f.local(T.i32), baddr = f.local(T.i32);
  const ldcb = f.local(T.i32), panA = f.local(T.i32), panB = f.local(T.i32);
  const i0 = f.local(T.i32), j0 = f.local(T.i32), apan = f.local(T.i32), bpan = f.local(T.i32);
  const pa = f.local(T.i32), pb = f.local(T.i32), pend = f.local(T.i32), addr = f.local(T.i32);
  const b0 = f.local(T.v128), b1 = f.local(T.v128), a = f.local(T.v128);
  const accs: Local<T.v128>[] = [];
  for (let i = 0; i < 2 * MR; i++) accs.push(f.local(T.v128));

  f.set(ldcb, () => f.i32Shl(ldc, 2));
  f.set(panA, () => f.i32Shl(kc, 4));
  f.set(panB, () => f.i32Shl(kc, 5));
  // The two panel loops, outer first: column panels (j0, bpan) then row panels (i0, apan), or the reverse.
  const cols = { index: j0, panel: bpan, base: bp, step: NR, panelBytes: panB, end: n };
  const rows = { index: i0, panel: apan, base: ap, step: MR, panelBytes: panA, end: m };
  const loops = rowsOuter ? [rows, cols] : [cols, rows];
  const panelLoops = (body: () => void, level = 0): void => {
    const l = loops[level]!;
    f.set(l.index, 0).set(l.panel, l.base);
    f.doWhile(() => {
      if (level === 0) panelLoops(body, 1); else body();
      f.inc(l.index, l.step);
      f.inc(l.panel, l.panelBytes);
    }, () => f.i32LtS(l.index, l.end));
  };
  panelLoops(() => {
    for (const v of accs) f.set(v, () => f.v128Zero());
    f.set(pa, apan).set(pb, bpan);
    f.set(pend, () => f.i32Add(bpan, panB));
    if (bTab) f.set(pt, bTab);
    f.doWhile(() => {
      if (bTab) {
        f.set(baddr, () => f.i32Add(() => f.i32Add(bp, () => f.i32Shl(j0, 2)), () => f.i32Load(pt)));
        f.set(b0, () => f.v128Load(baddr));
        f.set(b1, () => f.v128Load(baddr, 16));
        f.inc(pt, 4);
      } else {
        f.set(b0, () => f.v128Load(pb));
        f.set(b1, () => f.v128Load(pb, 16));
      }
      for (let r = 0; r < MR; r++) {
        f.set(a, () => f.v128Load32Splat(pa, r * 4));
        f.set(accs[2 * r]!, () => f.f32x4Madd(a, b0, accs[2 * r]!, relaxed));
        f.set(accs[2 * r + 1]!, () => f.f32x4Madd(a, b1, accs[2 * r + 1]!, relaxed));
      }
      f.inc(pa, MR * 4);
      f.inc(pb, NR * 4);
    }, () => f.i32LtS(pb, pend));

    f.set(addr, () => f.i32Add(() => f.i32Add(c, () => f.i32Mul(i0, ldcb)), () => f.i32Shl(j0, 2)));
    const fullTile = (): void => { f.i32And(() => f.i32LeS(() => f.i32Add(i0, MR), m), () => f.i32LeS(() => f.i32Add(j0, NR), n)); };
    f.if_(fullTile, () => {
      f.if_(acc, () => {
        for (let r = 0; r < MR; r++) {
          if (r > 0) f.inc(addr, ldcb);
          f.v128Store(addr, () => f.f32x4Add(() => f.v128Load(addr), accs[2 * r]!));
          f.v128Store(addr, () => f.f32x4Add(() => f.v128Load(addr, 16), accs[2 * r + 1]!), 16);
        }
      }, () => {
        for (let r = 0; r < MR; r++) {
          if (r > 0) f.inc(addr, ldcb);
          f.v128Store(addr, accs[2 * r]!);
          f.v128Store(addr, accs[2 * r + 1]!, 16);
        }
      });
    }, () => {
      // Ragged edge: store lane by lane, only inside C.
      for (let r = 0; r < MR; r++) {
        if (r > 0) f.inc(addr, ldcb);
        f.if_(() => f.i32LtS(() => f.i32Add(i0, r), m), () => {
          for (let jj = 0; jj < NR; jj++) {
            const v = accs[2 * r + (jj >> 2)]!;
            f.if_(() => f.i32LtS(() => f.i32Add(j0, jj), n), () => {
              f.f32Store(addr, () => f.selectF32(
                () => f.f32Add(() => f.f32x4ExtractLane(v, jj & 3), () => f.f32Load(addr, jj * 4)),
                () => f.f32x4ExtractLane(v, jj & 3), acc), jj * 4);
            });
          }
        });
      }
    });
  });
  return f;
}

/**
 * kernel1(ap, bp, c, n, kc, ldc, acc): one row (ldc unused, kept so both kernels read alike) of C (+)= one row of a packed A panel (stride 16
 * bytes per step) times packed B. For C with 1–2 rows (single-channel conv outputs) the 4×8 tile
 * would waste most of its FMAs; here four B panels are streamed at once so that 8 independent
 * accumulator chains still hide the FMA latency.
 */
function rowKernel(relaxed: boolean): FnBuilder {
  const f = new FnBuilder('kernel1', i32s(7));
  const ap = f.param(0, T.i32), bp = f.param(1, T.i32), c = f.param(2, T.i32), n = f.param(3, T.i32);
  const kc = f.param(4, T.i32), acc = f.param(6, T.i32);
  const panB = f.local(T.i32), j0 = f.local(T.i32), bpan = f.local(T.i32), pa = f.local(T.i32);
  const pend = f.local(T.i32), addr = f.local(T.i32), a = f.local(T.v128);
  const q: Local<T.i32>[] = [f.local(T.i32), f.local(T.i32), f.local(T.i32), f.local(T.i32)];
  const accs: Local<T.v128>[] = [];
  for (let i = 0; i < 8; i++) accs.push(f.local(T.v128));

  const tile = (groups: number): void => {
    for (let i = 0; i < 2 * groups; i++) f.set(accs[i]!, () => f.v128Zero());
    f.set(pa, ap);
    for (let g = 0; g < groups; g++) f.set(q[g]!, () => f.i32Add(bpan, () => f.i32Mul(panB, g)));
    f.set(pend, () => f.i32Add(bpan, panB));
    f.doWhile(() => {
      f.set(a, () => f.v128Load32Splat(pa));
      for (let g = 0; g < groups; g++) {
        f.set(accs[2 * g]!, () => f.f32x4Madd(a, () => f.v128Load(q[g]!), accs[2 * g]!, relaxed));
        f.set(accs[2 * g + 1]!, () => f.f32x4Madd(a, () => f.v128Load(q[g]!, 16), accs[2 * g + 1]!, relaxed));
        f.inc(q[g]!, NR * 4);
      }
      f.inc(pa, MR * 4);
    }, () => f.i32LtS(q[0]!, pend));
    f.set(addr, () => f.i32Add(c, () => f.i32Shl(j0, 2)));
  };

  f.set(panB, () => f.i32Shl(kc, 5));
  f.set(j0, 0).set(bpan, bp);
  f.while_(() => f.i32LeS(() => f.i32Add(j0, 4 * NR), n), () => {
    tile(4);
    f.if_(acc, () => {
      for (let i = 0; i < 8; i++) f.v128Store(addr, () => f.f32x4Add(accs[i]!, () => f.v128Load(addr, i * 16)), i * 16);
    }, () => {
      for (let i = 0; i < 8; i++) f.v128Store(addr, accs[i]!, i * 16);
    });
    f.inc(j0, 4 * NR);
    f.inc(bpan, () => f.i32Shl(panB, 2));
  });
  f.while_(() => f.i32LtS(j0, n), () => {
    tile(1);
    for (let jj = 0; jj < NR; jj++) {
      const v = accs[jj >> 2]!;
      f.if_(() => f.i32LtS(() => f.i32Add(j0, jj), n), () => {
        f.f32Store(addr, () => f.selectF32(
          () => f.f32Add(() => f.f32x4ExtractLane(v, jj & 3), () => f.f32Load(addr, jj * 4)),
          () => f.f32x4ExtractLane(v, jj & 3), acc), jj * 4);
      });
    }
    f.inc(j0, NR);
    f.inc(bpan, panB);
  });
  return f;
}

/** copy2d(dst, src, n1, n2, len, dS1, dS2, sS1, sS2): n1·n2 copies of len bytes (pads, scatters). */
function copy2d(): FnBuilder {
  const f = new FnBuilder('copy2d', i32s(9));
  const [dst, src, n1, n2, len, dS1, dS2, sS1, sS2] = f.params as Local<T.i32>[];
  const i = f.local(T.i32), j = f.local(T.i32), d = f.local(T.i32), s = f.local(T.i32);
  f.set(i, 0);
  f.doWhile(() => {
    f.set(d, () => f.i32Add(dst!, () => f.i32Mul(i, dS1!)));
    f.set(s, () => f.i32Add(src!, () => f.i32Mul(i, sS1!)));
    f.set(j, 0);
    f.doWhile(() => {
      f.memoryCopy(d, s, len!);
      f.inc(d, dS2!).inc(s, sS2!).inc(j, 1);
    }, () => f.i32LtS(j, n2!));
    f.inc(i, 1);
  }, () => f.i32LtS(i, n1!));
  return f;
}

/**
 * padCopy(dst, src, planes, h, w, dPlane, dRow, sPlane, sRow, off): what zero over `planes` planes
 * of dPlane bytes at dst followed by copy2d of each plane's h rows of w floats (src rows sRow
 * apart, planes sPlane apart) to dst + plane·dPlane + off + row·dRow leaves, written in one pass:
 * the gaps between copied rows are zeroed as they are passed instead of the whole region first.
 * Values move as raw bits (v128 and i32 moves), as memory.copy moves them.
 */
function padCopy(): FnBuilder {
  const f = new FnBuilder('padCopy', i32s(10));
  const [dst, src, planes, h, w, dPlane, dRow, sPlane, sRow, off] = f.params as Local<T.i32>[];
  const z = f.local(T.i32), end = f.local(T.i32), p = f.local(T.i32), i = f.local(T.i32);
  const d = f.local(T.i32), s = f.local(T.i32), rowEnd = f.local(T.i32), vecEnd = f.local(T.i32);
  // Zeroes [z, to) and leaves z there.
  const zeroUpTo = (to: Local<T.i32>): void => {
    f.while_(() => f.i32LeS(() => f.i32Add(z, 16), to), () => { f.v128Store(z, () => f.v128Zero()); f.inc(z, 16); });
    f.while_(() => f.i32LtS(z, to), () => { f.i32Store(z, 0); f.inc(z, 4); });
  };
  f.set(z, dst!);
  f.set(p, 0);
  f.while_(() => f.i32LtS(p, planes!), () => {
    f.set(i, 0);
    f.while_(() => f.i32LtS(i, h!), () => {
      f.set(d, () => f.i32Add(() => f.i32Add(dst!, () => f.i32Mul(p, dPlane!)), () => f.i32Add(off!, () => f.i32Mul(i, dRow!))));
      f.set(s, () => f.i32Add(() => f.i32Add(src!, () => f.i32Mul(p, sPlane!)), () => f.i32Mul(i, sRow!)));
      zeroUpTo(d);
      f.set(rowEnd, () => f.i32Add(d, () => f.i32Shl(w!, 2)));
      f.set(vecEnd, () => f.i32Sub(rowEnd, 12));
      f.while_(() => f.i32LtS(d, vecEnd), () => { f.v128Store(d, () => f.v128Load(s)); f.inc(d, 16).inc(s, 16); });
      f.while_(() => f.i32LtS(d, rowEnd), () => { f.i32Store(d, () => f.i32Load(s)); f.inc(d, 4).inc(s, 4); });
      f.set(z, rowEnd);
      f.inc(i, 1);
    });
    f.inc(p, 1);
  });
  f.set(end, () => f.i32Add(dst!, () => f.i32Mul(planes!, dPlane!)));
  zeroUpTo(end);
  return f;
}

function zero(): FnBuilder {
  const f = new FnBuilder('zero', i32s(2));
  f.memoryFill(f.param(0, T.i32), 0, f.param(1, T.i32));
  return f;
}

/** addInto(dst, src, n): dst[i] += src[i] for n floats (reduces per-thread partial sums). */
function addInto(): FnBuilder {
  const f = new FnBuilder('addInto', i32s(3));
  const dst = f.param(0, T.i32), src = f.param(1, T.i32), n = f.param(2, T.i32);
  const end = f.local(T.i32), vend = f.local(T.i32);
  f.set(end, () => f.i32Add(dst, () => f.i32Shl(n, 2)));
  f.set(vend, () => f.i32Sub(end, 12));
  f.while_(() => f.i32LtS(dst, vend), () => {
    f.v128Store(dst, () => f.f32x4Add(() => f.v128Load(dst), () => f.v128Load(src)));
    f.inc(dst, 16).inc(src, 16);
  });
  f.while_(() => f.i32LtS(dst, end), () => {
    f.f32Store(dst, () => f.f32Add(() => f.f32Load(dst), () => f.f32Load(src)));
    f.inc(dst, 4).inc(src, 4);
  });
  return f;
}

export interface ModuleOptions { relaxedSimd: boolean; shared: boolean; maximumPages: number }

export function buildKernelModule(opts: ModuleOptions): Uint8Array<ArrayBuffer> {
  const fns: Record<FnName, FnBuilder> = {
    pack4: pack(4), pack8: pack(8), kernel: microKernel(opts.relaxedSimd),
    copy2d: copy2d(), zero: zero(), addInto: addInto(), kernel1: rowKernel(opts.relaxedSimd),
    leaky: POINTWISE_FNS.leaky(), leakyGrad: POINTWISE_FNS.leakyGrad(),
    rowSum: POINTWISE_FNS.rowSum(), rowSqDev: POINTWISE_FNS.rowSqDev(), rowDot2: POINTWISE_FNS.rowDot2(),
    rowAffine: POINTWISE_FNS.rowAffine(), maxPool2: POINTWISE_FNS.maxPool2(), scatterAdd: POINTWISE_FNS.scatterAdd(),
    upsample2: POINTWISE_FNS.upsample2(), upsample2Grad: POINTWISE_FNS.upsample2Grad(),
    dotNT: dotNT(opts.relaxedSimd), kernelDirect: microKernel(opts.relaxedSimd, true), kernelRows: microKernel(opts.relaxedSimd, false, true),
    sigmoid: POINTWISE_FNS.sigmoid(), sigmoidGrad: POINTWISE_FNS.sigmoidGrad(), elu: POINTWISE_FNS.elu(), eluGrad: POINTWISE_FNS.eluGrad(),
    wgWeights: wgWeights(opts.relaxedSimd), wgInput: wgInput(opts.relaxedSimd), wgOutput: wgOutput(opts.relaxedSimd),
    wgInputT: wgInputT(opts.relaxedSimd), wgGradOutT: wgGradOutT(opts.relaxedSimd), wgWeightsT: wgWeightsT(opts.relaxedSimd),
    interleave4: interleave4(),
    leakyMaxPool2: POINTWISE_FNS.leakyMaxPool2(), leakyMaxPool2Grad: POINTWISE_FNS.leakyMaxPool2Grad(), padCopy: padCopy(),
    normLeakyMaxPool2: POINTWISE_FNS.normLeakyMaxPool2(),
    wgWeights4: wgWeights(opts.relaxedSimd, F4X5), wgInput4: wgInput4(opts.relaxedSimd), wgOutput4: wgOutput4(opts.relaxedSimd),
    wgInputT4: wgInputT(opts.relaxedSimd, F4X5), wgGradOutT4: wgGradOutT(opts.relaxedSimd, F4X5),
    wgWeightsT4: wgWeightsT(opts.relaxedSimd, F4X5),
    execList: execList(),
  };
  return buildModule(
    { module: 'env', field: 'memory', initialPages: 1, maximumPages: opts.maximumPages, shared: opts.shared },
    FN_NAMES.map((n) => fns[n]));
}

/** A module using one relaxed-SIMD instruction: validates only where relaxed SIMD is on. */
export function relaxedProbeModule(): Uint8Array<ArrayBuffer> {
  const f = new FnBuilder('probe', []);
  f.v128Store(0, () => f.f32x4Madd(() => f.v128Zero(), () => f.v128Zero(), () => f.v128Zero(), true));
  return buildModule({ module: 'env', field: 'memory', initialPages: 1, maximumPages: 1, shared: false }, [f]);
}
