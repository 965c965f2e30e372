/**
 * The gpujs operations, written once for both calling conventions: each op is a generator that
 * yields every gpu.js kernel call it makes and receives the call's result back. `runSync` drives
 * it for the synchronous modes (GL, webasm, cpu: the engine's kernel interface), `runAsync`
 * awaits each call for WebGPU, whose kernels return Promises (in the worker bridge's thread,
 * worker.ts, when the engine is the caller). Intermediates (im2col columns,
 * BatchNorm sums) stay on the device: those kernels are compiled with `pipeline: true` and
 * their textures / buffers are fed straight to the next kernel.
 */
import type { ConvGeom, UnaryName } from '../types.ts';
import type { GpuInput, GpuInstance, GpujsModule, KernelArg, KernelFn, KernelSettings } from './gpu-types.ts';
import { isPromise } from './gpu-types.ts';
import * as src from './sources.ts';

export interface Call { readonly kernel: KernelFn; readonly args: KernelArg[] }
export type Op = Generator<Call, void, unknown>;

function* exec(kernel: KernelFn, ...args: KernelArg[]): Generator<Call, unknown, unknown> {
  return yield { kernel, args };
}

export function runSync(op: Op): void {
  let step = op.next();
  while (!step.done) {
    const r = step.value.kernel(...step.value.args);
    if (isPromise(r)) throw new Error('gpujs: a kernel returned a Promise in a synchronous mode (webgpu runs awaited: the worker bridge or createGpujsAsyncKernels)');
    step = op.next(r);
  }
}

export async function runAsync(op: Op): Promise<void> {
  let step = op.next();
  while (!step.done) {
    const r: unknown = await step.value.kernel(...step.value.args);
    step = op.next(r);
  }
}

/** Copies a kernel's host result (Float32Array, or 2-/3-D nesting of them) into out from off; returns the end offset. */
function copyOut(res: unknown, out: Float32Array, off: number, limit = out.length): number {
  if (res instanceof Float32Array) {
    const n = Math.min(res.length, limit - off);
    if (n > 0) out.set(n === res.length ? res : res.subarray(0, n), off);
    return off + res.length;
  }
  if (Array.isArray(res)) {
    for (const part of res) off = copyOut(part, out, off, limit);
    return off;
  }
  throw new Error(`gpujs: unexpected kernel result ${Object.prototype.toString.call(res)}`);
}

/** Adds a host result into acc (element-wise, same layout). */
function addOut(res: unknown, acc: Float32Array): void {
  const tmp = new Float32Array(acc.length);
  copyOut(res, tmp, 0);
  for (let i = 0; i < acc.length; i++) acc[i] += tmp[i]!;
}

export interface EngineOptions {
  /** Largest array (elements) one kernel call reads or writes; work is chunked along batch/rows to stay under it. */
  maxChunkElements?: number;
  /** Largest element-wise row width (the flat data is viewed as [rows, width]). */
  rowWidth?: number;
}

/** 2^22 floats = 16 MiB: well under WebGPU's 128 MiB binding limit and GL's 16384² texture. */
const DEFAULT_MAX_CHUNK = 1 << 22;

/** gpu.js's kernel classes by the mode name that asks for each. */
const RESOLVED_MODES: Readonly<Record<string, string>> = {
  HeadlessGLKernel: 'headlessgl', WebGL2Kernel: 'webgl2', WebGLKernel: 'webgl', WebGPUKernel: 'webgpu',
  WebAssemblyKernel: 'webasm', CPUKernel: 'cpu',
};

/** A gpu.js instance plus a cache of compiled kernels, keyed by source and shape. */
export class GpujsEngine {
  private readonly cache = new Map<string, KernelFn>();
  readonly maxChunk: number;
  readonly rowWidth: number;

  constructor(readonly gpu: GpuInstance, private readonly lib: GpujsModule, opts: EngineOptions = {}) {
    this.maxChunk = Math.max(1, Math.floor(opts.maxChunkElements ?? DEFAULT_MAX_CHUNK));
    this.rowWidth = Math.max(1, Math.floor(opts.rowWidth ?? 4096));
  }

