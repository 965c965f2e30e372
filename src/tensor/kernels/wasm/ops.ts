/**
 * JS drivers for the wasm kernels: they lay operands out in the arena, build the gather tables
 * that turn packing into im2col, and plan one command list per thread. All sizes are in floats
 * unless a name ends in a byte address (arena pointers, table entries).
 */
import type { ConvGeom } from '../types.ts';
import { col2imTs } from '../ts/conv.ts';
import { FN, MR, NR, type FnName } from './kernels.ts';
import { Operands } from './operands.ts';
import type { WasmRuntime } from './runtime.ts';

/** Depth of one packed block: a 4×KC A panel plus an 8×KC B panel stay well inside L1. */
const KC = 256;
/** Target bytes of packed B plus C per conv chunk, so a chunk is still in L2 when the kernel reads it. */
const CHUNK_BYTES = 512 * 1024;
/** Below this much work, waking a worker costs more than it saves. */
const MIN_PARALLEL_FLOPS = 3e6;

/** Leftover rows up to this many take the single-row kernel; three are cheaper as one padded 4-row tile. */
const ROW_KERNEL_MAX_ROWS = 2;

const up = (x: number, m: number): number => Math.ceil(x / m) * m;

export class Plan {
  readonly lists: number[][];
  constructor(threads: number) { this.lists = Array.from({ length: threads }, () => []); }
  push(t: number, fn: FnName, ...args: number[]): void {
    if (args.length !== FN[fn].arity) throw new Error(`${fn} takes ${FN[fn].arity} arguments`);
    this.lists[t]!.push(FN[fn].id, ...args);
  }
}

/**
 * C[m, n] (+)= packed A · packed B. Whole 4-row panels use the 4×8 kernel; one or two leftover
 * rows use the single-row kernel, which keeps its FMAs busy instead of computing padding rows.
 */
function pushGemm(plan: Plan, t: number, ap: number, bp: number, c: number, m: number, n: number, kc: number, ldc: number, acc: boolean): void {
  const rest = m % MR, full = rest > 0 && rest <= ROW_KERNEL_MAX_ROWS ? m - rest : m;
  if (full > 0) plan.push(t, 'kernel', ap, bp, c, full, n, kc, ldc, acc ? 1 : 0);
  for (let r = full; r < m; r++) {
    plan.push(t, 'kernel1', ap + full * kc * 4 + (r - full) * 4, bp, c + r * ldc * 4, n, kc, ldc, acc ? 1 : 0);
  }
}

/** Splits [0, total) into `parts` contiguous, balanced ranges. */
export function split(total: number, parts: number): [number, number][] {
  const out: [number, number][] = [];
  for (let t = 0; t < parts; t++) out.push([Math.floor((total * t) / parts), Math.floor((total * (t + 1)) / parts)]);
  return out;
}

function threadsFor(rt: WasmRuntime, flops: number, units: number): number {
  return flops >= MIN_PARALLEL_FLOPS ? Math.max(1, Math.min(rt.threads, units)) : 1;
}

/**
 * What a kernel call sets up that depends only on its shape (and the runtime's thread count):
 * the arena layout (`at`: operand addresses), the gather tables written into the arena, and the
 * command lists of each phase (run in order, each phase's lists in parallel). It is built once
 * per shape and replayed: the arena is shared by every call, so the tables are copied back in
 * (one memcpy each), but no table or plan is recomputed.
 */
interface Setup { top: number; at: Record<string, number>; tables: [number, Int32Array][]; phases: number[][][] }
/** The table writer handed to a setup's builder: records [at, ints) as a table to restore on replay. */
type TableFn = (at: number, ints: number) => Int32Array;
const setups = new WeakMap<WasmRuntime, Map<string, Setup>>();
/** Distinct shapes kept per runtime; a network has a few dozen, so this only bounds pathological use. */
const MAX_SETUPS = 512;

function setupFor(rt: WasmRuntime, key: string, build: (table: TableFn) => { at: Record<string, number>; phases: number[][][] }): Setup {
  let cache = setups.get(rt);
  if (!cache) { cache = new Map(); setups.set(rt, cache); }
  const hit = cache.get(key);
  if (hit) {
    rt.restore(hit.top);
    rt.commit();
    for (const [at, data] of hit.tables) rt.i32.set(data, at >> 2);
    return hit;
  }
  rt.reset();
  const ranges: [number, number][] = [];
  // Builders allocate, commit, then fill tables through views that stay valid (no growth after commit).
  const { at, phases } = build((a, n) => { ranges.push([a, n]); return rt.i32.subarray(a >> 2, (a >> 2) + n); });
  const setup: Setup = { top: rt.arenaTop, at, phases, tables: ranges.map(([a, n]) => [a, rt.i32.slice(a >> 2, (a >> 2) + n)]) };
  if (cache.size >= MAX_SETUPS) cache.clear();
  cache.set(key, setup);
  return setup;
}

/**
 * Operands (the arrays a kernel reads and writes) are not part of a cached setup: a builder places
 * operand i at the virtual address operandAt(i), far above any real address, and every call binds
 * them to where the arrays are: in place for tensors that live in wasm memory, else an arena copy
 * (see operands.ts). Binding rewrites each command argument at or above VIRTUAL_BASE; tables hold
 * only offsets, never operand addresses.
 */
const VIRTUAL_BASE = 2 ** 40, VIRTUAL_SLOT = 2 ** 36;
const operandAt = (slot: number): number => VIRTUAL_BASE + slot * VIRTUAL_SLOT;

type Access = 'in' | 'out' | 'inout';
/** One operand of a call: the array, how many floats the kernel touches, and how. */
type Operand = [array: Float32Array, floats: number, access: Access];

/** Runs a setup's phases with its operands bound (operand i = operands[i], as placed by operandAt(i)). */
function runPhases(rt: WasmRuntime, s: Setup, operands: Operand[]): void {
  const io = new Operands(rt, s.top);
  const bases = operands.map(([a, n, access]) => (access === 'in' ? io.input(a, n) : access === 'out' ? io.output(a, n) : io.inout(a, n)));
  io.commit();
  const bind = (v: number): number => {
    if (v < VIRTUAL_BASE) return v;
    const slot = Math.floor((v - VIRTUAL_BASE) / VIRTUAL_SLOT);
    return bases[slot]! + (v - VIRTUAL_BASE - slot * VIRTUAL_SLOT);
  };
  for (const lists of s.phases) rt.run(lists.map((l) => l.map(bind)));
  io.finish();
}

