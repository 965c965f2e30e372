// Reading tar archives (the CIFAR-10 tarball) and extracting members from them.
import { basename, join } from 'node:path';
import { writeFileAtomic } from '../../tensor/io/atomic.ts';
import { describeIoError, gunzipBounded, isGzip, maxInputBytes, readRegularFile } from '../../tensor/io/bounded.ts';
import { DataError } from './errors.ts';

export interface TarEntry {
  name: string;
  type: 'file' | 'directory' | 'other';
  data: Uint8Array;
}

function tarString(b: Uint8Array, off: number, len: number): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return Buffer.from(b.subarray(off, end)).toString('utf8');
}

function tarNumber(b: Uint8Array, off: number, len: number): number {
  // GNU base-256 for values that do not fit the octal field (files over 8 GiB).
  if ((b[off]! & 0x80) !== 0) {
    let v = b[off]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
    return v;
  }
  const s = tarString(b, off, len).trim();
  return s === '' ? 0 : parseInt(s, 8);
}

function parsePax(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  const text = Buffer.from(data).toString('utf8');
  let i = 0;
  while (i < text.length) {
    const sp = text.indexOf(' ', i);
    if (sp < 0) break;
    const len = parseInt(text.slice(i, sp), 10);
    if (!(len > 0)) break;
    const rec = text.slice(sp + 1, i + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

/**
 * Minimal tar reader (ustar, with GNU long names and pax path/size overrides), enough for the
 * CIFAR-10 tarball without pulling in a dependency. `label` names the archive in errors.
 */
export function readTar(buf: Uint8Array, label = 'tar archive'): TarEntry[] {
  const entries: TarEntry[] = [];
  let off = 0;
  let longName: string | undefined;
  let pax = new Map<string, string>();
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((v) => v === 0)) return entries;
    const stored = tarNumber(h, 148, 8);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    if (sum !== stored) throw new DataError(`${label}: corrupt tar header at byte ${off} (bad checksum)`);
    const type = String.fromCharCode(h[156]!);
    let size = tarNumber(h, 124, 12);
    const paxSize = pax.get('size');
    if (paxSize !== undefined) size = Number(paxSize);
    let name = tarString(h, 0, 100);
    if (tarString(h, 257, 5) === 'ustar') {
      const prefix = tarString(h, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    name = pax.get('path') ?? longName ?? name;
    const dataStart = off + 512;
    if (dataStart + size > buf.length) {
      throw new DataError(`${label}: truncated: member ${name} needs ${size} bytes but the archive ends first`);
    }
    const data = buf.subarray(dataStart, dataStart + size);
    off = dataStart + Math.ceil(size / 512) * 512;
    if (type === 'L') { longName = tarString(data, 0, data.length); continue; }
    if (type === 'x') { pax = parsePax(data); continue; }
    if (type === 'g') continue;
    longName = undefined;
    pax = new Map();
    const kind = type === '0' || type === '\0' || type === '7' ? 'file' : type === '5' ? 'directory' : 'other';
    entries.push({ name, type: kind, data });
  }
  // No end-of-archive blocks: tolerated only if we stopped exactly at the end of a member.
  if (off !== buf.length) throw new DataError(`${label}: truncated: archive ends inside a header at byte ${off}`);
  return entries;
}

/** Extracts the named members (by base name) of a tar or tar.gz file flat into `dir`. */
export function extractMembers(archive: string, dir: string, members: readonly string[]): string[] {
  let buf: Uint8Array;
  const limit = maxInputBytes();
  try {
    buf = readRegularFile(archive, limit, 'an archive');
  } catch (e) {
    throw new DataError(`${archive}: cannot read: ${(e as Error).message}`, archive);
  }
  if (isGzip(buf)) {
    let r: ReturnType<typeof gunzipBounded>;
    try {
      r = gunzipBounded(buf, limit);
    } catch (e) {
      throw new DataError(`${archive}: ${(e as Error).message}`, archive);
    }
    if (r.overflow) throw new DataError(`${archive}: decompresses to more than ${limit} bytes (SVDD_MAX_INPUT_BYTES)`, archive);
    buf = r.data;
  }
  const byBase = new Map<string, TarEntry>();
  for (const e of readTar(buf, archive)) if (e.type === 'file') byBase.set(basename(e.name), e);
  const missing = members.filter((m) => !byBase.has(m));
  if (missing.length > 0) {
    throw new DataError(`${archive}: archive lacks ${missing.join(', ')}`, archive);
  }
  const written: string[] = [];
  for (const m of members) {
    const out = join(dir, m);
    try {
      writeFileAtomic(out, byBase.get(m)!.data);
    } catch (e) {
      throw new DataError(`${out}: cannot write the extracted file: ${describeIoError(e)}`, out);
    }
    written.push(out);
  }
  return written;
}

