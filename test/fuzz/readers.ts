/**
 * Property-based and mutation fuzzing (fast-check) of every reader of outside bytes: IDX images
 * and labels, CIFAR-10 batches, gzip, PNG, safetensors, and predict's format sniffing.
 *
 * For every generated input the reader must either return a result that satisfies the format's
 * invariants, or throw one of the project's own errors (DataError, SafetensorsError) with a
 * one-line message. Never another exception (TypeError, RangeError, …), never more memory than
 * the input implies (ArrayBuffer growth during the call is measured), never a hang (each call is
 * timed). Runs and outcomes are counted per target.
 *
 * Fast fixed-seed corpus: `npm test` (test/fuzz-readers.test.ts). Longer runs with a fresh seed:
 * `npm run fuzz` (SVDD_FUZZ_RUNS runs per property, SVDD_FUZZ_SEED to replay a seed).
 */
import fc from 'fast-check';
import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { readCifarBatch, CIFAR_RECORD } from '../../src/svdd/data/cifar.ts';
import { DataError } from '../../src/svdd/data/errors.ts';
import { readMaybeGzip } from '../../src/svdd/data/files.ts';
import { readIdxImages, readIdxLabels } from '../../src/svdd/data/idx.ts';
import { crc32, decodePng, DEFAULT_MAX_PNG_PIXELS } from '../../src/svdd/images.ts';
import { readInputImages } from '../../src/svdd/predict.ts';
import { gunzipBounded, gunzipHead, InputFileError } from '../../src/tensor/io/bounded.ts';
import { parseSafetensors, SafetensorsError, serializeSafetensors } from '../../src/tensor/io/safetensors.ts';
import { ihdr, PNG_SIG, pngChunk } from '../bombs.ts';

/** Runs per property: small and fixed in `npm test`, large in `npm run fuzz`. */
export const RUNS = Number(process.env.SVDD_FUZZ_RUNS ?? 60);
export const LONG = process.env.SVDD_FUZZ_RUNS !== undefined;
export const SEED = process.env.SVDD_FUZZ_SEED !== undefined ? Number(process.env.SVDD_FUZZ_SEED) : LONG ? Date.now() % 2 ** 31 : 11;

/** A call may take at most this long (a hang or a quadratic blow-up fails the property). */
const MAX_MS = 2_000;
/** ArrayBuffer growth allowed during one call beyond 4× what the reader returned. */
const MEMORY_SLACK = 48 * 2 ** 20;
const MAX_MESSAGE = 600;

export interface TargetStats { runs: number; accepted: number; rejected: number; maxMs: number; maxGrowthMB: number; reasons: Map<string, number> }
export const stats = new Map<string, TargetStats>();

function statsFor(target: string): TargetStats {
  let s = stats.get(target);
  if (!s) { s = { runs: 0, accepted: 0, rejected: 0, maxMs: 0, maxGrowthMB: 0, reasons: new Map() }; stats.set(target, s); }
  return s;
}

/** The reason part of a message, without file names and numbers, to tally which checks fire. */
function reasonOf(message: string): string {
  return message.replace(/^.*?(cannot decode PNG \S+|\.safetensors|<buffer>|\/in[-\w.]*): /, '')
    .replace(/'[^']*'/g, "'…'").replace(/\d+/g, 'N').slice(0, 70);
}

function outputBytes(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  let n = 0;
  for (const x of Object.values(v as Record<string, unknown>)) {
    if (ArrayBuffer.isView(x)) n += x.byteLength;
    else if (x instanceof Map) for (const t of x.values()) n += outputBytes(t);
  }
  return n;
}

/**
 * Calls `read` and checks the universal properties; `check` verifies a successful result.
 * Returns normally when the input was handled correctly (accepted or cleanly rejected).
 */