  /** The mode that runs: the one gpu.js resolved 'gpu' to (its kernel class), else the one asked for. */
  get mode(): string { return RESOLVED_MODES[this.gpu.Kernel?.name ?? ''] ?? this.gpu.mode; }
  get compiledKernels(): number { return this.cache.size; }

  /**
   * The compiled kernel for `key` (which, with the output size and constants, must determine
   * every argument's size: gpu.js bakes argument sizes into a kernel).
   */
  kernel(key: string, source: string, settings: Omit<KernelSettings, 'precision'>): KernelFn {
    const full = `${key}|${settings.output.join('x')}|${settings.pipeline ? 'p' : ''}|${JSON.stringify(settings.constants ?? {})}`;
    let k = this.cache.get(full);
    if (!k) {
      k = this.gpu.createKernel(source, { ...settings, precision: 'single', tactic: 'precision' });
      this.cache.set(full, k);
    }
    return k;
  }

  input(data: Float32Array, dims: number[]): GpuInput {
    return this.lib.input(data, dims);
  }

  dispose(): unknown {
    for (const k of this.cache.values()) { try { k.destroy?.(); } catch { /* already gone */ } }
    this.cache.clear();
    return this.gpu.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// GEMM

export function* gemmOp(e: GpujsEngine, a: Float32Array, b: Float32Array, c: Float32Array, m: number, n: number, k: number,
                        transA: boolean, transB: boolean, accumulate: boolean): Op {
  if (m === 0 || n === 0) return;
  if (k === 0) { if (!accumulate) c.fill(0, 0, m * n); return; }
  const bIn = e.input(b.subarray(0, k * n), transB ? [k, n] : [n, k]);
  const aFull = transA ? e.input(a.subarray(0, k * m), [m, k]) : undefined;
  const rows = Math.max(1, Math.min(m, Math.floor(e.maxChunk / Math.max(n, transA ? 1 : k))));
  const source = src.gemmSource(transA, transB, accumulate);
  for (let i0 = 0; i0 < m; i0 += rows) {
    const mc = Math.min(rows, m - i0);
    const kern = e.kernel(`gemm${+transA}${+transB}${+accumulate}:${m}x${n}x${k}`, source,
      { output: [n, mc], constants: { K: k, I0: transA ? i0 : 0 } });
    const aIn = aFull ?? e.input(a.subarray(i0 * k, (i0 + mc) * k), [k, mc]);
    const args: KernelArg[] = [aIn, bIn];
    if (accumulate) args.push(e.input(c.subarray(i0 * n, (i0 + mc) * n), [n, mc]));
    const res = yield* exec(kern, ...args);
    copyOut(res, c, i0 * n, (i0 + mc) * n);
  }
}

// ---------------------------------------------------------------------------------------------
// Convolutions: im2col → batched GEMM, chunked along the batch, the columns kept on the device.

function convChunk(e: GpujsEngine, g: ConvGeom): number {
  const K = g.cin * g.kh * g.kw, P = g.oh * g.ow;
  const per = Math.max(K * P, g.cout * P, g.cin * g.h * g.w);
  return Math.max(1, Math.min(g.n, Math.floor(e.maxChunk / per)));
}

function convConstants(g: ConvGeom): Record<string, number> {
  return {
    CIN: g.cin, H: g.h, W: g.w, KH: g.kh, KW: g.kw, KHW: g.kh * g.kw,
    S: g.stride, PAD: g.pad, OH: g.oh, OW: g.ow, COUT: g.cout,
  };
}

function im2colKernel(e: GpujsEngine, g: ConvGeom, nb: number): KernelFn {
  const K = g.cin * g.kh * g.kw, P = g.oh * g.ow;
  return e.kernel('im2col', src.im2colSource, { output: [P, K, nb], constants: convConstants(g), pipeline: true });
}

export function* conv2dOp(e: GpujsEngine, x: Float32Array, w: Float32Array, y: Float32Array, g: ConvGeom): Op {
  const K = g.cin * g.kh * g.kw, P = g.oh * g.ow, imgIn = g.cin * g.h * g.w, imgOut = g.cout * P;
  if (g.n === 0 || P === 0 || g.cout === 0) return;
  if (K === 0) { y.fill(0, 0, g.n * imgOut); return; }
  const wIn = e.input(w.subarray(0, g.cout * K), [K, g.cout]);
  const chunk = convChunk(e, g);
  for (let i0 = 0; i0 < g.n; i0 += chunk) {
    const nb = Math.min(chunk, g.n - i0);
    const col = yield* exec(im2colKernel(e, g, nb), e.input(x.subarray(i0 * imgIn, (i0 + nb) * imgIn), [g.w, g.h, nb * g.cin]));
    const mm = e.kernel('convGemm', src.convGemmSource, { output: [P, g.cout, nb], constants: { K } });
    const res = yield* exec(mm, wIn, col as KernelArg);
    copyOut(res, y, i0 * imgOut, (i0 + nb) * imgOut);
  }
}

export function* conv2dGradInputOp(e: GpujsEngine, gy: Float32Array, w: Float32Array, gx: Float32Array, g: ConvGeom): Op {
  const K = g.cin * g.kh * g.kw, P = g.oh * g.ow, imgIn = g.cin * g.h * g.w, imgOut = g.cout * P;
  if (g.n === 0 || imgIn === 0) return;
  if (P === 0 || g.cout === 0 || K === 0) { gx.fill(0, 0, g.n * imgIn); return; }
  const wIn = e.input(w.subarray(0, g.cout * K), [K, g.cout]);
  const chunk = convChunk(e, g);
  for (let i0 = 0; i0 < g.n; i0 += chunk) {
    const nb = Math.min(chunk, g.n - i0);
    const colK = e.kernel('convGradCol', src.convGradColSource,
      { output: [P, K, nb], constants: { COUT: g.cout }, pipeline: true });
    const dcol = yield* exec(colK, wIn, e.input(gy.subarray(i0 * imgOut, (i0 + nb) * imgOut), [P, g.cout, nb]));
    const c2i = e.kernel('col2im', src.col2imSource, { output: [g.w, g.h, nb * g.cin], constants: convConstants(g) });
    const res = yield* exec(c2i, dcol as KernelArg);
    copyOut(res, gx, i0 * imgIn, (i0 + nb) * imgIn);
  }
}

export function* conv2dGradWeightOp(e: GpujsEngine, x: Float32Array, gy: Float32Array, gw: Float32Array, g: ConvGeom): Op {
  const K = g.cin * g.kh * g.kw, P = g.oh * g.ow, imgIn = g.cin * g.h * g.w, imgOut = g.cout * P;
  const acc = gw.subarray(0, g.cout * K);
  acc.fill(0);
  if (g.n === 0 || P === 0 || K === 0 || g.cout === 0) return;
  const chunk = convChunk(e, g);
  for (let i0 = 0; i0 < g.n; i0 += chunk) {
    const nb = Math.min(chunk, g.n - i0);
    const col = yield* exec(im2colKernel(e, g, nb), e.input(x.subarray(i0 * imgIn, (i0 + nb) * imgIn), [g.w, g.h, nb * g.cin]));
    const gwK = e.kernel('convGradWeight', src.convGradWeightSource, { output: [K, g.cout], constants: { NB: nb, P } });
    const res = yield* exec(gwK, e.input(gy.subarray(i0 * imgOut, (i0 + nb) * imgOut), [P, g.cout, nb]), col as KernelArg);
    if (i0 === 0) copyOut(res, acc, 0); else addOut(res, acc);
  }
}

// ---------------------------------------------------------------------------------------------
// Element-wise: the flat data viewed as rows of `rowWidth`, chunked by rows, the tail zero-padded.

function rowsView(e: GpujsEngine, n: number): { width: number; rowsPerChunk: number } {
  const width = Math.min(n, e.rowWidth);
  return { width, rowsPerChunk: Math.max(1, Math.floor(e.maxChunk / width)) };
}

function rowSlice(x: Float32Array, start: number, len: number, n: number): Float32Array {
  if (start + len <= n) return x.subarray(start, start + len);
  const padded = new Float32Array(len);
  padded.set(x.subarray(start, n));
  return padded;
}

export function* unaryOp(e: GpujsEngine, name: UnaryName, x: Float32Array, out: Float32Array, p: number): Op {
  const n = x.length;
  if (n === 0) return;
  const { width, rowsPerChunk } = rowsView(e, n);
  const totalRows = Math.ceil(n / width);
  for (let r0 = 0; r0 < totalRows; r0 += rowsPerChunk) {
    const rows = Math.min(rowsPerChunk, totalRows - r0), start = r0 * width, len = rows * width;
    const k = e.kernel(`unary:${name}`, src.unarySource(name), { output: [width, rows] });
    const res = yield* exec(k, e.input(rowSlice(x, start, len, n), [width, rows]), p);
    copyOut(res, out, start, n);
  }
}

export function* unaryGradOp(e: GpujsEngine, name: UnaryName, x: Float32Array, y: Float32Array, gy: Float32Array,
                             gx: Float32Array, p: number): Op {
  const n = x.length;
  if (n === 0) return;
  const { width, rowsPerChunk } = rowsView(e, n);
  const totalRows = Math.ceil(n / width);
  for (let r0 = 0; r0 < totalRows; r0 += rowsPerChunk) {
    const rows = Math.min(rowsPerChunk, totalRows - r0), start = r0 * width, len = rows * width;
    const k = e.kernel(`unaryGrad:${name}`, src.unaryGradSource(name), { output: [width, rows] });
    const dims = [width, rows];
    const res = yield* exec(k, e.input(rowSlice(x, start, len, n), dims), e.input(rowSlice(y, start, len, n), dims),
      e.input(rowSlice(gy, start, len, n), dims), p);
    copyOut(res, gx, start, n);
  }
}

// ---------------------------------------------------------------------------------------------
// Pooling and upsampling, chunked along the planes (n·c).

function planeChunk(e: GpujsEngine, perPlane: number, planes: number): number {
  return Math.max(1, Math.min(planes, Math.floor(e.maxChunk / Math.max(1, perPlane))));
}

export function* maxPool2dOp(e: GpujsEngine, x: Float32Array, y: Float32Array, argmax: Int32Array,
                             n: number, c: number, h: number, w: number, k: number): Op {
  const oh = Math.floor(h / k), ow = Math.floor(w / k), planes = n * c;
  if (planes === 0 || oh === 0 || ow === 0) return;
  const chunk = planeChunk(e, h * w, planes);
  const out = new Float32Array(chunk * oh * ow);
  for (let p0 = 0; p0 < planes; p0 += chunk) {
    const pc = Math.min(chunk, planes - p0);
    const xIn = e.input(x.subarray(p0 * h * w, (p0 + pc) * h * w), [w, h, pc]);
    const settings = { output: [ow, oh, pc], constants: { K: k, H: h, W: w } };
    const vals = yield* exec(e.kernel('maxPool', src.maxPoolSource(false), settings), xIn);
    copyOut(vals, y, p0 * oh * ow, (p0 + pc) * oh * ow);
    const args = yield* exec(e.kernel('maxPoolArg', src.maxPoolSource(true), settings), xIn);
    copyOut(args, out, 0);
    // The kernel returns the offset inside the window; the flat index (which may pass 2^24) is built here.
    let o = 0;
    for (let pl = p0; pl < p0 + pc; pl++) {
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++, o++) {
          const off = Math.round(out[o]!), dy = Math.floor(off / k), dx = off - dy * k;
          argmax[pl * oh * ow + oy * ow + ox] = pl * h * w + (oy * k + dy) * w + ox * k + dx;
        }
      }
    }
  }
}