const geomKey = (name: string, g: ConvGeom): string =>
  `${name}:${g.n},${g.cin},${g.h},${g.w},${g.cout},${g.kh},${g.kw},${g.stride},${g.pad},${g.oh},${g.ow}`;

export function gemmWasm(rt: WasmRuntime, a: Float32Array, b: Float32Array, c: Float32Array, m: number, n: number, k: number,
                         transA: boolean, transB: boolean, accumulate: boolean): void {
  if (m === 0 || n === 0) return;
  if (k === 0) { if (!accumulate) c.fill(0, 0, m * n); return; }
  const s = setupFor(rt, `gemm:${m},${n},${k},${+transA},${+transB},${+accumulate}`, (table) => gemmSetup(rt, table, m, n, k, transA, transB, accumulate));
  runPhases(rt, s, [[a, m * k, 'in'], [b, k * n, 'in'], [c, m * n, accumulate ? 'inout' : 'out']]);
}

function gemmSetup(rt: WasmRuntime, table: TableFn, m: number, n: number, k: number, transA: boolean, transB: boolean,
                   accumulate: boolean): { at: Record<string, number>; phases: number[][][] } {
  const mp = up(m, MR), np = up(n, NR);
  const A = operandAt(0), B = operandAt(1), C = operandAt(2);
  const Ap = rt.alloc(mp * k * 4), Bp = rt.alloc(np * k * 4);
  const aLane = rt.alloc(m * 4), aRow = rt.alloc(k * 4), bLane = rt.alloc(n * 4), bRow = rt.alloc(k * 4);
  rt.commit();
  const al = table(aLane, m), ar = table(aRow, k), bl = table(bLane, n), br = table(bRow, k);
  for (let i = 0; i < m; i++) al[i] = (transA ? i : i * k) * 4;
  for (let p = 0; p < k; p++) {
    ar[p] = (transA ? p * m : p) * 4;
    br[p] = (transB ? p : p * n) * 4;
  }
  for (let j = 0; j < n; j++) bl[j] = (transB ? j * k : j) * 4;

  const T = threadsFor(rt, 2 * m * n * k, Math.min(mp / MR, np / NR));
  // Phase 1: every thread packs a share of A's row panels and of B's column panels.
  const pack = new Plan(T);
  const panels = split(np / NR, T), rowPanels = split(mp / MR, T);
  for (let pc = 0; pc < k; pc += KC) {
    const kc = Math.min(KC, k - pc);
    rowPanels.forEach(([r0, r1], t) => {
      const i0 = r0 * MR, rows = Math.min(m, r1 * MR) - i0;
      if (rows > 0) pack.push(t, 'pack4', Ap + mp * pc * 4 + i0 * kc * 4, A, aLane + i0 * 4, aRow + pc * 4, rows, kc);
    });
    panels.forEach(([p0, p1], t) => {
      const j0 = p0 * NR, ncols = Math.min(n, p1 * NR) - j0;
      if (ncols > 0) pack.push(t, 'pack8', Bp + np * pc * 4 + j0 * kc * 4, B, bLane + j0 * 4, bRow + pc * 4, ncols, kc);
    });
  }
  // Phase 2: threads own disjoint row panels of C.
  const comp = new Plan(T);
  split(mp / MR, T).forEach(([r0, r1], t) => {
    const i0 = r0 * MR, rows = Math.min(m, r1 * MR) - i0;
    if (rows <= 0) return;
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      pushGemm(comp, t, Ap + mp * pc * 4 + i0 * kc * 4, Bp + np * pc * 4, C + i0 * n * 4, rows, n, kc, n, accumulate || pc > 0);
    }
  });
  return { at: { A, B, C }, phases: [pack.lists, comp.lists] };
}

/** Zero-pads images [a, b) of X into Xp (each thread pads the images it convolves). */
function planPad(plan: Plan, t: number, g: ConvGeom, X: number, Xp: number, a: number, b: number): void {
  const { cin, h, w, pad } = g;
  if (pad === 0 || b <= a || h === 0 || w === 0) return;
  const Hp = h + 2 * pad, Wp = w + 2 * pad, imgPad = cin * Hp * Wp * 4, imgIn = cin * h * w * 4;
  plan.push(t, 'zero', Xp + a * imgPad, (b - a) * imgPad);
  plan.push(t, 'copy2d', Xp + a * imgPad + (pad * Wp + pad) * 4, X + a * imgIn, (b - a) * cin, h, w * 4,
    Hp * Wp * 4, Wp * 4, h * w * 4, w * 4);
}

/** The x-side of a conv: the input (operand 0) and its zero-padded copy (X itself when pad = 0). */
function allocInput(rt: WasmRuntime, g: ConvGeom): { X: number; Xp: number } {
  const X = operandAt(0);
  const Xp = g.pad > 0 ? rt.alloc(g.n * g.cin * (g.h + 2 * g.pad) * (g.w + 2 * g.pad) * 4) : X;
  return { X, Xp };
}

/** kernelOffsets[(ci·kh + ky)·kw + kx] = byte offset of that tap in a padded image. */
function writeKernelOffsets(out: Int32Array, g: ConvGeom): void {
  const Hp = g.h + 2 * g.pad, Wp = g.w + 2 * g.pad;
  let o = 0;
  const i32 = out;
  for (let ci = 0; ci < g.cin; ci++)
    for (let ky = 0; ky < g.kh; ky++)
      for (let kx = 0; kx < g.kw; kx++) i32[o++] = ((ci * Hp + ky) * Wp + kx) * 4;
}

/** positions[il·P + oy·ow + ox] = byte offset of that window's corner, for `imgs` padded images. */
function writePositions(out: Int32Array, g: ConvGeom, imgs: number, imgStrideFloats: number): void {
  const Wp = g.w + 2 * g.pad, s = g.stride;
  let o = 0;
  const i32 = out;
  for (let il = 0; il < imgs; il++)
    for (let oy = 0; oy < g.oh; oy++)
      for (let ox = 0; ox < g.ow; ox++) i32[o++] = (il * imgStrideFloats + oy * s * Wp + ox * s) * 4;
}

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

