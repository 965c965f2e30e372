/**
 * safetensors: 8-byte little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [start, end]}, "__metadata__": {string: string}}`,
 * then raw little-endian data (offsets relative to the end of the header).
 * We read F32/F64/I64/I32/U8/BOOL and write F32/F64/I64; this is also our model file format,
 * so weights move between this tool and PyTorch (`safetensors.torch.load_file`).
 */
import { writeFileAtomic } from './atomic.ts';
import { readRegularFile, maxInputBytes, type InputFileError } from './bounded.ts';

export type SafeDType = 'F32' | 'F64' | 'I64' | 'I32' | 'U8' | 'BOOL';

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  /** Values widened to float64 (int64 beyond 2^53 is not representable and rejected). */
  data: Float64Array;
}

export interface SafeFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

const BYTES: Record<SafeDType, number> = { F32: 4, F64: 8, I64: 8, I32: 4, U8: 1, BOOL: 1 };

/** Dtypes of the format that this reader does not convert (they are named in the error). */
const KNOWN_UNSUPPORTED: ReadonlySet<string> = new Set([
  'F16', 'BF16', 'I8', 'I16', 'U16', 'U32', 'U64', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'C64',
]);

/** The reference implementation's ceiling on the header (100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

const ENTRY_KEYS: ReadonlySet<string> = new Set(['dtype', 'shape', 'data_offsets']);

export class SafetensorsError extends Error {}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

interface Entry { name: string; dtype: SafeDType; shape: number[]; start: number; end: number }

/**
 * Parses a safetensors file, enforcing the format as the reference implementation does: the
 * header is a UTF-8 JSON object of at most 100 MB that starts with '{'; every entry other than
 * `__metadata__` (string → string) is exactly {dtype, shape, data_offsets} with a known dtype,
 * non-negative integer dimensions and integer offsets; sorted by offset, the tensors tile the
 * data section from 0 to its last byte, with no gap and no overlap, and each byte range is
 * exactly shape × dtype size.
 */