export function probe<T>(target: string, read: () => T, check: (value: T) => void): void {
  const s = statsFor(target);
  s.runs++;
  const before = process.memoryUsage().arrayBuffers;
  const t0 = performance.now();
  let value: T | undefined;
  let error: unknown = null;
  try { value = read(); } catch (e) { error = e; }
  const ms = performance.now() - t0;
  const growth = process.memoryUsage().arrayBuffers - before;
  s.maxMs = Math.max(s.maxMs, ms);
  s.maxGrowthMB = Math.max(s.maxGrowthMB, growth / 2 ** 20);
  expect(ms, `${target}: took ${ms.toFixed(0)} ms`).to.be.below(MAX_MS);
  if (error !== null) {
    if (!(error instanceof DataError || error instanceof SafetensorsError)) {
      const e = error as Error;
      throw new Error(`${target}: non-domain error ${e?.constructor?.name}: ${e?.message}\n${e?.stack ?? ''}`);
    }
    const msg = error.message;
    expect(msg, `${target}: empty message`).to.not.equal('');
    expect(msg, `${target}: multi-line message`).to.not.contain('\n');
    expect(msg.length, `${target}: message too long: ${msg.slice(0, 200)}`).to.be.at.most(MAX_MESSAGE);
    expect(growth, `${target}: rejected input grew memory by ${(growth / 2 ** 20).toFixed(1)} MB (${msg})`).to.be.below(MEMORY_SLACK);
    s.rejected++;
    const r = reasonOf(msg);
    s.reasons.set(r, (s.reasons.get(r) ?? 0) + 1);
    return;
  }
  expect(growth, `${target}: accepted input grew memory by ${(growth / 2 ** 20).toFixed(1)} MB`).to.be.below(MEMORY_SLACK + 4 * outputBytes(value));
  check(value as T);
  s.accepted++;
}

// ---------------------------------------------------------------------------------------------
// Inputs on disk (the file readers take paths).

let tmp = '';
function fileWith(name: string, bytes: Uint8Array): string {
  if (!tmp) tmp = mkdtempSync(join(tmpdir(), 'svdd-fuzz-'));
  const p = join(tmp, name);
  writeFileSync(p, bytes);
  return p;
}
export function fuzzDir(): string { return tmp; }

// ---------------------------------------------------------------------------------------------
// Mutations: applied to valid seed files, raw or after gzip.

const INTERESTING_U32 = [0, 1, 2, 3, 9, 10, 16, 28, 255, 256, 3072, 3073, 10000, 10001, 60000, 0x7fff, 0xffff, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'u32'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'duplicate'; at: number; len: number }
  | { kind: 'append'; bytes: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(0, 1, 0x7f, 0x80, 0xff), fc.nat(255)) }),
  fc.record({ kind: fc.constant('u32' as const), at: fc.nat(), value: fc.constantFrom(...INTERESTING_U32) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 256 }) }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
);

/** Positions biased to the first 64 bytes, where the headers are. */
function position(at: number, len: number): number {
  if (len === 0) return 0;
  return at % 3 === 0 ? (at >> 2) % Math.min(len, 64) : (at >> 2) % len;
}

export function mutate(seed: Uint8Array, muts: readonly Mutation[]): Buffer {
  let b = Buffer.from(seed);
  for (const m of muts) {
    const at = position('at' in m ? m.at : 0, b.length);
    switch (m.kind) {
      case 'flip': if (b.length) b[at] = b[at]! ^ (1 << m.bit); break;
      case 'byte': if (b.length) b[at] = m.value; break;
      case 'u32': if (b.length >= 4) b.writeUInt32BE(m.value >>> 0, Math.min(at, b.length - 4)); break;
      case 'truncate': b = b.subarray(0, at); break;
      case 'insert': b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]); break;
      case 'delete': b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)]); break;
      case 'duplicate': b = Buffer.concat([b.subarray(0, at + m.len), b.subarray(at)]); break;
      case 'append': b = Buffer.concat([b, m.bytes]); break;
    }
  }
  return b;
}

/** A mutated seed: mutations on the raw bytes, then optionally gzip, then optionally mutations on the gzip bytes. */
export function mutated(seeds: readonly Uint8Array[]): fc.Arbitrary<Buffer> {
  return fc.record({
    seed: fc.nat(seeds.length - 1),
    raw: fc.array(mutation, { maxLength: 4 }),
    gzip: fc.boolean(),
    zipped: fc.array(mutation, { maxLength: 3 }),
  }).map(({ seed, raw, gzip, zipped }) => {
    const m = mutate(seeds[seed]!, raw);
    return gzip ? mutate(gzipSync(m), zipped) : m;
  });
}