function convSetup(rt: WasmRuntime, table: TableFn, g: ConvGeom): { at: Record<string, number>; phases: number[][][] } {
  const { n, cin, h, w, cout, kh, kw, pad, oh, ow } = g;
  const K = cin * kh * kw, P = oh * ow;
  const imgPad = cin * (h + 2 * pad) * (w + 2 * pad), imgOut = cout * P;
  const mp = up(cout, MR), kcMax = Math.min(K, KC);
  const T = threadsFor(rt, 2 * n * imgOut * K, n);
  const ranges = split(n, T);
  const maxImgs = Math.max(...ranges.map(([a, b]) => b - a));
  const nb = Math.max(1, Math.min(maxImgs, Math.floor(CHUNK_BYTES / (P * (kcMax + cout) * 4))));

  const { X, Xp } = allocInput(rt, g);
  const W = operandAt(1), Ap = rt.alloc(mp * K * 4), Y = operandAt(2);
  const wLane = rt.alloc(cout * 4), wRow = rt.alloc(K * 4);
  const colTab = rt.alloc(nb * P * 4), rowTab = rt.alloc(K * 4);
  const Bp = ranges.map(() => rt.alloc(up(nb * P, NR) * kcMax * 4));
  const Cs = ranges.map(() => (nb > 1 ? rt.alloc(imgOut * nb * 4) : 0));
  rt.commit();
  const wl = table(wLane, cout), wr = table(wRow, K);
  for (let co = 0; co < cout; co++) wl[co] = co * K * 4;
  for (let p = 0; p < K; p++) wr[p] = p * 4;
  writeKernelOffsets(table(rowTab, K), g);
  writePositions(table(colTab, nb * P), g, nb, imgPad);

  // Weights are tiny next to the columns: pack them once, first, before any thread needs them.
  const packA = new Plan(1);
  for (let pc = 0; pc < K; pc += KC) packA.push(0, 'pack4', Ap + mp * pc * 4, W, wLane, wRow + pc * 4, cout, Math.min(KC, K - pc));

  const plan = new Plan(T);
  ranges.forEach(([a, b], t) => {
    planPad(plan, t, g, X, Xp, a, b);
    for (let img0 = a; img0 < b; img0 += nb) {
      const imgs = Math.min(nb, b - img0), ncols = imgs * P;
      // A single-image chunk is already in NCHW order, so the kernel can write y directly.
      const out = nb === 1 ? Y + img0 * imgOut * 4 : Cs[t]!;
      for (let pc = 0; pc < K; pc += KC) {
        const kc = Math.min(KC, K - pc);
        plan.push(t, 'pack8', Bp[t]!, Xp + img0 * imgPad * 4, colTab, rowTab + pc * 4, ncols, kc);
        pushGemm(plan, t, Ap + mp * pc * 4, Bp[t]!, out, cout, ncols, kc, ncols, pc > 0);
      }
      if (nb > 1) plan.push(t, 'copy2d', Y + img0 * imgOut * 4, Cs[t]!, imgs, cout, P * 4, imgOut * 4, P * 4, P * 4, ncols * 4);
    }
  });
  return { at: { X, W, Y }, phases: [packA.lists, plan.lists] };
}

/** Whether 5×5 stride-1 convolutions take the Winograd path: on unless SVDD_WINOGRAD=0. */
let winogradEnabled = process.env['SVDD_WINOGRAD'] !== '0';
/** Turns the Winograd path on or off, returning the previous setting (benchmarks and tests compare both in one process). */
export function setWinograd(enabled: boolean): boolean {
  const previous = winogradEnabled;
  winogradEnabled = enabled;
  return previous;
}

/**
 * Winograd pays once the channel counts are this large: its input transform costs per input
 * channel and its output transform per output channel about what the saved multiplications save
 * per channel pair, and the 36 GEMMs have only cin as inner dimension. Measured at batch 200 (64 for
 * 28×28), 1 thread, Winograd vs direct: with 16 input channels it wins everywhere tried (16 → 8:
 * 1.15× on 4×4 images to 1.6× on 16×16; 16 → 128: 1.1× on 4×4, 2–2.3× on 8×8 and 16×16; 32 → 32:
 * 0.95× on 4×4, 1.6–2× from 6×6 up). With 8 input channels it wins 1.3–1.6× on 8×8 and larger but
 * loses up to 1.6× on 4×4 to 7×7 images (8 → 128: a CIFAR decoder layer); 4 output channels lose.
 */
const WINOGRAD_MIN_CIN = 16;
const WINOGRAD_MIN_COUT = 8;
/**
 * Target bytes of one chunk's V and M (all 36 ξ): about the L2 of one core, where the GEMMs find
 * V and the output transform finds M. Timings are flat from 512 KiB to 2 MiB; the larger chunk
 * means fewer (and longer) kernel calls.
 */
const WINOGRAD_CHUNK_BYTES = 1024 * 1024;
/** Chunks hold at least this many tiles, so the 36 GEMMs never shrink to one or two column panels. */
const WINOGRAD_MIN_CHUNK_TILES = 32;

/**
 * Byte distance between consecutive ξ of U, V or M. The transforms touch all 36 ξ at once; at a
 * power-of-two distance those 36 streams would share one cache set (and evict each other from L1),
 * so the distance is rounded to an odd number of 64-byte lines, which puts them in 36 different sets.
 */
function xiStride(bytes: number): number {
  const lines = Math.ceil(bytes / 64);
  return (lines % 2 === 0 ? lines + 1 : lines) * 64;
}

/**
 * Whether conv2dWasm (and so conv2dGradInputWasm) takes the Winograd path for g. Input channels
 * are capped at KC so that each U_ξ · V_ξ is one packed block (inner dimension cin).
 */
export function usesWinograd(g: ConvGeom): boolean {
  return winogradEnabled && g.kh === 5 && g.kw === 5 && g.stride === 1
    && g.cin >= WINOGRAD_MIN_CIN && g.cin <= KC && g.cout >= WINOGRAD_MIN_COUT;
}

