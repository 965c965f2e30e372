/**
 * Winograd F(2×2, 5×5) drivers for the forward convolution and its weight gradient (the transforms
 * themselves are in winograd.ts), the switch that turns the path on or off, and the one that picks
 * F(4×4, 5×5) for both instead.
 */
import { BackendError } from '../../backend-registry.ts';
import type { ConvGeom } from '../types.ts';
import { MR, NR, type FnName } from './kernels.ts';
import type { WasmRuntime } from './runtime.ts';
import { KC, Plan, type TableFn, geomKey, operandAt, pushGemm, runPhases, setupFor, split, threadsFor, up } from './plan.ts';

/**
 * Whether 5×5 stride-1 convolutions take the Winograd path: on unless SVDD_WINOGRAD=0. Module-level
 * on purpose: a process-wide override of the kernel path, which tests and benchmarks flip on
 * runtimes they create without an engine to compare both paths in one process.
 */
let winogradEnabled = process.env['SVDD_WINOGRAD'] !== '0';
/** Turns the Winograd path on or off, returning the previous setting (benchmarks and tests compare both in one process). */
export function setWinograd(enabled: boolean): boolean {
  const previous = winogradEnabled;
  winogradEnabled = enabled;
  return previous;
}

/** Output tile side of the Winograd paths (forward and weight gradient): F(2×2, 5×5) or F(4×4, 5×5). */
export type WinogradTile = 2 | 4;
const WINOGRAD_TILE_ENV = 'SVDD_WINOGRAD_TILE';

/** The tile a SVDD_WINOGRAD_TILE value asks for (unset or empty: 2); anything but 2 or 4 is a BackendError. */
export function parseWinogradTile(value: string | undefined): WinogradTile {
  if (value === undefined || value === '' || value === '2') return 2;
  if (value === '4') return 4;
  throw new BackendError(`${WINOGRAD_TILE_ENV} must be 2 or 4 (the output tile side of the Winograd forward convolution), not '${value}'`);
}

/** Throws parseWinogradTile's error for a bad SVDD_WINOGRAD_TILE: the wasm backend checks it when it starts. */
export function checkWinogradTileEnv(): void {
  parseWinogradTile(process.env[WINOGRAD_TILE_ENV]);
}

/**
 * The Winograd tile of the forward convolution and the weight gradient: 4 (F(4×4, 5×5)) only when
 * SVDD_WINOGRAD_TILE=4. It does 4 multiplications per output instead of 9 (bench/winograd-tile.ts,
 * batch 200, 1 thread: CIFAR-10 conv layers 1.5–2.0× faster, their weight gradients 1.7×, inference
 * 1.54×, a Deep SVDD step 1.50×, an autoencoder step 1.51×), but its float32 error is about 4×
 * F(2×2)'s in the forward (relative RMS 2.5e-6 against 6.7e-7 on conv2) and 3× in the weight
 * gradient (4.7e-6 against 1.5e-6), too much for the autoencoder's PyTorch parity test (its weight
 * gradients off by up to 2.7e-4 relative against a 1e-4 tolerance, through the batch-2 BatchNorm;
 * that comes from the forward: with the weight gradient in F(2×2) it is the same), so it is opt-in.
 * Module-level like winogradEnabled, for the same reason. Read here without the check, so that
 * importing the backend never throws; any value other than 2 or 4 is refused by createWasmBackend
 * (checkWinogradTileEnv) before it runs.
 */
let winogradTile: WinogradTile = process.env[WINOGRAD_TILE_ENV] === '4' ? 4 : 2;
/** Sets the Winograd tile (2 or 4), returning the previous one (benchmarks and tests compare both in one process). */
export function setWinogradTile(tile: WinogradTile): WinogradTile {
  if (tile !== 2 && tile !== 4) throw new Error(`setWinogradTile: the tile must be 2 or 4, not ${String(tile)}`);
  const previous = winogradTile;
  winogradTile = tile;
  return previous;
}

/** The Winograd path in effect (whether it is on, and its tile), for benchmark records. */
export function winogradSettings(): { enabled: boolean; tile: WinogradTile } {
  return { enabled: winogradEnabled, tile: winogradTile };
}