export function* upsampleNearestOp(e: GpujsEngine, x: Float32Array, y: Float32Array, nc: number, h: number, w: number, f: number): Op {
  if (nc === 0 || h === 0 || w === 0) return;
  const per = h * w * f * f, chunk = planeChunk(e, per, nc);
  for (let p0 = 0; p0 < nc; p0 += chunk) {
    const pc = Math.min(chunk, nc - p0);
    const k = e.kernel('upsample', src.upsampleSource, { output: [w * f, h * f, pc], constants: { F: f } });
    const res = yield* exec(k, e.input(x.subarray(p0 * h * w, (p0 + pc) * h * w), [w, h, pc]));
    copyOut(res, y, p0 * per, (p0 + pc) * per);
  }
}

export function* upsampleNearestGradOp(e: GpujsEngine, gy: Float32Array, gx: Float32Array, nc: number, h: number, w: number, f: number): Op {
  if (nc === 0 || h === 0 || w === 0) return;
  const per = h * w * f * f, chunk = planeChunk(e, per, nc);
  for (let p0 = 0; p0 < nc; p0 += chunk) {
    const pc = Math.min(chunk, nc - p0);
    const k = e.kernel('upsampleGrad', src.upsampleGradSource, { output: [w, h, pc], constants: { F: f } });
    const res = yield* exec(k, e.input(gy.subarray(p0 * per, (p0 + pc) * per), [w * f, h * f, pc]));
    copyOut(res, gx, p0 * h * w, (p0 + pc) * h * w);
  }
}