/** y = conv(x, wt) by Winograd F(2×2, 5×5) (see winograd.ts for the transforms). */
function conv2dWinograd(rt: WasmRuntime, x: Float32Array, wt: Float32Array, y: Float32Array, g: ConvGeom): void {
  const { n, cin, h, w, cout, oh, ow } = g;
  const s = setupFor(rt, geomKey('winograd', g), (table) => winogradSetup(rt, table, g));
  runPhases(rt, s, [[x, n * cin * h * w, 'in'], [wt, cout * cin * 25, 'in'], [y, n * cout * oh * ow, 'out']]);
}

/**
 * The plan of a Winograd convolution. Tiles (2×2 output blocks) are numbered row-major per image,
 * with each tile row padded to a multiple of 4 tiles so that the transforms always handle 4 tiles
 * of one row per f32x4 vector.
 *
 * Layout (ξ = one of the 36 positions of a transformed tile):
 *   U [ξ][cout/4][cin][4]        filters, G·g·Gᵀ, in packed-A layout (pack4's, one ξ after another)
 *   Xw [n][cin][2·th + 4][2·tw + 4]  the input, zero-padded so every tile's 6×6 window is in bounds
 *   V [ξ][tiles/8][cin][8]      one chunk of transformed input tiles, in packed-B layout (per thread)
 *   M [ξ][cout][tiles]          U_ξ · V_ξ for that chunk (per thread)
 *   Y                           the output, written by the output transform; when the padded tile
 *                               grid overhangs it, into Yp [n][cout][2·th][2·tw] and copied out
 *
 * Phase 1 transforms the filters, threads taking disjoint output-channel panels. Phase 2: threads
 * take disjoint images and walk them in chunks of tile rows sized to stay in L2; per chunk they
 * transform the input, run the 36 GEMMs and transform the output.
 */
function winogradSetup(rt: WasmRuntime, table: TableFn, g: ConvGeom): { at: Record<string, number>; phases: number[][][] } {
  const { n, cin, h, w, cout, pad, oh, ow } = g;
  const th = Math.ceil(oh / 2), tw = up(Math.ceil(ow / 2), 4), groupsPerRow = tw / 4;
  const Hw = 2 * th + 4, Ww = 2 * tw + 4, plane = Hw * Ww, imgIn = cin * plane;
  const outRow = 2 * tw, outPlane = 2 * th * outRow, imgOut = cout * outPlane;
  const direct = outRow === ow && 2 * th === oh;
  const mp = up(cout, MR), taps = cin * 25, XI = 36;
  const T = threadsFor(rt, 2 * n * cout * oh * ow * taps, n);
  const ranges = split(n, T);
  const rowsPerChunk = Math.max(Math.ceil(WINOGRAD_MIN_CHUNK_TILES / tw), Math.floor(WINOGRAD_CHUNK_BYTES / (XI * (cin + cout) * 4 * tw)));
  const chunkTiles = Math.min(rowsPerChunk, Math.max(...ranges.map(([a, b]) => (b - a) * th))) * tw;
  const vXi = xiStride(up(chunkTiles, NR) * cin * 4), mXi = xiStride(cout * chunkTiles * 4), uXi = xiStride(mp * cin * 4);

  const X = operandAt(0), W = operandAt(1), Y = operandAt(2);
  const Wp = rt.alloc(mp * taps * 4), U = rt.alloc(XI * uXi), Xw = rt.alloc(n * imgIn * 4);
  const Yp = direct ? Y : rt.alloc(n * imgOut * 4);
  const wLane = rt.alloc(cout * 4), wRow = rt.alloc(taps * 4);
  const V = ranges.map(() => rt.alloc(XI * vXi)), M = ranges.map(() => rt.alloc(XI * mXi));
  rt.commit();
  const wl = table(wLane, cout), wr = table(wRow, taps);
  for (let co = 0; co < cout; co++) wl[co] = co * taps * 4;
  for (let p = 0; p < taps; p++) wr[p] = p * 4;

  const filters = new Plan(T);
  split(mp / MR, T).forEach(([p0, p1], t) => {
    const cols = Math.min(cout, p1 * MR) - p0 * MR;
    if (cols <= 0) return;
    const packed = Wp + p0 * taps * MR * 4;
    filters.push(t, 'pack4', packed, W, wLane + p0 * MR * 4, wRow, cols, taps);
    filters.push(t, 'wgWeights', U + p0 * cin * MR * 4, packed, (p1 - p0) * cin, uXi);
  });

  const plan = new Plan(T);
  ranges.forEach(([a, b], t) => {
    for (let row0 = a * th; row0 < b * th; row0 += rowsPerChunk) {
      const row1 = Math.min(row0 + rowsPerChunk, b * th), tiles = (row1 - row0) * tw;
      // The chunk's tile rows, split where they cross from one image into the next.
      const segments: { img: number; y0: number; y1: number; tile0: number }[] = [];
      for (let r = row0; r < row1;) {
        const img = Math.floor(r / th), y0 = r - img * th, y1 = Math.min(th, y0 + row1 - r);
        segments.push({ img, y0, y1, tile0: (r - row0) * tw });
        r += y1 - y0;
      }
      for (const { img, y0, y1, tile0 } of segments) {
        const xw = Xw + img * imgIn * 4;
        if (y0 === 0) {
          plan.push(t, 'zero', xw, imgIn * 4);
          plan.push(t, 'copy2d', xw + (pad * Ww + pad) * 4, X + img * cin * h * w * 4, cin, h, w * 4, plane * 4, Ww * 4, h * w * 4, w * 4);
        }
        const group0 = tile0 / 4;
        plan.push(t, 'wgInput', V[t]! + (group0 >> 1) * cin * NR * 4 + (group0 & 1) * 16, xw + 2 * y0 * Ww * 4,
          cin, y1 - y0, groupsPerRow, Ww * 4, plane * 4, vXi, group0 & 1);
      }
      for (let xi = 0; xi < XI; xi++) pushGemm(plan, t, U + xi * uXi, V[t]! + xi * vXi, M[t]! + xi * mXi, cout, tiles, cin, tiles, false);
      for (const { img, y0, y1, tile0 } of segments) {
        plan.push(t, 'wgOutput', Yp + (img * imgOut + 2 * y0 * outRow) * 4, M[t]! + tile0 * 4, cout, y1 - y0, groupsPerRow,
          tiles * 4, mXi, outRow * 4, outPlane * 4);
        if (!direct && y1 === th) {
          plan.push(t, 'copy2d', Y + img * cout * oh * ow * 4, Yp + img * imgOut * 4, cout, oh, ow * 4, oh * ow * 4, ow * 4, outPlane * 4, outRow * 4);
        }
      }
    }
  });
  return { at: { X, W, Y }, phases: [filters.lists, plan.lists] };
}

