/**
 * safetensors: 8-byte little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [start, end]}, "__metadata__": {string: string}}`,
 * then raw little-endian data (offsets relative to the end of the header).
 * We read F32/F64/I64/I32/U8/BOOL and write F32/F64/I64; this is also our model file format,
 * so weights move between this tool and PyTorch (`safetensors.torch.load_file`).
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic.ts';

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

export class SafetensorsError extends Error {}

export function parseSafetensors(buf: Uint8Array, source = '<buffer>'): SafeFile {
  const fail = (why: string): never => { throw new SafetensorsError(`${source}: not a valid safetensors file: ${why}`); };
  if (buf.byteLength < 8) fail(`only ${buf.byteLength} bytes`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > buf.byteLength - 8) fail(`header length ${headerLen} exceeds file size ${buf.byteLength}`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + headerLen))) as Record<string, unknown>;
  } catch (e) {
    return fail(`header is not JSON (${(e as Error).message})`);
  }
  const base = 8 + headerLen;
  const tensors = new Map<string, SafeTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') { metadata = entry as Record<string, string>; continue; }
    const e = entry as { dtype: SafeDType; shape: number[]; data_offsets: [number, number] };
    if (!(e.dtype in BYTES)) fail(`tensor '${name}' has unsupported dtype ${e.dtype}`);
    const [start, end] = e.data_offsets;
    const count = e.shape.reduce((a, b) => a * b, 1);
    if (end - start !== count * BYTES[e.dtype]) fail(`tensor '${name}' byte range does not match shape ${JSON.stringify(e.shape)}`);
    if (base + end > buf.byteLength) fail(`tensor '${name}' runs past the end of the file (truncated?)`);
    const data = new Float64Array(count);
    const dv = new DataView(buf.buffer, buf.byteOffset + base + start, end - start);
    for (let i = 0; i < count; i++) {
      switch (e.dtype) {
        case 'F32': data[i] = dv.getFloat32(4 * i, true); break;
        case 'F64': data[i] = dv.getFloat64(8 * i, true); break;
        case 'I64': data[i] = Number(dv.getBigInt64(8 * i, true)); break;
        case 'I32': data[i] = dv.getInt32(4 * i, true); break;
        case 'U8': case 'BOOL': data[i] = dv.getUint8(i); break;
      }
    }
    tensors.set(name, { dtype: e.dtype, shape: [...e.shape], data });
  }
  return { tensors, metadata };
}

export function readSafetensors(path: string): SafeFile {
  let buf: Buffer;
  try { buf = readFileSync(path); } catch (e) {
    throw new SafetensorsError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
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
