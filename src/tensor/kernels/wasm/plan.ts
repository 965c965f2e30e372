/**
 * What every wasm kernel driver shares: command lists (Plan), work splitting, and the per-shape
 * setup cache (arena layout, gather tables, command lists) replayed with each call's operands bound.
 * All sizes are in floats unless a name ends in a byte address (arena pointers, table entries).
 */
import type { ConvGeom } from '../types.ts';
import { FN, MR, type FnName } from './kernels.ts';
import { Operands } from './operands.ts';
import type { WasmRuntime } from './runtime.ts';

/** Depth of one packed block: a 4×KC A panel plus an 8×KC B panel stay well inside L1. */
export const KC = 256;
/** Target bytes of packed B plus C per conv chunk, so a chunk is still in L2 when the kernel reads it. */
export const CHUNK_BYTES = 512 * 1024;
/** Below this much work, waking a worker costs more than it saves. */
const MIN_PARALLEL_FLOPS = 3e6;

/** Leftover rows up to this many take the single-row kernel; three are cheaper as one padded 4-row tile. */
const ROW_KERNEL_MAX_ROWS = 2;

export const up = (x: number, m: number): number => Math.ceil(x / m) * m;

export class Plan {
  readonly lists: number[][];
  constructor(threads: number) { this.lists = Array.from({ length: threads }, () => []); }
  push(t: number, fn: FnName, ...args: number[]): void {
    if (args.length !== FN[fn].arity) throw new Error(`${fn} takes ${FN[fn].arity} arguments`);
    this.lists[t]!.push(FN[fn].id, ...args);
  }
}

/**
 * From this many rows of C, the 4×8 kernel walks row panels in its outer loop (kernelRows): one A
 * panel stays in L1 while the B panels stream past it. Measured paired at batch 200 (1 / 2 threads),
 * against column panels outer: CIFAR-10 conv layers 0.91–1.01× the time (median 0.97×), the fc
 * layer's GEMMs 0.91–1.01×; with MNIST's 8 and 4 output channels it was 0.97–1.05×, so those keep
 * column panels outer. Each entry of C is the same sum in the same order either way.
 */
const ROWS_OUTER_MIN_M = 16;

/**
 * C[m, n] (+)= packed A · packed B. Whole 4-row panels use the 4×8 kernel; one or two leftover
 * rows use the single-row kernel, which keeps its FMAs busy instead of computing padding rows.
 */
export function pushGemm(plan: Plan, t: number, ap: number, bp: number, c: number, m: number, n: number, kc: number, ldc: number, acc: boolean): void {
  const rest = m % MR, full = rest > 0 && rest <= ROW_KERNEL_MAX_ROWS ? m - rest : m;
  if (full > 0) plan.push(t, full >= ROWS_OUTER_MIN_M ? 'kernelRows' : 'kernel', ap, bp, c, full, n, kc, ldc, acc ? 1 : 0);
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

export function threadsFor(rt: WasmRuntime, flops: number, units: number): number {
  return flops >= MIN_PARALLEL_FLOPS ? Math.max(1, Math.min(rt.threads, units)) : 1;
}

/**
 * What a kernel call sets up that depends only on its shape (and the runtime's thread count):
 * the arena layout (`at`: operand addresses), the gather tables written into the arena, and the
 * command lists of each phase (run in order, each phase's lists in parallel). It is built once
 * per shape and replayed: the arena is shared by every call, so the tables are copied back in
 * (one memcpy each), but no table or plan is recomputed.
 */
interface Setup { top: number; at: Record<string, number>; tables: [number, Int32Array][]; phases: number[][][]; bound?: BoundPhase[] }
/**
 * A phase's command lists as Int32Arrays, with the operand addresses still to bind: list `list[k]`
 * at word `word[k]` holds operand `slot[k]`'s address plus `off[k]`. Replaying a setup then patches
 * those words instead of re-mapping every word of every list (tens of thousands per Winograd call).
 */
interface BoundPhase { lists: Int32Array[]; list: Int32Array; word: Int32Array; slot: Int32Array; off: Int32Array }
/** The table writer handed to a setup's builder: records [at, ints) as a table to restore on replay. */
export type TableFn = (at: number, ints: number) => Int32Array;
/** Setups per runtime: state of each backend instance, keyed by its runtime and collected with it. */
const setups = new WeakMap<WasmRuntime, Map<string, Setup>>();
/** Distinct shapes kept per runtime; a network has a few dozen, so this only bounds pathological use. */
export const MAX_SETUPS = 512;

export function setupFor(rt: WasmRuntime, key: string, build: (table: TableFn) => { at: Record<string, number>; phases: number[][][] }): Setup {
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
export const operandAt = (slot: number): number => VIRTUAL_BASE + slot * VIRTUAL_SLOT;

type Access = 'in' | 'out' | 'inout';
/** One operand of a call: the array, how many floats the kernel touches, and how. */
type Operand = [array: Float32Array, floats: number, access: Access];

function boundPhase(lists: number[][]): BoundPhase {
  const at: [number, number, number, number][] = [];
  const arrays = lists.map((l, li) => Int32Array.from(l, (v, w) => {
    if (v < VIRTUAL_BASE) return v;
    const slot = Math.floor((v - VIRTUAL_BASE) / VIRTUAL_SLOT);
    at.push([li, w, slot, v - VIRTUAL_BASE - slot * VIRTUAL_SLOT]);
    return 0;
  }));
  const col = (i: number): Int32Array => Int32Array.from(at, (e) => e[i]!);
  return { lists: arrays, list: col(0), word: col(1), slot: col(2), off: col(3) };
}

/** Runs a setup's phases with its operands bound (operand i = operands[i], as placed by operandAt(i)). */
export function runPhases(rt: WasmRuntime, s: Setup, operands: Operand[]): void {
  const io = new Operands(rt, s.top);
  const bases = operands.map(([a, n, access]) => (access === 'in' ? io.input(a, n) : access === 'out' ? io.output(a, n) : io.inout(a, n)));
  io.commit();
  s.bound ??= s.phases.map(boundPhase);
  for (const { lists, list, word, slot, off } of s.bound) {
    for (let k = 0; k < word.length; k++) lists[list[k]!]![word[k]!] = bases[slot[k]!]! + off[k]!;
    rt.run(lists);
  }
  io.finish();
}

export const geomKey = (name: string, g: ConvGeom): string =>
  `${name}:${g.n},${g.cin},${g.h},${g.w},${g.cout},${g.kh},${g.kw},${g.stride},${g.pad},${g.oh},${g.ow}`;