// ---------------------------------------------------------------------------------------------
// Seeds and structured generators per format.

function be32(...v: number[]): Buffer {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((x, i) => b.writeUInt32BE(x >>> 0, 4 * i));
  return b;
}

function filled(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x & 0xff; }
  return b;
}

export const idxImageSeeds = [
  Buffer.concat([be32(0x803, 3, 28, 28), filled(3 * 784, 1)]),
  Buffer.concat([be32(0x803, 2, 4, 5), filled(40, 2)]),
  Buffer.concat([be32(0x803, 1, 1, 1), Buffer.from([7])]),
];
export const idxLabelSeeds = [
  Buffer.concat([be32(0x801, 5), Buffer.from([0, 1, 9, 3, 4])]),
  Buffer.concat([be32(0x801, 1), Buffer.from([2])]),
];

/** An IDX file from header fields that are sometimes right and sometimes interesting. */
export const idxStructured: fc.Arbitrary<Buffer> = fc.record({
  magic: fc.oneof(fc.constantFrom(0x803, 0x801, 0x803, 0x801), fc.constantFrom(...INTERESTING_U32)),
  count: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constantFrom(...INTERESTING_U32)),
  rows: fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constantFrom(...INTERESTING_U32)),
  cols: fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constantFrom(...INTERESTING_U32)),
  delta: fc.oneof(fc.constant(0), fc.integer({ min: -20, max: 20 })),
  labelMax: fc.constantFrom(9, 9, 255),
  fill: fc.nat(),
  gzip: fc.boolean(),
}).map(({ magic, count, rows, cols, delta, labelMax, fill, gzip }) => {
  const images = magic !== 0x801;
  const header = images ? be32(magic, count, rows, cols) : be32(magic, count);
  const want = images ? count * rows * cols : count;
  const len = Math.max(0, Math.min(want, 1 << 16) + delta);
  const body = filled(len, fill);
  if (!images) for (let i = 0; i < body.length; i++) body[i] = body[i]! % (labelMax + 1);
  const raw = Buffer.concat([header, body]);
  return gzip ? gzipSync(raw) : raw;
});

export const cifarSeeds = [
  (() => { const b = filled(2 * CIFAR_RECORD, 3); b[0] = 6; b[CIFAR_RECORD] = 9; return b; })(),
  (() => { const b = filled(CIFAR_RECORD, 4); b[0] = 0; return b; })(),
];

export const cifarStructured: fc.Arbitrary<Buffer> = fc.record({
  labels: fc.array(fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
  delta: fc.oneof(fc.constant(0), fc.constantFrom(-1, 1, -3072, 3072, 3073)),
  fill: fc.nat(),
  gzip: fc.boolean(),
}).map(({ labels, delta, fill, gzip }) => {
  const b = filled(Math.max(0, labels.length * CIFAR_RECORD + delta), fill);
  labels.forEach((l, i) => { if (i * CIFAR_RECORD < b.length) b[i * CIFAR_RECORD] = l; });
  return gzip ? gzipSync(b) : b;
});

/** gzip streams: valid ones of random content, with long header fields, several members, or garbage. */
export const gzipStructured: fc.Arbitrary<Buffer> = fc.record({
  content: fc.uint8Array({ maxLength: 4096 }),
  zeros: fc.nat(200_000),
  fname: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 9000 })),
  members: fc.integer({ min: 1, max: 3 }),
  tail: fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ minLength: 1, maxLength: 16 })),
}).map(({ content, zeros, fname, members, tail }) => {
  const one = gzipSync(Buffer.concat([content, Buffer.alloc(zeros)]));
  let first = one;
  if (fname > 0) {
    const h = Buffer.from(one.subarray(0, 10));
    h[3] = h[3]! | 8;
    first = Buffer.concat([h, Buffer.alloc(fname, 0x61), Buffer.from([0]), one.subarray(10)]);
  }
  return Buffer.concat([first, ...Array.from({ length: members - 1 }, () => one), tail]);
});

function pngOf(width: number, height: number, colorType: 0 | 2 | 4 | 6, bitDepth: 8 | 16, fill: number): Buffer {
  const png = new PNG({ width, height });
  png.data = filled(4 * width * height, fill);
  return PNG.sync.write(png, { colorType, bitDepth, inputHasAlpha: true });
}

