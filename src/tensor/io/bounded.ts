/**
 * Reading outside bytes without trusting them: only regular files (a FIFO would block, a device
 * such as /dev/zero never ends), never more bytes than a limit the caller derives from the format,
 * and gzip decompression bounded by the size the format implies (zlib's `maxOutputLength`).
 *
 * Errors are `InputFileError`s with a short reason and no path; each reader wraps them in its own
 * error class, with the file name in front, so the CLI prints one line.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { kMaxLength } from 'node:buffer';
import { gunzipSync, constants as zc } from 'node:zlib';

export class InputFileError extends Error {
  override readonly name = 'InputFileError';
  /** The errno code of a file-system error (ENOENT, EISDIR, …), when there was one. */
  readonly code: string | undefined;

  constructor(message: string, code?: string) {
    super(message);
    this.code = code;
  }
}

/** Default ceiling for one input file (raw or decompressed): 1 GiB; `SVDD_MAX_INPUT_BYTES` overrides it. */
export const DEFAULT_MAX_INPUT_BYTES = 2 ** 30;

/** The largest positive safe integer a limit may take (and what zlib accepts as `maxOutputLength`). */
const LIMIT_CEILING = 2 ** 52;

/**
 * A positive integer limit from the environment variable `name` (decimal, optionally with a
 * K/M/G suffix in powers of 1024), or `fallback` when it is unset or empty.
 */
export function limitFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const m = /^\s*(\d+)\s*([kmg]?)i?b?\s*$/i.exec(raw);
  const scale = m ? ({ '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 } as Record<string, number>)[m[2]!.toLowerCase()]! : 0;
  const v = m ? Number(m[1]) * scale : NaN;
  if (!(Number.isSafeInteger(v) && v >= 1 && v <= LIMIT_CEILING)) {
    throw new InputFileError(`environment variable ${name}='${raw}' is not a positive size (e.g. 1073741824, 512M or 2G)`);
  }
  return v;
}

/** The byte limit for one input file: `SVDD_MAX_INPUT_BYTES`, default 1 GiB. */
export function maxInputBytes(): number {
  return limitFromEnv('SVDD_MAX_INPUT_BYTES', DEFAULT_MAX_INPUT_BYTES);
}

/** Node's fs error codes in words (short, one line). */
export function describeIoError(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOENT': return 'file not found';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'EISDIR': return 'is a directory, expected a file';
    case 'ENOTDIR': return 'a parent path is not a directory';
    case 'ENOSPC': return 'no space left on the device';
    case 'EDQUOT': return 'disk quota exceeded';
    case 'EROFS': return 'read-only file system';
    case 'ELOOP': return 'too many levels of symbolic links';
    case 'ENAMETOOLONG': return 'file name too long';
    case 'EMFILE': case 'ENFILE': return 'too many open files';
    case 'EIO': return 'input/output error';
    default: {
      const msg = e instanceof Error ? e.message : String(e);
      return msg.split('\n')[0]!;
    }
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function refuseIrregular(st: Stats): void {
  if (st.isFile()) return;
  if (st.isDirectory()) throw new InputFileError('is a directory, expected a file', 'EISDIR');
  throw new InputFileError(`is ${kindOf(st)}, not a regular file; only regular files are read`);
}

function tooBig(size: number, maxBytes: number, what: string): InputFileError {
  return new InputFileError(`is ${size} bytes, more than the ${maxBytes}-byte limit for ${what}`);
}

/**
 * Reads a regular file of at most `maxBytes` bytes. The path is stat'ed first (following
 * symlinks, so a link to /dev/zero is refused as a device) and then opened non-blocking and
 * checked again through the descriptor, so a FIFO swapped in between cannot block the read.
 * At most the size seen by fstat is read: a file that grows meanwhile cannot exhaust memory.
 */
export function readRegularFile(path: string, maxBytes: number, what = 'this kind of file'): Buffer {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw new InputFileError(describeIoError(e), (e as { code?: string }).code);
  }
  refuseIrregular(st);
  if (st.size > maxBytes) throw tooBig(st.size, maxBytes, what);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new InputFileError(describeIoError(e), (e as { code?: string }).code);
  }
  try {
    const fst = fstatSync(fd);
    refuseIrregular(fst);
    if (fst.size > maxBytes) throw tooBig(fst.size, maxBytes, what);
    const buf = Buffer.allocUnsafe(fst.size);
    let at = 0;
    while (at < buf.length) {
      const n = readSync(fd, buf, at, buf.length - at, at);
      if (n === 0) break;
      at += n;
    }
    return at === buf.length ? buf : buf.subarray(0, at);
  } catch (e) {
    if (e instanceof InputFileError) throw e;
    throw new InputFileError(describeIoError(e), (e as { code?: string }).code);
  } finally {
    closeSync(fd);
  }
}