/**
 * Winograd pays once the channel counts are this large: its input transform costs per input
 * channel and its output transform per output channel about what the saved multiplications save
 * per channel pair, and the 36 GEMMs have only cin as inner dimension. Measured at batch 200 (64 for
 * 28×28), 1 thread, Winograd vs direct: with 16 input channels it wins everywhere tried (16 → 8:
 * 1.15× on 4×4 images to 1.6× on 16×16; 16 → 128: 1.1× on 4×4, 2–2.3× on 8×8 and 16×16; 32 → 32:
 * 0.95× on 4×4, 1.6–2× from 6×6 up). With 8 input channels it wins 1.3–1.6× on 8×8 and larger but
 * loses up to 1.6× on 4×4 to 7×7 images (8 → 128: a CIFAR decoder layer); 4 output channels lose.
 * Measured for F(2×2) and kept for F(4×4), which would pay below them too: the decoder's 8 → 128 @4
 * takes 3.7–4.0 ms direct, 1.7 ms by F(4×4) (batch 200, 1 thread).
 */
const WINOGRAD_MIN_CIN = 16;
const WINOGRAD_MIN_COUT = 8;
/**
 * Target bytes of one chunk's V and M (all α² ξ): about the L2 of one core, where the GEMMs find
 * V and the output transform finds M. Timings are flat from 512 KiB to 2 MiB; the larger chunk
 * means fewer (and longer) kernel calls.
 */
const WINOGRAD_CHUNK_BYTES = 1024 * 1024;
/** Chunks hold at least this many tiles, so the α² GEMMs never shrink to one or two column panels. */
const WINOGRAD_MIN_CHUNK_TILES = 32;

/**
 * Byte distance between consecutive ξ of U, V or M. The transforms touch all α² ξ (36 or 64) at
 * once; at a power-of-two distance those streams would share one cache set (and evict each other
 * from L1), so the distance is rounded to an odd number of 64-byte lines, which puts them in
 * different sets (up to 64 of them).
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

/** y = conv(x, wt) by Winograd F(2×2, 5×5), or F(4×4, 5×5) under tile 4 (see winograd.ts for the transforms). */
export function conv2dWinograd(rt: WasmRuntime, x: Float32Array, wt: Float32Array, y: Float32Array, g: ConvGeom): void {
  const { n, cin, h, w, cout, oh, ow } = g;
  const s = winogradTile === 4
    ? setupFor(rt, geomKey('winograd4', g), (table) => winograd4Setup(rt, table, g))
    : setupFor(rt, geomKey('winograd', g), (table) => winogradSetup(rt, table, g));
  runPhases(rt, s, [[x, n * cin * h * w, 'in'], [wt, cout * cin * 25, 'in'], [y, n * cout * oh * ow, 'out']]);
}

/**
 * Tile rows per chunk of the F(2×2) forward: `target` (at least `min`), made even when a row holds
 * an odd number of 4-tile groups (tw ≡ 4 mod 8), so that a chunk is whole NR-column panels. An odd
 * count leaves every chunk's 36 GEMMs a half-empty last panel (computed as padding, stored lane by
 * lane): on CIFAR-10's 8×8 layers (tw = 4, 9 rows = 36 tiles) that cost about 10% of the forward and
 * of the input gradient (bench/conv-breakdown.ts). Each tile's outputs are the same whatever chunk
 * holds it (the GEMMs' inner dimension is cin, whole in every chunk), so the results are unchanged.
 */