/** Recomputes every chunk's CRC, so mutations reach the decoder instead of stopping at the CRC check. */
export function repairPngCrcs(buf: Buffer): Buffer {
  const b = Buffer.from(buf);
  let off = 8;
  while (off + 12 <= b.length) {
    const len = b.readUInt32BE(off);
    if (off + 12 + len > b.length) break;
    b.writeUInt32BE(crc32(b.subarray(off + 4, off + 8 + len)), off + 8 + len);
    off += 12 + len;
  }
  return b;
}

export const pngSeeds = [
  pngOf(28, 28, 0, 8, 1), pngOf(5, 3, 2, 8, 2), pngOf(4, 4, 6, 16, 3), pngOf(3, 2, 4, 8, 4), pngOf(32, 32, 2, 8, 5),
];

const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;
const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** Scanline rows (each with its filter byte) of an image, for every pass when interlaced. */
function pngRows(width: number, height: number, colorType: number, depth: number, interlaced: boolean): number[] {
  const bpp = (SAMPLES[colorType] ?? 1) * depth;
  const row = (w: number): number => Math.ceil((w * bpp) / 8) + 1;
  if (!interlaced) return Array.from({ length: height }, () => row(width));
  const rows: number[] = [];
  for (const [x0, y0, dx, dy] of ADAM7) {
    const pw = Math.ceil((width - x0) / dx);
    const ph = Math.ceil((height - y0) / dy);
    if (pw > 0 && ph > 0) for (let i = 0; i < ph; i++) rows.push(row(pw));
  }
  return rows;
}

/** PNGs from header fields (valid and not), with image data of the right size or not, optional PLTE/tRNS/ancillary chunks. */
export const pngStructured: fc.Arbitrary<Buffer> = fc.record({
  width: fc.oneof(fc.integer({ min: 1, max: 24 }), fc.constantFrom(0, 4097, 0x7fffffff, 0x80000000, 0xffffffff)),
  height: fc.oneof(fc.integer({ min: 1, max: 24 }), fc.constantFrom(0, 4097, 0x7fffffff, 0xffffffff)),
  colorType: fc.oneof(fc.constantFrom(0, 2, 3, 4, 6), fc.nat(255)),
  depth: fc.oneof(fc.constantFrom(1, 2, 4, 8, 16), fc.nat(255)),
  interlace: fc.constantFrom(0, 0, 1, 2),
  delta: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: -8, max: 8 })),
  filter: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 6 })),
  plte: fc.integer({ min: -1, max: 256 }),
  trns: fc.integer({ min: -1, max: 300 }),
  ancillary: fc.boolean(),
  splitIdat: fc.integer({ min: 1, max: 3 }),
  fill: fc.nat(),
}).map(({ width, height, colorType, depth, interlace, delta, filter, plte, trns, ancillary, splitIdat, fill }) => {
  const rows = width * height <= 4096 && width <= 4096 && height <= 4096 ? pngRows(width, height, colorType, depth, interlace === 1) : [64];
  const total = rows.reduce((a, b) => a + b, 0);
  const raw = filled(Math.max(0, total + delta), fill);
  let at = 0;
  for (const r of rows) { if (at < raw.length) raw[at] = filter === 0 ? raw[at]! % 5 : filter; at += r; }
  const z = deflateSync(raw);
  const parts = [PNG_SIG, ihdr(width, height, depth, colorType, interlace)];
  if (plte >= 0) parts.push(pngChunk('PLTE', filled(3 * plte, fill + 1)));
  if (trns >= 0) parts.push(pngChunk('tRNS', filled(trns, fill + 2)));
  if (ancillary) parts.push(pngChunk('tEXt', Buffer.from('Comment\0fuzz')));
  const step = Math.ceil(z.length / splitIdat) || 1;
  for (let i = 0; i < z.length; i += step) parts.push(pngChunk('IDAT', z.subarray(i, i + step)));
  if (z.length === 0) parts.push(pngChunk('IDAT', z));
  parts.push(pngChunk('IEND', new Uint8Array(0)));
  return Buffer.concat(parts);
});