// ---------------------------------------------------------------------------------------------
// BatchNorm on the [outer, c, inner] view.

export function* channelNormalizeOp(e: GpujsEngine, x: Float32Array, mean: Float32Array, invStd: Float32Array, y: Float32Array,
                                    outer: number, c: number, inner: number): Op {
  if (outer === 0 || c === 0 || inner === 0) return;
  const per = c * inner, chunk = planeChunk(e, per, outer);
  const meanIn = e.input(mean.subarray(0, c), [c]), isIn = e.input(invStd.subarray(0, c), [c]);
  for (let o0 = 0; o0 < outer; o0 += chunk) {
    const oc = Math.min(chunk, outer - o0);
    const k = e.kernel('channelNormalize', src.channelNormalizeSource, { output: [inner, c, oc] });
    const res = yield* exec(k, e.input(x.subarray(o0 * per, (o0 + oc) * per), [inner, c, oc]), meanIn, isIn);
    copyOut(res, y, o0 * per, (o0 + oc) * per);
  }
}

/** Whether a whole [outer, c, inner] tensor fits one call (the reductions are not chunked). */
export function fitsOneCall(e: GpujsEngine, outer: number, c: number, inner: number): boolean {
  return outer * c * inner <= e.maxChunk;
}

export function* channelMomentsOp(e: GpujsEngine, x: Float32Array, mean: Float32Array, varB: Float32Array,
                                  outer: number, c: number, inner: number): Op {
  if (c === 0) return;
  const m = outer * inner;
  if (m === 0) { mean.fill(NaN, 0, c); varB.fill(NaN, 0, c); return; }
  const k = e.kernel('channelMoments', src.channelMomentsSource, { output: [c, 2], constants: { OUTER: outer, INNER: inner, M: m } });
  const res = yield* exec(k, e.input(x.subarray(0, m * c), [inner, c, outer]));
  const both = new Float32Array(2 * c);
  copyOut(res, both, 0);
  mean.set(both.subarray(0, c));
  varB.set(both.subarray(c));
}

export function* batchNormGradOp(e: GpujsEngine, gy: Float32Array, xhat: Float32Array, invStd: Float32Array, gx: Float32Array,
                                 outer: number, c: number, inner: number): Op {
  const m = outer * inner;
  if (m === 0 || c === 0) return;
  const dims = [inner, c, outer];
  const gyIn = e.input(gy.subarray(0, m * c), dims), xhIn = e.input(xhat.subarray(0, m * c), dims);
  const sumsK = e.kernel('bnSums', src.bnSumsSource, { output: [c, 2], constants: { OUTER: outer, INNER: inner }, pipeline: true });
  const sums = yield* exec(sumsK, gyIn, xhIn);
  const k = e.kernel('bnGrad', src.bnGradSource, { output: dims, constants: { M: m } });
  const res = yield* exec(k, gyIn, xhIn, e.input(invStd.subarray(0, c), [c]), sums as KernelArg);
  copyOut(res, gx, 0, m * c);
}