/**
 * Whether conv2dGradWeightWasm takes the Winograd path for g: the same convolutions as the forward
 * (usesWinograd), under the same switch. Its 36 GEMMs run at the micro-kernel's usual rate, so it
 * saves what the forward does: measured at batch 200, 1 thread, vs the im2col GEMM (or, for
 * 16 → 8, the unpacked direct path): CIFAR conv2 32 → 64 @16 and conv3 64 → 128 @8 (also the
 * decoder's deconv3 and deconv2) 2.3× and 2.45×; deconv1's 128 → 8 @4 1.9×; 16 → 8 @16 1.5×;
 * 16 → 128 @4 1.9×; 32 → 32 @4 and @8 2×; 16 → 16 @28 2×. The transforms and gathers are about a
 * quarter of its time (conv2), the GEMMs the rest.
 */
export function usesWinogradGradWeight(g: ConvGeom): boolean {
  return usesWinograd(g);
}

/**
 * Target tiles per chunk of the weight gradient (the inner dimension of one block of its 36 GEMMs).
 * Timings are flat from 96 to 192 (CIFAR conv2/conv3, 1 thread); 48 and 256 lose a few percent.
 */
const WINOGRAD_GW_CHUNK_TILES = 128;

/** gw = ∂/∂w of conv(x, w) against gy, by the adjoint of the Winograd forward (see winograd.ts). */
function conv2dGradWeightWinograd(rt: WasmRuntime, x: Float32Array, gy: Float32Array, gw: Float32Array, g: ConvGeom): void {
  const { n, cin, h, w, cout, oh, ow } = g;
  const s = setupFor(rt, geomKey('winogradGW', g), (table) => winogradGradWeightSetup(rt, table, g));
  runPhases(rt, s, [[x, n * cin * h * w, 'in'], [gy, n * cout * oh * ow, 'in'], [gw, cout * cin * 25, 'out']]);
}

/**
 * The plan of a Winograd weight gradient. Tiles are numbered row-major per image (th × tw per
 * image, no padding to groups: the vector lanes hold channels here). Per thread, images pass
 * through S slots (enough for the images one chunk touches) as they are first reached:
 *   Xw [cin][Hw][Ww]          the input, zero-padded as in the forward (copy2d)
 *   Xc [cin/8][Hw][Ww][8]     the same, interleaved by channel (pack8 gather)
 *   GYp [cout][2·th][2·tw]    dY zero-padded to whole tiles (only when oh or ow is odd)
 *   GYc [cout/4][2·th][2·tw][4]  dY interleaved by channel (pack4 gather)
 * Per chunk of tile rows (≈ WINOGRAD_GW_CHUNK_TILES tiles, crossing images):
 *   V [ξ][cin/8][kc][8]   Bᵀ·d·B (packed B),  dM [ξ][cout/4][kc][4]  A·dY·Aᵀ (packed A),
 *   dU_t [ξ][cout][cin] (+)= dM_ξ · V_ξ   (36 GEMMs with inner dimension kc, accumulated over chunks).
 * Phase 2: threads take disjoint ranges of (cout, cin) pairs, add the other threads' dU partials
 * into dU_0 and transform them: gw = Gᵀ·dU·G.
 */