export const safetensorsSeeds = [
  Buffer.from(serializeSafetensors({
    'conv1.weight': { dtype: 'F32', shape: [2, 1, 2, 2], data: Array.from({ length: 8 }, (_, i) => i / 3) },
    'bn.num_batches_tracked': { dtype: 'I64', shape: [], data: [7] },
    'c': { dtype: 'F64', shape: [3], data: [0.5, -1, 2] },
  }, { format: 'pt' })),
  Buffer.from(serializeSafetensors({ x: { dtype: 'F32', shape: [0], data: [] } })),
];

const DTYPES = ['F32', 'F64', 'I64', 'I32', 'U8', 'BOOL', 'F16', 'BF16', 'X', 'toString', '__proto__', ''];
const BYTES: Record<string, number> = { F32: 4, F64: 8, I64: 8, I32: 4, U8: 1, BOOL: 1, F16: 2, BF16: 2 };

/** safetensors files from generated headers: shapes and offsets right or perturbed, odd names, metadata of any type. */
export const safetensorsStructured: fc.Arbitrary<Buffer> = fc.record({
  tensors: fc.array(fc.record({
    name: fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__metadata__', '__proto__', 'constructor', 'toString', 'w')),
    dtype: fc.constantFrom(...DTYPES),
    shape: fc.oneof(
      fc.array(fc.nat(4), { maxLength: 3 }),
      fc.array(fc.oneof(fc.nat(4), fc.constantFrom(-1, 1.5, 2 ** 53, 1e300)), { maxLength: 3 }),
      fc.constantFrom<unknown>(null, 3, '3', [[1]], {}),
    ),
    offsets: fc.constantFrom('exact', 'exact', 'exact', 'shift', 'overlap', 'negative', 'float', 'gap', 'swap', 'huge', 'missing', 'string'),
    extra: fc.oneof(fc.constant(undefined), fc.constant(undefined), fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 1 })),
  }), { maxLength: 4 }),
  metadata: fc.oneof(fc.constant(undefined), fc.dictionary(fc.string({ maxLength: 4 }), fc.oneof(fc.string({ maxLength: 4 }), fc.integer(), fc.constant(null)), { maxKeys: 2 }), fc.constantFrom<unknown>(null, 'x', [1])),
  headerLen: fc.constantFrom<number | bigint>(0, 0, 0, 0, 1, -1, -2, 2n ** 40n, 2n ** 63n, 100_000_001n),
  dataDelta: fc.constantFrom(0, 0, 0, 0, 1, -1, 8, -8),
  pad: fc.nat(9),
  valueBytes: fc.nat(),
}).map(({ tensors, metadata, headerLen, dataDelta, pad, valueBytes }) => {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  let at = 0;
  for (const t of tensors) {
    const count = Array.isArray(t.shape) ? (t.shape as number[]).reduce((a, b) => a * (typeof b === 'number' ? b : 1), 1) : 1;
    const n = Number.isSafeInteger(count) && count >= 0 && count < 4096 ? count * (Object.hasOwn(BYTES, t.dtype) ? BYTES[t.dtype]! : 4) : 16;
    let off: unknown = [at, at + n];
    switch (t.offsets) {
      case 'shift': off = [at + 4, at + 4 + n]; break;
      case 'overlap': off = [Math.max(0, at - 4), Math.max(0, at - 4) + n]; break;
      case 'negative': off = [at - 32, at - 32 + n]; break;
      case 'float': off = [at + 0.5, at + n + 0.5]; break;
      case 'gap': off = [at + 8, at + 8 + n]; at += 8; break;
      case 'swap': off = [at + n, at]; break;
      case 'huge': off = [at, 2 ** 60]; break;
      case 'missing': off = undefined; break;
      case 'string': off = `${at},${at + n}`; break;
    }
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: off, ...(t.extra ?? {}) };
    at += n;
  }
  const json = Buffer.from(JSON.stringify(header) + ' '.repeat(pad));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(typeof headerLen === 'bigint' ? headerLen : BigInt(Math.max(0, json.length + headerLen)));
  return Buffer.concat([len, json, filled(Math.max(0, at + dataDelta), valueBytes)]);
});

// ---------------------------------------------------------------------------------------------
// Per-target checks of accepted results.