export function parseSafetensors(buf: Uint8Array, source = '<buffer>'): SafeFile {
  const fail = (why: string): never => { throw new SafetensorsError(`${source}: not a valid safetensors file: ${why}`); };
  if (buf.byteLength < 8) fail(`only ${buf.byteLength} bytes`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen64 = view.getBigUint64(0, true);
  if (headerLen64 < 2n) fail(`header length ${headerLen64} is too short for a JSON object`);
  if (headerLen64 > BigInt(MAX_HEADER_BYTES)) fail(`header length ${headerLen64} exceeds the format's limit of ${MAX_HEADER_BYTES} bytes`);
  const headerLen = Number(headerLen64);
  if (headerLen > buf.byteLength - 8) fail(`header length ${headerLen} exceeds file size ${buf.byteLength}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + headerLen));
  } catch {
    return fail('header is not valid UTF-8');
  }
  if (!text.startsWith('{')) fail('header is not a JSON object (it must start with \'{\')');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (!isPlainObject(header)) return fail('header is not a JSON object');
  const base = 8 + headerLen;
  const dataLen = buf.byteLength - base;
  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) fail('__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ value of '${k}' is not a string`);
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    const what = `tensor '${name}'`;
    if (!isPlainObject(entry)) fail(`${what} is not an object with dtype, shape and data_offsets`);
    const e = entry as Record<string, unknown>;
    const extra = Object.keys(e).find((k) => !ENTRY_KEYS.has(k));
    if (extra !== undefined) fail(`${what} has an unknown field '${extra}'`);
    const dtype = e.dtype;
    if (typeof dtype !== 'string') fail(`${what} has no dtype string`);
    if (!Object.hasOwn(BYTES, dtype as string)) {
      if (KNOWN_UNSUPPORTED.has(dtype as string)) fail(`${what} has dtype ${dtype as string}, which is not supported by this reader`);
      fail(`${what} has an unknown dtype ${JSON.stringify(dtype)}`);
    }
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every(isIndex)) fail(`${what} has a shape that is not a list of non-negative integers`);
    let count = 1;
    for (const d of shape as number[]) count *= d;
    if (!Number.isSafeInteger(count * BYTES[dtype as SafeDType])) fail(`${what} has a shape too large to address`);
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isIndex)) {
      fail(`${what} has data_offsets that are not two non-negative integers`);
    }
    const [start, end] = offs as [number, number];
    if (end < start) fail(`${what} has data_offsets [${start}, ${end}] that end before they start`);
    const bytes = count * BYTES[dtype as SafeDType];
    if (end - start !== bytes) {
      fail(`${what} byte range does not match shape ${JSON.stringify(shape)}: ${end - start} bytes for ${count} ${dtype as string} values (${bytes} bytes)`);
    }
    entries.push({ name, dtype: dtype as SafeDType, shape: shape as number[], start, end });
  }
  // The ranges, in offset order, must tile [0, dataLen) exactly.
  const order = [...entries].sort((a, b) => a.start - b.start || a.end - b.end);
  let at = 0;
  for (const t of order) {
    if (t.start < at) fail(`tensor '${t.name}' [${t.start}, ${t.end}) overlaps the tensor before it (which ends at ${at})`);
    if (t.start > at) fail(`tensor '${t.name}' starts at ${t.start}, leaving a gap after byte ${at} of the data section`);
    if (t.end > dataLen) fail(`tensor '${t.name}' runs past the end of the file (truncated?): ends at ${t.end}, the data section has ${dataLen} bytes`);
    at = t.end;
  }
  if (at !== dataLen) fail(`the tensors cover ${at} bytes but the data section has ${dataLen} bytes`);
  const tensors = new Map<string, SafeTensor>();
  for (const e of entries) {
    const count = (e.end - e.start) / BYTES[e.dtype];
    const data = new Float64Array(count);
    const dv = new DataView(buf.buffer, buf.byteOffset + base + e.start, e.end - e.start);
    for (let i = 0; i < count; i++) {
      switch (e.dtype) {
        case 'F32': data[i] = dv.getFloat32(4 * i, true); break;
        case 'F64': data[i] = dv.getFloat64(8 * i, true); break;
        case 'I64': {
          const v = dv.getBigInt64(8 * i, true);
          if (v > 9007199254740991n || v < -9007199254740991n) fail(`tensor '${e.name}': I64 value ${v} at index ${i} cannot be held exactly in a float64`);
          data[i] = Number(v);
          break;
        }
        case 'I32': data[i] = dv.getInt32(4 * i, true); break;
        case 'U8': case 'BOOL': data[i] = dv.getUint8(i); break;
      }
    }
    tensors.set(e.name, { dtype: e.dtype, shape: [...e.shape], data });
  }
  return { tensors, metadata };
}

/** Model files beyond this are refused before reading (default 1 GiB, `SVDD_MAX_INPUT_BYTES`). */
export function readSafetensors(path: string): SafeFile {
  let buf: Buffer;
  try {
    buf = readRegularFile(path, maxInputBytes(), 'a safetensors file');
  } catch (e) {
    throw new SafetensorsError(`cannot read ${path}: ${(e as InputFileError).code ?? (e as Error).message}`);
  }
  return parseSafetensors(buf, path);
}

export interface TensorToWrite { dtype: 'F32' | 'F64' | 'I64'; shape: number[]; data: ArrayLike<number> }

export function serializeSafetensors(tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors[name]!;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new SafetensorsError(`tensor '${name}': shape ${JSON.stringify(t.shape)} needs ${count} values, got ${t.data.length}`);
    const bytes = count * BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const name of names) {
    const t = tensors[name]!;
    for (let i = 0; i < t.data.length; i++) {
      const v = t.data[i]!;
      if (t.dtype === 'F32') { dv.setFloat32(pos, v, true); pos += 4; }
      else if (t.dtype === 'F64') { dv.setFloat64(pos, v, true); pos += 8; }
      else { dv.setBigInt64(pos, BigInt(Math.round(v)), true); pos += 8; }
    }
  }
  return out;
}

export function writeSafetensors(path: string, tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}
