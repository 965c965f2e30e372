/**
 * The safetensors reader enforces the format exactly (issue 11, item 4): a JSON object header of
 * sane length, known dtypes, integer shapes and offsets, tensors that tile the data section from 0
 * to its end without gaps or overlaps, shape × dtype size = byte length, `__metadata__` string →
 * string. Everything else is a one-line SafetensorsError, never a stack or wrong weights.
 */
import { expect } from 'chai';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  parseSafetensors, readSafetensors, serializeSafetensors, SafetensorsError,
} from '../src/tensor/io/safetensors.ts';

/** A safetensors file from a header (object or raw JSON text) and a data section. */
export function rawSafetensors(header: unknown, data: Uint8Array, rawJson?: string, headerLen?: bigint): Uint8Array {
  const json = new TextEncoder().encode(rawJson ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const f32 = (...v: number[]): Uint8Array => new Uint8Array(Float32Array.from(v).buffer);
const DATA = f32(1.5, 2.5, 3.5, 4.5);

function rejects(buf: Uint8Array, ...fragments: (string | RegExp)[]): string {
  let err: unknown;
  try { parseSafetensors(buf, 'm.safetensors'); } catch (e) { err = e; }
  expect(err, `accepted: ${fragments.join(' ')}`).to.be.instanceOf(SafetensorsError);
  const msg = (err as Error).message;
  expect(msg).to.match(/^m\.safetensors: not a valid safetensors file: /);
  expect(msg).to.not.contain('\n');
  for (const f of fragments) {
    if (typeof f === 'string') expect(msg).to.contain(f);
    else expect(msg).to.match(f);
  }
  return msg;
}

describe('safetensors: the format is enforced exactly', () => {
  it('reads what it writes, and every fixture written by the Python reference', () => {
    const buf = serializeSafetensors({
      b: { dtype: 'F32', shape: [2, 2], data: [1, 2, 3, 4] },
      a: { dtype: 'F64', shape: [], data: [0.25] },
      c: { dtype: 'I64', shape: [0], data: [] },
    }, { format: 'pt' });
    const f = parseSafetensors(buf);
    expect([...f.tensors.keys()].sort()).to.deep.equal(['a', 'b', 'c']);
    expect(Array.from(f.tensors.get('b')!.data)).to.deep.equal([1, 2, 3, 4]);
    expect(Array.from(f.tensors.get('a')!.data)).to.deep.equal([0.25]);
    expect(f.tensors.get('c')!.shape).to.deep.equal([0]);
    expect(f.metadata).to.deep.equal({ format: 'pt' });
    const root = join(import.meta.dirname, 'fixtures');
    let n = 0;
    for (const sub of readdirSync(root)) {
      if (!statSync(join(root, sub)).isDirectory()) continue;
      for (const file of readdirSync(join(root, sub)).filter((x) => x.endsWith('.safetensors'))) {
        expect(readSafetensors(join(root, sub, file)).tensors.size, file).to.be.greaterThan(0);
        n++;
      }
    }
    expect(n).to.be.greaterThan(10);
  });

  it('accepts tensors listed in any order as long as their ranges tile the data section', () => {
    const f = parseSafetensors(rawSafetensors({
      z: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      a: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    }, DATA));
    expect(Array.from(f.tensors.get('z')!.data)).to.deep.equal([1.5, 2.5]);
    expect(Array.from(f.tensors.get('a')!.data)).to.deep.equal([3.5, 4.5]);
  });

  it('rejects a negative start (which used to load header bytes as weights)', () => {
    rejects(rawSafetensors({ w: { dtype: 'F32', shape: [8], data_offsets: [-32, 0] } }, DATA), "'w'", 'data_offsets');
  });

  it('rejects overlapping, non-contiguous and short-of-the-end tensors', () => {
    rejects(rawSafetensors({
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    }, DATA), 'overlap');
    rejects(rawSafetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, DATA), 'gap');
    rejects(rawSafetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, DATA), '8 bytes', '16');
    rejects(rawSafetensors({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, DATA.subarray(0, 12)), 'end');
    rejects(rawSafetensors({ a: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, DATA), 'data_offsets');
  });

  it('rejects non-integer, unsafe and mistyped shapes and offsets with a SafetensorsError', () => {
    rejects(rawSafetensors({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 6] } }, DATA), 'shape');
    rejects(rawSafetensors({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16.0000001] } }, DATA), 'data_offsets');
    rejects(rawSafetensors({ a: { dtype: 'F32', shape: [-4], data_offsets: [0, 16] } }, DATA), 'shape');
    rejects(rawSafetensors({ a: { dtype: 'F32', shape: ['4'], data_offsets: [0, 16] } }, DATA), 'shape');
    rejects(rawSafetensors({ a: { dtype: 'F32', shape: 4, data_offsets: [0, 16] } }, DATA), 'shape');
    rejects(rawSafetensors({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16, 32] } }, DATA), 'data_offsets');
    rejects(rawSafetensors({ a: { dtype: 'F32', shape: [4], data_offsets: '0,16' } }, DATA), 'data_offsets');
    rejects(rawSafetensors(null, DATA, '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,18446744073709551616]}}'), 'data_offsets');
    rejects(rawSafetensors({ a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 16] } }, DATA), 'shape');
    rejects(rawSafetensors({ a: { dtype: 'F32', data_offsets: [0, 16] } }, DATA), 'shape');
    rejects(rawSafetensors({ a: { shape: [4], data_offsets: [0, 16] } }, DATA), 'dtype');
    rejects(rawSafetensors({ a: { dtype: 'F32', shape: [4] } }, DATA), 'data_offsets');
    rejects(rawSafetensors({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16], extra: 1 } }, DATA), 'extra');
    rejects(rawSafetensors({ a: [1, 2] }, DATA), "'a'");
    rejects(rawSafetensors({ a: null }, DATA), "'a'");
  });

  it('rejects shapes whose element count does not match the byte range', () => {
    rejects(rawSafetensors({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, DATA), 'shape [3]', '16 bytes');
  });

  it('rejects unknown dtypes (including Object.prototype names) and names the known but unsupported ones', () => {
    rejects(rawSafetensors({ a: { dtype: 'toString', shape: [4], data_offsets: [0, 16] } }, DATA), 'dtype');
    rejects(rawSafetensors({ a: { dtype: 'F128', shape: [4], data_offsets: [0, 16] } }, DATA), 'unknown dtype');
    rejects(rawSafetensors({ a: { dtype: 'F16', shape: [8], data_offsets: [0, 16] } }, DATA), 'F16', 'not supported');
  });

  it('rejects headers that are not a JSON object', () => {
    for (const h of ['[1,2]', 'null', '"x"', '42', 'true']) rejects(rawSafetensors(null, DATA, h), 'JSON object');
    rejects(rawSafetensors(null, DATA, '{"a":'), 'JSON');
    rejects(rawSafetensors(null, DATA, ' {}'), 'JSON object');
  });

  it('rejects a header that is not UTF-8', () => {
    const buf = rawSafetensors(null, new Uint8Array(0), '{"a":"__"}');
    buf[8 + 6] = 0xff;
    buf[8 + 7] = 0xfe;
    rejects(buf, 'UTF-8');
  });

  it('bounds the header length', () => {
    rejects(rawSafetensors({}, DATA, undefined, 2n ** 63n), 'header length');
    rejects(rawSafetensors({}, DATA, undefined, 100_000_001n), 'header length');
    rejects(rawSafetensors({}, DATA, undefined, 0n), 'header length');
    rejects(new Uint8Array(7), 'only 7 bytes');
  });

  it('requires __metadata__ to map strings to strings', () => {
    const t = { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } };
    rejects(rawSafetensors({ __metadata__: { a: 1 }, ...t }, DATA), '__metadata__');
    rejects(rawSafetensors({ __metadata__: ['x'], ...t }, DATA), '__metadata__');
    rejects(rawSafetensors({ __metadata__: 'x', ...t }, DATA), '__metadata__');
    rejects(rawSafetensors({ __metadata__: null, ...t }, DATA), '__metadata__');
    expect(parseSafetensors(rawSafetensors({ __metadata__: { k: 'v' }, ...t }, DATA)).metadata).to.deep.equal({ k: 'v' });
  });

  it('rejects int64 values that a float64 cannot hold exactly', () => {
    const big = new Uint8Array(8);
    new DataView(big.buffer).setBigInt64(0, 2n ** 54n + 1n, true);
    rejects(rawSafetensors({ a: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, big), 'I64', 'exactly');
    const ok = new Uint8Array(8);
    new DataView(ok.buffer).setBigInt64(0, -(2n ** 53n) + 1n, true);
    expect(parseSafetensors(rawSafetensors({ a: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, ok)).tensors.get('a')!.data[0])
      .to.equal(-(2 ** 53) + 1);
  });
});