export function checkIdxImages(r: ReturnType<typeof readIdxImages>): void {
  expect(r.count).to.be.at.least(1);
  expect(r.rows).to.be.at.least(1);
  expect(r.cols).to.be.at.least(1);
  expect(r.images.length).to.equal(r.count * r.rows * r.cols);
}

export function checkIdxLabels(r: ReturnType<typeof readIdxLabels>): void {
  expect(r.labels.length).to.equal(r.count);
  expect(r.labels.every((l) => l <= 9)).to.equal(true);
}

export function checkCifar(r: ReturnType<typeof readCifarBatch>): void {
  expect(r.count).to.be.within(1, 10000);
  expect(r.images.length).to.equal(r.count * 3072);
  expect(r.labels.length).to.equal(r.count);
  expect(r.labels.every((l) => l <= 9)).to.equal(true);
}

export function checkPng(r: ReturnType<typeof decodePng>): void {
  expect(r.width * r.height).to.be.within(1, DEFAULT_MAX_PNG_PIXELS);
  expect(r.data.length).to.equal(r.channels * r.width * r.height);
  for (const v of r.data) if (!(v >= 0 && v <= 1)) throw new Error(`pixel value ${v} outside [0, 1]`);
}

/** An accepted safetensors file is checked against the format's rules independently of the parser. */
export function checkSafetensors(bytes: Uint8Array, r: ReturnType<typeof parseSafetensors>): void {
  const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  expect([...r.tensors.keys()].sort()).to.deep.equal(names.sort());
  const ranges = names.map((k) => header[k]!.data_offsets).sort((a, b) => a[0] - b[0]);
  let at = 0;
  for (const [s, e] of ranges) {
    expect(Number.isSafeInteger(s) && Number.isSafeInteger(e)).to.equal(true);
    expect(s).to.equal(at);
    at = e;
  }
  expect(8 + n + at).to.equal(bytes.length);
  for (const k of names) {
    const t = r.tensors.get(k)!;
    const h = header[k]!;
    expect(t.data.length).to.equal(h.shape.reduce((a, b) => a * b, 1));
    expect(t.data.length * BYTES[h.dtype]!).to.equal(h.data_offsets[1] - h.data_offsets[0]);
  }
  const meta = header.__metadata__ as unknown;
  if (meta !== undefined) for (const v of Object.values(meta as object)) expect(v).to.be.a('string');
}

// ---------------------------------------------------------------------------------------------
// The targets: one function per reader that takes generated bytes.

export const targets = {
  'IDX images': (b: Uint8Array): void => probe('IDX images', () => readIdxImages(fileWith('in-idx3', b)), checkIdxImages),
  'IDX labels': (b: Uint8Array): void => probe('IDX labels', () => readIdxLabels(fileWith('in-idx1', b)), checkIdxLabels),
  'CIFAR batch': (b: Uint8Array): void => probe('CIFAR batch', () => readCifarBatch(fileWith('in.bin', b)), checkCifar),
  'PNG': (b: Uint8Array): void => probe('PNG', () => decodePng(b, 'in.png'), checkPng),
  'safetensors': (b: Uint8Array): void => probe('safetensors', () => parseSafetensors(b, 'in.safetensors'), (r) => checkSafetensors(b, r)),
  'gzip (readMaybeGzip)': (b: Uint8Array): void => probe('gzip (readMaybeGzip)', () => readMaybeGzip(fileWith('in.gz', b), { maxBytes: 8 * 2 ** 20 }), (r) => {
    expect(r.length).to.be.at.most(8 * 2 ** 20);
  }),
  'gzip (head, bounded)': (b: Uint8Array): void => probe('gzip (head, bounded)', () => {
    try {
      const head = gunzipHead(b, 16);
      const all = gunzipBounded(b, 4 * 2 ** 20);
      if (!all.overflow) expect(Buffer.from(head).equals(Buffer.from(all.data.subarray(0, 16)))).to.equal(true, 'head differs from the start of the content');
      return head;
    } catch (e) {
      if (e instanceof InputFileError) throw new DataError(e.message);
      throw e;
    }
  }, (r) => { expect(r.length).to.be.at.most(16); }),
  'predict input (MNIST model)': (b: Uint8Array): void => probe('predict input (MNIST model)', () => readInputImages(fileWith('in-predict', b), [1, 28, 28]), (r) => {
    expect(r.images.length).to.equal(r.count * 784);
    expect(r.names.length).to.equal(r.count);
  }),
  'predict input (CIFAR model)': (b: Uint8Array): void => probe('predict input (CIFAR model)', () => readInputImages(fileWith('in-predict', b), [3, 32, 32]), (r) => {
    expect(r.images.length).to.equal(r.count * 3072);
  }),
} as const;