function winogradGradWeightSetup(rt: WasmRuntime, table: TableFn, g: ConvGeom): { at: Record<string, number>; phases: number[][][] } {
  const { n, cin, h, w, cout, pad, oh, ow } = g;
  const th = Math.ceil(oh / 2), tw = Math.ceil(ow / 2);
  const Hw = 2 * th + 4, Ww = 2 * tw + 4, plane = Hw * Ww, imgIn = cin * plane;
  const outRow = 2 * tw, outPlane = 2 * th * outRow, P = oh * ow;
  const direct = outRow === ow && 2 * th === oh;
  const cp = up(cin, NR), mp = up(cout, MR), E = cout * cin, XI = 36;
  const T = threadsFor(rt, 2 * n * P * cout * cin * 25, n);
  const ranges = split(n, T);
  const rowsPerChunk = Math.max(1, Math.round(WINOGRAD_GW_CHUNK_TILES / tw));
  const chunkTiles = Math.min(rowsPerChunk, Math.max(...ranges.map(([a, b]) => (b - a) * th))) * tw;
  const S = Math.min(n, Math.ceil(rowsPerChunk / th) + 1);
  const vXi = xiStride(cp * chunkTiles * 4), mXi = xiStride(mp * chunkTiles * 4), uXi = xiStride(E * 4);

  // Channel counts in whole groups and rows in whole vectors interleave with 4×4 transposes straight
  // from the operands; otherwise zero-padded copies are gathered by pack8 / pack4.
  const fastX = cin % NR === 0 && w % 4 === 0, fastY = direct && cout % MR === 0 && ow % 4 === 0;
  const X = operandAt(0), GY = operandAt(1), GW = operandAt(2);
  const Xw = ranges.map(() => (fastX ? 0 : rt.alloc(S * imgIn * 4))), Xc = ranges.map(() => rt.alloc(S * cp * plane * 4));
  const GYp = direct || fastY ? [] : ranges.map(() => rt.alloc(S * cout * outPlane * 4));
  const GYc = ranges.map(() => rt.alloc(S * mp * outPlane * 4));
  const V = ranges.map(() => rt.alloc(XI * vXi)), M = ranges.map(() => rt.alloc(XI * mXi)), dU = ranges.map(() => rt.alloc(XI * uXi));
  const xLane = rt.alloc(cin * 4), xRow = rt.alloc(plane * 4), yLane = rt.alloc(cout * 4), yRow = rt.alloc(outPlane * 4);
  rt.commit();
  const xl = table(xLane, cin), xr = table(xRow, plane), yl = table(yLane, cout), yr = table(yRow, outPlane);
  for (let c = 0; c < cin; c++) xl[c] = c * plane * 4;
  for (let p = 0; p < plane; p++) xr[p] = p * 4;
  for (let c = 0; c < cout; c++) yl[c] = c * outPlane * 4;
  for (let p = 0; p < outPlane; p++) yr[p] = p * 4;

  const plan = new Plan(T);
  ranges.forEach(([a, b], t) => {
    let first = true;
    for (let row0 = a * th; row0 < b * th; row0 += rowsPerChunk) {
      const row1 = Math.min(row0 + rowsPerChunk, b * th), kc = (row1 - row0) * tw;
      for (let r = row0; r < row1;) {
        const img = Math.floor(r / th), y0 = r - img * th, y1 = Math.min(th, y0 + row1 - r), tile0 = (r - row0) * tw;
        const slot = img % S, xw = Xw[t]! + slot * imgIn * 4, xc = Xc[t]! + slot * cp * plane * 4, gyc = GYc[t]! + slot * mp * outPlane * 4;
        if (y0 === 0) {
          // Only the interiors of the padded slots are rewritten per image: zero each slot on its first use.
          const firstUse = img - a < S;
          const xs = X + img * cin * h * w * 4;
          if (fastX) {
            if (firstUse) plan.push(t, 'zero', xc, cp * plane * 4);
            for (let half = 0; half < 2; half++) {
              plan.push(t, 'interleave4', xc + (pad * Ww + pad) * NR * 4 + half * 16, xs + half * 4 * h * w * 4, cin / NR, h, w / 4,
                NR * h * w * 4, h * w * 4, w * 4, plane * NR * 4, Ww * NR * 4, NR * 4);
            }
          } else {
            if (firstUse) plan.push(t, 'zero', xw, imgIn * 4);
            plan.push(t, 'copy2d', xw + (pad * Ww + pad) * 4, xs, cin, h, w * 4, plane * 4, Ww * 4, h * w * 4, w * 4);
            plan.push(t, 'pack8', xc, xw, xLane, xRow, cin, plane);
          }
          let gys = GY + img * cout * P * 4;
          if (fastY) {
            plan.push(t, 'interleave4', gyc, gys, cout / MR, oh, ow / 4, MR * P * 4, P * 4, ow * 4, outPlane * MR * 4, outRow * MR * 4, MR * 4);
          } else {
            if (!direct) {
              const gyp = GYp[t]! + slot * cout * outPlane * 4;
              if (firstUse) plan.push(t, 'zero', gyp, cout * outPlane * 4);
              plan.push(t, 'copy2d', gyp, gys, cout, oh, ow * 4, outPlane * 4, outRow * 4, P * 4, ow * 4);
              gys = gyp;
            }
            plan.push(t, 'pack4', gyc, gys, yLane, yRow, cout, outPlane);
          }
        }
        plan.push(t, 'wgInputT', V[t]! + tile0 * NR * 4, xc + 2 * y0 * Ww * NR * 4, y1 - y0, tw, cp / NR, Ww * NR * 4, plane * NR * 4, vXi, kc * NR * 4);
        plan.push(t, 'wgGradOutT', M[t]! + tile0 * MR * 4, gyc + 2 * y0 * outRow * MR * 4, y1 - y0, tw, mp / MR, outRow * MR * 4,
          outPlane * MR * 4, mXi, kc * MR * 4);
        r += y1 - y0;
      }
      for (let xi = 0; xi < XI; xi++) pushGemm(plan, t, M[t]! + xi * mXi, V[t]! + xi * vXi, dU[t]! + xi * uXi, cout, cin, kc, cin, !first);
      first = false;
    }
  });

  // Phase 2 over groups of 4 pairs; a last partial group is redone as the group ending at E (same
  // values), which stays inside the last thread's range: it splits all groups but the last.
  const groups = Math.floor(E / 4), tail = E % 4 !== 0;
  const finish = new Plan(T);
  split(groups - 1, T).forEach(([g0, g1], t) => {
    if (t === T - 1) g1 = groups;
    if (g1 <= g0) return;
    const e0 = 4 * g0, e1 = t === T - 1 ? E : 4 * g1;
    for (let u = 1; u < T; u++) {
      for (let xi = 0; xi < XI; xi++) finish.push(t, 'addInto', dU[0]! + xi * uXi + e0 * 4, dU[u]! + xi * uXi + e0 * 4, e1 - e0);
    }
    finish.push(t, 'wgWeightsT', GW + e0 * 25 * 4, dU[0]! + e0 * 4, g1 - g0, uXi);
    if (tail && t === T - 1) finish.push(t, 'wgWeightsT', GW + (E - 4) * 25 * 4, dU[0]! + (E - 4) * 4, 1, uXi);
  });
  return { at: { X, GY, GW }, phases: [plan.lists, finish.lists] };
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

function convGradWeightSetup(rt: WasmRuntime, table: TableFn, g: ConvGeom): { at: Record<string, number>; phases: number[][][] } {
  const { n, cin, h, w, cout, kh, kw, pad, oh, ow } = g;
  const K = cin * kh * kw, P = oh * ow;
  const imgPad = cin * (h + 2 * pad) * (w + 2 * pad), imgOut = cout * P;
  const T = threadsFor(rt, 2 * n * imgOut * K, n);
  const ranges = split(n, T);
  const maxImgs = Math.max(...ranges.map(([a, b]) => b - a));
  const Q = maxImgs * P;

  const { X, Xp } = allocInput(rt, g);
  const GY = operandAt(1);
  const laneA = rt.alloc(cout * 4), rowA = rt.alloc(Q * 4), laneB = rt.alloc(K * 4), rowB = rt.alloc(Q * 4);
  const Ap = ranges.map(() => rt.alloc(up(cout, MR) * KC * 4));
  const Bp = ranges.map(() => rt.alloc(up(K, NR) * KC * 4));
  const Cs = ranges.map(() => rt.alloc(cout * K * 4));
  rt.commit();
  const la = table(laneA, cout), ra = table(rowA, Q);
  for (let co = 0; co < cout; co++) la[co] = co * P * 4;
  for (let il = 0, o = 0; il < maxImgs; il++) for (let p = 0; p < P; p++) ra[o++] = (il * imgOut + p) * 4;
  writeKernelOffsets(table(laneB, K), g);
  writePositions(table(rowB, Q), g, maxImgs, imgPad);

  const plan = new Plan(T);
  ranges.forEach(([a, b], t) => {
    planPad(plan, t, g, X, Xp, a, b);
    const Qt = (b - a) * P;
    if (Qt === 0) { plan.push(t, 'zero', Cs[t]!, cout * K * 4); return; }
    for (let q = 0; q < Qt; q += KC) {
      const kc = Math.min(KC, Qt - q);
      plan.push(t, 'pack4', Ap[t]!, GY + a * imgOut * 4, laneA, rowA + q * 4, cout, kc);
      plan.push(t, 'pack8', Bp[t]!, Xp + a * imgPad * 4, laneB, rowB + q * 4, K, kc);
      pushGemm(plan, t, Ap[t]!, Bp[t]!, Cs[t]!, cout, K, kc, K, q > 0);
    }
  });
  const reduce = new Plan(1);
  for (let t = 1; t < T; t++) reduce.push(0, 'addInto', Cs[0]!, Cs[t]!, cout * K);
  return { at: { X, GY, C0: Cs[0]! }, phases: [plan.lists, reduce.lists] };
}

/**
 * Stride-1 convolutions with DIRECT_MIN_COUT..DIRECT_MAX_COUT output channels skip packing. Fewer
 * would waste most of a 4-row tile; with more, packing is amortised over many row panels and the
 * packed path wins (the direct path also computes Wp − ow wasted columns per row: 50% at 8×8).
 */
const DIRECT_MIN_COUT = 3;
const DIRECT_MAX_COUT = 16;

/**
 * Stride-1 convolution without packing the input. Over the padded width Wp, output position
 * q = oy·Wp + ox reads tap k = (ci, ky, kx) at Xp[off_k + q], so row k of the im2col matrix is a
 * contiguous run of the padded image: kernelDirect reads it in place through a table of tap
 * offsets. Each image gives Y' [cout, oh·Wp]; columns ox ≥ ow are discarded when copying out.
 */
function conv2dDirect(rt: WasmRuntime, x: Float32Array, wt: Float32Array, y: Float32Array, g: ConvGeom): void {
  const { n, cin, h, w, cout, kh, kw, pad, oh, ow } = g;
  const K = cin * kh * kw, imgPad = cin * (h + 2 * pad) * (w + 2 * pad);
  const s = setupFor(rt, geomKey('direct', g), (table) => directSetup(rt, table, g));
  const { Xp } = s.at as { Xp: number };
  rt.f32.fill(0, (Xp >> 2) + n * imgPad, (Xp >> 2) + n * imgPad + directSlack(g));
  runPhases(rt, s, [[x, n * cin * h * w, 'in'], [wt, cout * K, 'in'], [y, n * cout * oh * ow, 'out']]);
}

/** A ragged last column panel reads up to NR floats past an image's last row: the zeroed tail after Xp. */
const directSlack = (g: ConvGeom): number => g.kw + 2 * NR;

function directSetup(rt: WasmRuntime, table: TableFn, g: ConvGeom): { at: Record<string, number>; phases: number[][][] } {
  const { n, cin, h, w, cout, kh, kw, pad, oh, ow } = g;
  const K = cin * kh * kw, Hp = h + 2 * pad, Wp = w + 2 * pad, imgPad = cin * Hp * Wp, imgOut = cout * oh * ow;
  const Q = oh * Wp, mp = up(cout, MR);
  const slack = directSlack(g);
  const T = threadsFor(rt, 2 * n * imgOut * K, n);
  const ranges = split(n, T);

  const X = operandAt(0), Xp = rt.alloc((n * imgPad + slack) * 4);
  const W = operandAt(1), Ap = rt.alloc(mp * K * 4), Y = operandAt(2);
  const wLane = rt.alloc(cout * 4), wRow = rt.alloc(K * 4), tapTab = rt.alloc(K * 4);
  const Cs = ranges.map(() => rt.alloc(cout * Q * 4));
  rt.commit();
  const wl = table(wLane, cout), wr = table(wRow, K);
  for (let co = 0; co < cout; co++) wl[co] = co * K * 4;
  for (let p = 0; p < K; p++) wr[p] = p * 4;
  writeKernelOffsets(table(tapTab, K), g);

  const packA = new Plan(1);
  for (let pc = 0; pc < K; pc += KC) packA.push(0, 'pack4', Ap + mp * pc * 4, W, wLane, wRow + pc * 4, cout, Math.min(KC, K - pc));

  const plan = new Plan(T);
  ranges.forEach(([a, b], t) => {
    if (b <= a) return;
    plan.push(t, 'zero', Xp + a * imgPad * 4, (b - a) * imgPad * 4);
    plan.push(t, 'copy2d', Xp + a * imgPad * 4 + (pad * Wp + pad) * 4, X + a * cin * h * w * 4, (b - a) * cin, h, w * 4,
      Hp * Wp * 4, Wp * 4, h * w * 4, w * 4);
    for (let img = a; img < b; img++) {
      for (let pc = 0; pc < K; pc += KC) {
        const kc = Math.min(KC, K - pc);
        plan.push(t, 'kernelDirect', Ap + mp * pc * 4, Xp + img * imgPad * 4, Cs[t]!, cout, Q, kc, Q, pc > 0 ? 1 : 0, tapTab + pc * 4);
      }
      plan.push(t, 'copy2d', Y + img * imgOut * 4, Cs[t]!, cout, oh, ow * 4, oh * ow * 4, ow * 4, Q * 4, Wp * 4);
    }
  });
  return { at: { X, Xp, W, Y }, phases: [packA.lists, plan.lists] };
}

/** Weight gradients with at most this many entries (cout·K) take the packing-free path. */
const DIRECT_GW_MAX = 4096;

/**
 * Stride-1 weight gradient without packing. Over the padded width Wp, output position q = oy·Wp + ox
 * reads tap (ci, ky, kx) at Xp[ci][ky·Wp + kx + q]: one contiguous row per tap. With gy copied into
 * rows of the same width (zero at ox ≥ ow, and up to a multiple of 4), each weight gradient entry is
 * a contiguous dot product, gw[co, k] = Σ_img Σ_q gyPad[co][q] · Xp[off_k + q] (dotNT). Threads take
 * disjoint images and sum their partials at the end.
 */
function conv2dGradWeightDirect(rt: WasmRuntime, x: Float32Array, gy: Float32Array, gw: Float32Array, g: ConvGeom): void {
  const { n, cin, h, w, cout, kh, kw, oh, ow } = g;
  const K = cin * kh * kw, np = up(K, 2);
  const s = setupFor(rt, geomKey('directGW', g), (table) => directGradWeightSetup(rt, table, g));
  const { C0 } = s.at as { C0: number };
  runPhases(rt, s, [[x, n * cin * h * w, 'in'], [gy, n * cout * oh * ow, 'in']]);
  const out = rt.f32, c0 = C0 >> 2;
  for (let co = 0; co < cout; co++) gw.set(out.subarray(c0 + co * np, c0 + co * np + K), co * K);
}

function directGradWeightSetup(rt: WasmRuntime, table: TableFn, g: ConvGeom): { at: Record<string, number>; phases: number[][][] } {
  const { n, cin, h, w, cout, kh, kw, pad, oh, ow } = g;
  const K = cin * kh * kw, Hp = h + 2 * pad, Wp = w + 2 * pad, imgPad = cin * Hp * Wp, imgOut = cout * oh * ow;
  const L = up(oh * Wp, 4), mp = up(cout, 4), np = up(K, 2);
  // Dot products run L floats past a tap's start, so an image's last taps read up to kw + 2 floats of
  // what follows it (times gy's zero padding). Each thread's images therefore get a block of their own
  // ending in a zeroed tail (kw + 8), zeroed by that thread: in one shared block, a thread's last image
  // would read the next thread's first image while that thread writes it, or before it zeroes it
  // (then stale scratch; 0·NaN is NaN).
  const slack = kw + 8;
  const T = threadsFor(rt, 2 * n * imgOut * K, n);
  const ranges = split(n, T);

  const X = operandAt(0), Xp = ranges.map(([a, b]) => rt.alloc(((b - a) * imgPad + slack) * 4));
  const GY = operandAt(1), GYp = rt.alloc(n * cout * L * 4);
  const aTab = rt.alloc(mp * 4), bTab = rt.alloc(np * 4);
  const Cs = ranges.map(() => rt.alloc(mp * np * 4));
  rt.commit();
  // Padding rows and columns repeat the last real one; their results are never copied out.
  const at = table(aTab, mp), bt = table(bTab, np);
  for (let i = 0; i < mp; i++) at[i] = Math.min(i, cout - 1) * L * 4;
  for (let j = 0; j < np; j++) {
    const k = Math.min(j, K - 1), ci = Math.floor(k / (kh * kw)), ky = Math.floor(k / kw) % kh, kx = k % kw;
    bt[j] = ((ci * Hp + ky) * Wp + kx) * 4;
  }

  const plan = new Plan(T);
  ranges.forEach(([a, b], t) => {
    if (b <= a) { plan.push(t, 'zero', Cs[t]!, mp * np * 4); return; }
    plan.push(t, 'zero', Xp[t]!, ((b - a) * imgPad + slack) * 4);
    plan.push(t, 'copy2d', Xp[t]! + (pad * Wp + pad) * 4, X + a * cin * h * w * 4, (b - a) * cin, h, w * 4,
      Hp * Wp * 4, Wp * 4, h * w * 4, w * 4);
    plan.push(t, 'zero', GYp + a * cout * L * 4, (b - a) * cout * L * 4);
    plan.push(t, 'copy2d', GYp + a * cout * L * 4, GY + a * imgOut * 4, (b - a) * cout, oh, ow * 4,
      L * 4, Wp * 4, oh * ow * 4, ow * 4);
    for (let img = a; img < b; img++) {
      plan.push(t, 'dotNT', GYp + img * cout * L * 4, aTab, mp, Xp[t]! + (img - a) * imgPad * 4, bTab, np, L, Cs[t]!, img > a ? 1 : 0);
    }
  });
  const reduce = new Plan(1);
  for (let t = 1; t < T; t++) reduce.push(0, 'addInto', Cs[0]!, Cs[t]!, mp * np);
  return { at: { X, GY, C0: Cs[0]! }, phases: [plan.lists, reduce.lists] };
}

const flips = new Map<string, Int32Array>();
/**
 * perm[i] = index in a [cout, cin, kh, kw] kernel of entry i of its flipped, channel-transposed
 * [cin, cout, kh, kw] version (cached per shape).
 */
function flipPermutation(cout: number, cin: number, kh: number, kw: number): Int32Array {
  const key = `${cout},${cin},${kh},${kw}`;
  let perm = flips.get(key);
  if (perm) return perm;
  perm = new Int32Array(cout * cin * kh * kw);
  for (let co = 0; co < cout; co++)
    for (let ci = 0; ci < cin; ci++)
      for (let ky = 0; ky < kh; ky++)
        for (let kx = 0; kx < kw; kx++)
          perm[((ci * cout + co) * kh + (kh - 1 - ky)) * kw + (kw - 1 - kx)] = ((co * cin + ci) * kh + ky) * kw + kx;
  if (flips.size >= MAX_SETUPS) flips.clear();
  flips.set(key, perm);
  return perm;
}

/**
 * gx = ∂(conv)/∂x. With stride 1 this is itself a convolution of gy with the flipped,
 * channel-transposed kernel and padding k−1−pad, which reuses the fast forward path (and is how
 * ConvTranspose2d runs). Other geometries take GEMM (Wᵀ·gy per image) plus the reference col2im.
 */
export function conv2dGradInputWasm(rt: WasmRuntime, gy: Float32Array, wt: Float32Array, gx: Float32Array, g: ConvGeom): void {
  const { n, cin, h, w, cout, kh, kw, stride, pad, oh, ow } = g;
  if (stride === 1 && kh === kw && pad <= kh - 1 && oh === h + 2 * pad - kh + 1 && ow === w + 2 * pad - kw + 1) {
    const perm = flipPermutation(cout, cin, kh, kw), flipped = new Float32Array(perm.length);
    for (let i = 0; i < perm.length; i++) flipped[i] = wt[perm[i]!]!;
    conv2dWasm(rt, gy, flipped, gx, {
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