/**
 * The size of the regular file at `path` (symlinks followed), or -1 when nothing is there; an
 * InputFileError for a directory, FIFO, device or socket, or when it cannot be examined.
 */
export function regularFileSize(path: string): number {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return -1;
    throw new InputFileError(describeIoError(e), (e as { code?: string }).code);
  }
  refuseIrregular(st);
  return st.size;
}

export function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

/**
 * deflate cannot expand one input byte into more than 1032 output bytes (zlib's documented
 * maximum ratio); with some slack this bounds what a gzip stream of a given size can hold, so a
 * header that claims more is refused before anything is decompressed.
 */
export const GZIP_MAX_RATIO = 1100;

export function gzipCanHold(compressedBytes: number, claimedBytes: number): boolean {
  return claimedBytes <= compressedBytes * GZIP_MAX_RATIO + 1024;
}

function gzipWhy(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0]!;
}

/** Output allowed beyond `want` while looking for a header; one input byte cannot produce more than a few KiB. */
const HEAD_SLACK = 2 ** 20;

/**
 * The first `want` decompressed bytes of a gzip stream (fewer when the whole stream is shorter),
 * decompressing only a prefix of the compressed data and never more than `want` + 1 MiB of
 * output. Usually the first 4 KiB of input suffice; a long gzip header (file name, comment,
 * extra field) or leading empty blocks are handled by searching for a prefix whose output lies
 * between `want` and the limit (output grows monotonically with the prefix).
 */
export function gunzipHead(buf: Uint8Array, want: number): Uint8Array {
  const limit = want + HEAD_SLACK;
  const attempt = (end: number): Buffer | null => {
    try {
      return gunzipSync(buf.subarray(0, end), { finishFlush: zc.Z_SYNC_FLUSH, maxOutputLength: limit });
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return null;
      throw new InputFileError(`corrupt gzip data (${gzipWhy(e)})`);
    }
  };
  let lo = 0; // a prefix known to give fewer than `want` bytes
  let hi = buf.length + 1; // a prefix known to give more than `limit` bytes (none yet)
  let end = Math.min(4096, buf.length);
  for (let step = 0; step < 64; step++) {
    const out = attempt(end);
    if (out === null) hi = end;
    else if (out.length >= want || end === buf.length) return out.subarray(0, Math.min(want, out.length));
    else lo = end;
    end = hi > buf.length ? Math.min(buf.length, end * 4) : Math.floor((lo + hi) / 2);
    if (end <= lo) break;
  }
  throw new InputFileError('corrupt gzip data (cannot find the start of the content)');
}

export type GunzipResult = { data: Uint8Array; overflow: false } | { data: null; overflow: true };

/**
 * Decompresses a whole gzip stream, stopping as soon as the output would exceed `maxBytes`
 * (then `overflow` is true and nothing is returned). Corrupt data throws an InputFileError.
 */
export function gunzipBounded(buf: Uint8Array, maxBytes: number): GunzipResult {
  const limit = Math.max(1, Math.min(Math.floor(maxBytes), kMaxLength));
  try {
    const out = gunzipSync(buf, { maxOutputLength: limit });
    return { data: new Uint8Array(out.buffer, out.byteOffset, out.byteLength), overflow: false };
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return { data: null, overflow: true };
    throw new InputFileError(`corrupt gzip data (${gzipWhy(e)})`);
  }
}