export type TargetName = keyof typeof targets;

/** The generators of each target: structured (property-based) and mutation-based. */
export const campaigns: { target: TargetName; kind: string; arb: fc.Arbitrary<Buffer> }[] = [
  { target: 'IDX images', kind: 'structured', arb: idxStructured },
  { target: 'IDX images', kind: 'mutation', arb: mutated(idxImageSeeds) },
  { target: 'IDX labels', kind: 'structured', arb: idxStructured },
  { target: 'IDX labels', kind: 'mutation', arb: mutated(idxLabelSeeds) },
  { target: 'CIFAR batch', kind: 'structured', arb: cifarStructured },
  { target: 'CIFAR batch', kind: 'mutation', arb: mutated(cifarSeeds) },
  { target: 'PNG', kind: 'structured', arb: pngStructured },
  { target: 'PNG', kind: 'mutation', arb: mutated(pngSeeds).filter((b) => b[0] !== 0x1f) },
  { target: 'PNG', kind: 'mutation, CRCs repaired', arb: fc.array(mutation, { minLength: 1, maxLength: 4 }).chain((m) => fc.nat(pngSeeds.length - 1).map((i) => repairPngCrcs(mutate(pngSeeds[i]!, m)))) },
  { target: 'safetensors', kind: 'structured', arb: safetensorsStructured },
  { target: 'safetensors', kind: 'mutation', arb: mutated(safetensorsSeeds).filter((b) => b[0] !== 0x1f || b.length < 8) },
  { target: 'gzip (readMaybeGzip)', kind: 'structured', arb: gzipStructured },
  { target: 'gzip (head, bounded)', kind: 'structured', arb: gzipStructured },
  { target: 'gzip (head, bounded)', kind: 'mutation', arb: mutated([gzipSync(idxImageSeeds[0]!), gzipSync(cifarSeeds[0]!)]) },
  { target: 'predict input (MNIST model)', kind: 'mutation', arb: mutated([...idxImageSeeds, pngSeeds[0]!, cifarSeeds[0]!]) },
  { target: 'predict input (CIFAR model)', kind: 'mutation', arb: mutated([cifarSeeds[0]!, pngSeeds[4]!, idxImageSeeds[0]!]) },
];

/** Runs one campaign; fast-check shrinks and reports the seed and path of any failure. */
export function runCampaign(c: (typeof campaigns)[number], runs = RUNS, seed = SEED): void {
  fc.assert(fc.property(c.arb, (bytes) => { targets[c.target](bytes); }), { numRuns: runs, seed, endOnFailure: !LONG });
}

export function summary(): string {
  const lines = [`fuzz seed ${SEED}, ${RUNS} runs per campaign`];
  lines.push(`${'target'.padEnd(30)} ${'runs'.padStart(7)} ${'accepted'.padStart(9)} ${'rejected'.padStart(9)} ${'max ms'.padStart(7)} ${'max MB'.padStart(7)}`);
  let total = 0;
  for (const [name, s] of stats) {
    total += s.runs;
    lines.push(`${name.padEnd(30)} ${String(s.runs).padStart(7)} ${String(s.accepted).padStart(9)} ${String(s.rejected).padStart(9)} ${s.maxMs.toFixed(1).padStart(7)} ${s.maxGrowthMB.toFixed(1).padStart(7)}`);
  }
  lines.push(`${'total'.padEnd(30)} ${String(total).padStart(7)}`);
  return lines.join('\n');
}

export function reasons(): string {
  const out: string[] = [];
  for (const [name, s] of stats) {
    out.push(`${name}:`);
    for (const [r, n] of [...s.reasons].sort((a, b) => b[1] - a[1]).slice(0, 12)) out.push(`  ${String(n).padStart(6)}  ${r}`);
  }
  return out.join('\n');
}