export function wholePanelRows(min: number, target: number, tw: number): number {
  const rows = Math.max(min, target);
  if ((rows * tw) % NR === 0) return rows;
  return rows - 1 >= min ? rows - 1 : rows + 1;
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
  const rowsPerChunk = wholePanelRows(Math.ceil(WINOGRAD_MIN_CHUNK_TILES / tw), Math.floor(WINOGRAD_CHUNK_BYTES / (XI * (cin + cout) * 4 * tw)), tw);
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

  const filters = filterPlan(T, g, 'wgWeights', { W, Wp, U, wLane, wRow }, uXi);

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
          plan.push(t, 'padCopy', xw, X + img * cin * h * w * 4, cin, h, w, plane * 4, Ww * 4, h * w * 4, w * 4, (pad * Ww + pad) * 4);
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
 * Phase 1 of a Winograd convolution: the filter transform U = G·g·Gᵀ (kernel `weights`), threads
 * taking disjoint output-channel panels. W is the weights operand; Wp (packed filters), U, and the
 * gather tables wLane / wRow are the setup's.
 */
function filterPlan(T: number, g: ConvGeom, weights: FnName, at: { W: number; Wp: number; U: number; wLane: number; wRow: number }, uXi: number): Plan {
  const { cin, cout } = g, mp = up(cout, MR), taps = cin * 25;
  const filters = new Plan(T);
  split(mp / MR, T).forEach(([p0, p1], t) => {
    const cols = Math.min(cout, p1 * MR) - p0 * MR;
    if (cols <= 0) return;
    const packed = at.Wp + p0 * taps * MR * 4;
    filters.push(t, 'pack4', packed, at.W, at.wLane + p0 * MR * 4, at.wRow, cols, taps);
    filters.push(t, weights, at.U + p0 * cin * MR * 4, packed, (p1 - p0) * cin, uXi);
  });
  return filters;
}

/**
 * The plan of a Winograd F(4×4, 5×5) convolution (wgInput4 / wgOutput4, which gather tiles). Tiles are
 * numbered (image, tile row, tile column) without padding, th × tw per image (tw = ⌈ow / 4⌉), and
 * taken 4 at a time per vector wherever they lie; the lane tables give each lane's window in Xw and
 * block in the output. Threads take disjoint images, walking their tiles in chunks of whole panels;
 * a thread's last group, when partial, repeats its last tile (same values, written twice).
 *
 * Layout as winogradSetup's (ξ one of the 64 positions of an 8×8 transformed tile), except:
 *   Xw [n][cin][4·th + 4][4·tw + 4]   the zero-padded input
 *   Yp [n][cout][4·th][4·tw]         the output when whole tiles overhang it, then copied out
 *   inTab, outTab [groups][4]        per lane: byte offset of its window in Xw, of its block in Yp / Y
 */
function winograd4Setup(rt: WasmRuntime, table: TableFn, g: ConvGeom): { at: Record<string, number>; phases: number[][][] } {
  const { n, cin, h, w, cout, pad, oh, ow } = g;
  const th = Math.ceil(oh / 4), tw = Math.ceil(ow / 4), tilesPerImage = th * tw;
  const Hw = 4 * th + 4, Ww = 4 * tw + 4, plane = Hw * Ww, imgIn = cin * plane;
  const outRow = 4 * tw, outPlane = 4 * th * outRow, imgOut = cout * outPlane;
  const direct = outRow === ow && 4 * th === oh;
  const mp = up(cout, MR), taps = cin * 25, XI = 64;
  const T = threadsFor(rt, 2 * n * cout * oh * ow * taps, n);
  const ranges = split(n, T);
  const perThread = Math.max(...ranges.map(([a, b]) => (b - a) * tilesPerImage));
  const chunkTiles = Math.min(up(perThread, NR),
    up(Math.max(WINOGRAD_MIN_CHUNK_TILES, Math.floor(WINOGRAD_CHUNK_BYTES / (XI * (cin + cout) * 4))), NR));
  // Chunks [c0, c1) of tile numbers per thread, and the offset of each one's first group in the lane tables.
  const chunks = ranges.map(([a, b]) => {
    const list: { c0: number; c1: number; group0: number }[] = [];
    for (let c0 = a * tilesPerImage; c0 < b * tilesPerImage; c0 += chunkTiles) list.push({ c0, c1: Math.min(c0 + chunkTiles, b * tilesPerImage), group0: 0 });
    return list;
  });
  let groups = 0;
  for (const c of chunks.flat()) { c.group0 = groups; groups += Math.ceil((c.c1 - c.c0) / 4); }
  const vXi = xiStride(chunkTiles * cin * 4), mXi = xiStride(cout * chunkTiles * 4), uXi = xiStride(mp * cin * 4);

  const X = operandAt(0), W = operandAt(1), Y = operandAt(2);
  const Wp = rt.alloc(mp * taps * 4), U = rt.alloc(XI * uXi), Xw = rt.alloc(n * imgIn * 4);
  const Yp = direct ? Y : rt.alloc(n * imgOut * 4);
  const wLane = rt.alloc(cout * 4), wRow = rt.alloc(taps * 4), inTab = rt.alloc(groups * 16), outTab = rt.alloc(groups * 16);
  const V = ranges.map(() => rt.alloc(XI * vXi)), M = ranges.map(() => rt.alloc(XI * mXi));
  rt.commit();
  const wl = table(wLane, cout), wr = table(wRow, taps), it = table(inTab, groups * 4), ot = table(outTab, groups * 4);
  for (let co = 0; co < cout; co++) wl[co] = co * taps * 4;
  for (let p = 0; p < taps; p++) wr[p] = p * 4;

  const filters = filterPlan(T, g, 'wgWeights4', { W, Wp, U, wLane, wRow }, uXi);
  const plan = new Plan(T);
  chunks.forEach((list, t) => {
    for (const { c0, c1, group0 } of list) {
      const chunkGroups = Math.ceil((c1 - c0) / 4), cols = 4 * chunkGroups;
      for (let lane = 0; lane < cols; lane++) {
        const tile = Math.min(c0 + lane, c1 - 1), img = Math.floor(tile / tilesPerImage), r = tile - img * tilesPerImage;
        const ty = Math.floor(r / tw), tx = r - ty * tw;
        it[4 * group0 + lane] = (img * imgIn + 4 * ty * Ww + 4 * tx) * 4;
        ot[4 * group0 + lane] = (img * imgOut + 4 * ty * outRow + 4 * tx) * 4;
      }
      for (let img = Math.ceil(c0 / tilesPerImage); img * tilesPerImage < c1; img++) {
        plan.push(t, 'padCopy', Xw + img * imgIn * 4, X + img * cin * h * w * 4, cin, h, w, plane * 4, Ww * 4, h * w * 4, w * 4, (pad * Ww + pad) * 4);
      }
      plan.push(t, 'wgInput4', V[t]!, Xw, cin, chunkGroups, inTab + group0 * 16, Ww * 4, plane * 4, vXi, 0);
      for (let xi = 0; xi < XI; xi++) pushGemm(plan, t, U + xi * uXi, V[t]! + xi * vXi, M[t]! + xi * mXi, cout, cols, cin, cols, false);
      plan.push(t, 'wgOutput4', Yp, M[t]!, cout, chunkGroups, outTab + group0 * 16, cols * 4, mXi, outRow * 4, outPlane * 4);
      if (!direct) {
        // Images whose last tile is in this chunk are complete.
        for (let img = Math.floor(c0 / tilesPerImage); img < Math.ceil(c1 / tilesPerImage); img++) {
          if ((img + 1) * tilesPerImage > c1) continue;
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
 * quarter of its time (conv2), the GEMMs the rest. Under tile 4 every one of them takes F(4×4): it
 * beat F(2×2) on every geometry measured, the smallest images included, so none falls back
 * (bench/winograd-tile.ts, batch 200, paired, 1 / 2 threads: conv2 1.71× / 1.66×, conv3 1.70× /
 * 1.65×, 32 → 32 @4 1.53× / 1.30×, 16 → 128 @4 1.62× / 1.37×, 16 → 16 @8 1.39× / 1.22×, 64 → 64 @8
 * 1.76× / 1.60×, 32 → 32 @12 1.59× / 1.78×).
 */
export function usesWinogradGradWeight(g: ConvGeom): boolean {
  return usesWinograd(g);
}

/**
 * Target tiles per chunk of the weight gradient (the inner dimension of one block of its 36 GEMMs).
 * Timings are flat from 96 to 192 (CIFAR conv2/conv3, 1 thread); 48 and 256 lose a few percent.
 * F(4×4) (64 GEMMs, 4× the pixels per tile) keeps it: flat from 32 to 128 tiles, 256 about 10% slower
 * (bench/winograd-tile.ts --op=gradWeight, 1 thread).
 */
const WINOGRAD_GW_CHUNK_TILES = 128;

/**
 * The weight-gradient kernels of each tile size: F(4×4) has its own transforms (generated from F4X5),
 * 64 GEMMs instead of 36, and tile windows 4 pixels apart.
 */
const GRAD_WEIGHT_KERNELS: Record<WinogradTile, { key: string; xi: number; input: FnName; gradOut: FnName; weights: FnName }> = {
  2: { key: 'winogradGW', xi: 36, input: 'wgInputT', gradOut: 'wgGradOutT', weights: 'wgWeightsT' },
  4: { key: 'winogradGW4', xi: 64, input: 'wgInputT4', gradOut: 'wgGradOutT4', weights: 'wgWeightsT4' },
};

/**
 * gw = ∂/∂w of conv(x, w) against gy, by the adjoint of the Winograd forward (see winograd.ts):
 * F(2×2), or F(4×4) under tile 4.
 */
export function conv2dGradWeightWinograd(rt: WasmRuntime, x: Float32Array, gy: Float32Array, gw: Float32Array, g: ConvGeom): void {
  const { n, cin, h, w, cout, oh, ow } = g;
  const tile = winogradTile;
  const s = setupFor(rt, geomKey(GRAD_WEIGHT_KERNELS[tile].key, g), (table) => winogradGradWeightSetup(rt, table, g, tile));
  runPhases(rt, s, [[x, n * cin * h * w, 'in'], [gy, n * cout * oh * ow, 'in'], [gw, cout * cin * 25, 'out']]);
}

/**
 * The plan of a Winograd weight gradient with m × m output tiles (m = tile: 2 or 4). Tiles are
 * numbered row-major per image (th × tw per image, th = ⌈oh/m⌉, tw = ⌈ow/m⌉, no padding to groups:
 * the vector lanes hold channels here). Per thread, images pass through S slots (enough for the
 * images one chunk touches) as they are first reached:
 *   Xw [cin][Hw][Ww]          the input, zero-padded as in the forward (copy2d), Hw = m·th + 4
 *   Xc [cin/8][Hw][Ww][8]     the same, interleaved by channel (pack8 gather)
 *   GYp [cout][m·th][m·tw]    dY zero-padded to whole tiles (only when oh or ow is not a multiple of m)
 *   GYc [cout/4][m·th][m·tw][4]  dY interleaved by channel (pack4 gather)
 * Per chunk of tile rows (≈ WINOGRAD_GW_CHUNK_TILES tiles, crossing images):
 *   V [ξ][cin/8][kc][8]   Bᵀ·d·B (packed B),  dM [ξ][cout/4][kc][4]  A·dY·Aᵀ (packed A),
 *   dU_t [ξ][cout][cin] (+)= dM_ξ · V_ξ   (α² GEMMs with inner dimension kc, accumulated over chunks).
 * Phase 2: threads take disjoint ranges of (cout, cin) pairs, add the other threads' dU partials
 * into dU_0 and transform them: gw = Gᵀ·dU·G. Each thread's partial sums run over its own images in
 * a fixed chunk order and phase 2 adds them in thread order, so the bits do not depend on how the
 * threads are scheduled (test/wasm-schedule.test.ts runs the phases serially in both orders).
 */
function winogradGradWeightSetup(rt: WasmRuntime, table: TableFn, g: ConvGeom, tile: WinogradTile): { at: Record<string, number>; phases: number[][][] } {
  const { n, cin, h, w, cout, pad, oh, ow } = g;
  const m = tile, kernels = GRAD_WEIGHT_KERNELS[tile];
  const th = Math.ceil(oh / m), tw = Math.ceil(ow / m);
  const Hw = m * th + 4, Ww = m * tw + 4, plane = Hw * Ww, imgIn = cin * plane;
  const outRow = m * tw, outPlane = m * th * outRow, P = oh * ow;
  const direct = outRow === ow && m * th === oh;
  const cp = up(cin, NR), mp = up(cout, MR), E = cout * cin, XI = kernels.xi;
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
        plan.push(t, kernels.input, V[t]! + tile0 * NR * 4, xc + m * y0 * Ww * NR * 4, y1 - y0, tw, cp / NR, Ww * NR * 4, plane * NR * 4, vXi, kc * NR * 4);
        plan.push(t, kernels.gradOut, M[t]! + tile0 * MR * 4, gyc + m * y0 * outRow * MR * 4, y1 - y0, tw, mp / MR, outRow * MR * 4,
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
    finish.push(t, kernels.weights, GW + e0 * 25 * 4, dU[0]! + e0 * 4, g1 - g0, uXi);
    if (tail && t === T - 1) finish.push(t, kernels.weights, GW + (E - 4) * 25 * 4, dU[0]! + (E - 4) * 4, 1, uXi);
  });
  return { at: { X, GY, GW }, phases: [plan.lists, finish.lists] };
}
