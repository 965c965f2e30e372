import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, renameSync, unlinkSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { writeFileAtomic } from '../../tensor/io/atomic.ts';
import { describeIoError, gunzipBounded, isGzip, maxInputBytes, readRegularFile, regularFileSize } from '../../tensor/io/bounded.ts';
import { CIFAR_TEST_FILE, CIFAR_TRAIN_FILES } from './cifar.ts';
import { loadRaw, type DatasetName } from './datasets.ts';
import { DataError, describeFsError } from './errors.ts';

export interface RemoteFile {
  /** Name relative to the base URL; also the name it is saved under. */
  name: string;
  /** Expected MD5 of the file as served (hex). */
  md5: string;
  /** Its size in bytes as served: the download is stopped a little past it (see downloadCap). */
  size?: number;
  /**
   * For archives: the members to extract, matched by base name and written flat into the
   * target directory; the archive itself is then deleted unless `keepArchive`.
   */
  extract?: readonly string[];
}

export interface DatasetSource {
  baseUrl: string;
  files: readonly RemoteFile[];
}

/**
 * Official locations, the MD5s torchvision publishes for them and their sizes. Every host is
 * https: Fashion-MNIST's usual address is an S3 website endpoint, which serves plain http only,
 * so the same bucket is read through its https REST endpoint (the MD5 check is what vouches for
 * the bytes either way).
 */
export const DOWNLOAD_SOURCES: Readonly<Record<DatasetName, DatasetSource>> = {
  'mnist': {
    baseUrl: 'https://ossci-datasets.s3.amazonaws.com/mnist/',
    files: [
      { name: 'train-images-idx3-ubyte.gz', md5: 'f68b3c2dcbeaaa9fbdd348bbdeb94873', size: 9912422 },
      { name: 'train-labels-idx1-ubyte.gz', md5: 'd53e105ee54ea40749a09fcbcd1e9432', size: 28881 },
      { name: 't10k-images-idx3-ubyte.gz', md5: '9fb629c4189551a2d022fa330f9573f3', size: 1648877 },
      { name: 't10k-labels-idx1-ubyte.gz', md5: 'ec29112dd5afa0611ce80d1b7f02629c', size: 4542 },
    ],
  },
  'fashion-mnist': {
    baseUrl: 'https://fashion-mnist.s3.eu-central-1.amazonaws.com/',
    files: [
      { name: 'train-images-idx3-ubyte.gz', md5: '8d4fb7e6c68d591d4c3dfef9ec88bf0d', size: 26421880 },
      { name: 'train-labels-idx1-ubyte.gz', md5: '25c81989df183df01b3e8a0aad5dffbe', size: 29515 },
      { name: 't10k-images-idx3-ubyte.gz', md5: 'bef4ecab320f06d8554ea6380940ec79', size: 4422102 },
      { name: 't10k-labels-idx1-ubyte.gz', md5: 'bb300cfdad3c16e7a12a480ee83cd310', size: 5148 },
    ],
  },
  'cifar10': {
    baseUrl: 'https://www.cs.toronto.edu/~kriz/',
    files: [
      {
        name: 'cifar-10-binary.tar.gz',
        md5: 'c32a1d4ab5d03f1284b67883e8d87530',
        size: 170052171,
        extract: [...CIFAR_TRAIN_FILES, CIFAR_TEST_FILE, 'batches.meta.txt'],
      },
    ],
  },
};

/** The cap for a file whose size is not known (custom file tables): 1 GiB. */
export const DEFAULT_DOWNLOAD_CAP = 2 ** 30;

/** The most bytes accepted for `f`: its expected size plus 10% and 64 KiB, else DEFAULT_DOWNLOAD_CAP. */
export function downloadCap(f: RemoteFile): number {
  return f.size !== undefined ? Math.ceil(f.size * 1.1) + 65536 : DEFAULT_DOWNLOAD_CAP;
}

/** Environment variable naming a mirror: a base URL with one folder per dataset (mnist/, fashion-mnist/, cifar10/). */
export const MIRROR_ENV = 'SVDD_DATA_MIRROR';

function httpUrl(text: string, what: string): URL {
  let url: URL | null = null;
  try { url = new URL(text); } catch { /* reported below */ }
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new DataError(`${what} '${text}' is not an http(s) URL (e.g. https://mirror.example.org/datasets/)`);
  }
  return url;
}

const withSlash = (u: string): string => (u.endsWith('/') ? u : `${u}/`);

/**
 * Where `name`'s files are fetched from: `override` (the --base-url flag: the folder holding that
 * dataset's files), else `$SVDD_DATA_MIRROR/<name>/`, else the official host. Invalid URLs and
 * schemes other than http(s) are one-line DataErrors.
 */
export function resolveBaseUrl(name: DatasetName, override?: string): string {
  if (override !== undefined) return withSlash(httpUrl(override, 'base URL').href);
  const mirror = process.env[MIRROR_ENV];
  if (mirror !== undefined && mirror.trim() !== '') {
    return new URL(`${name}/`, withSlash(httpUrl(mirror.trim(), MIRROR_ENV).href)).href;
  }
  return DOWNLOAD_SOURCES[name].baseUrl;
}

export type FileOutcome = 'downloaded' | 'resumed' | 'skipped';

export interface DownloadFileOptions {
  log?: (line: string) => void;
  onProgress?: (received: number, total: number | undefined) => void;
  /** Abort when no data arrives for this long; a stalled connection should not hang forever. */
  idleTimeoutMs?: number;
  /** Stop (and delete the partial file) past this many bytes; default DEFAULT_DOWNLOAD_CAP. */
  maxBytes?: number;
}

export interface DownloadOptions extends DownloadFileOptions {
  /** Overrides the dataset's base URL (--base-url; mirrors, tests); see resolveBaseUrl. */
  baseUrl?: string;
  /** Overrides the dataset's file table (tests). */
  files?: readonly RemoteFile[];
  keepArchive?: boolean;
  /** Load the result with the dataset reader afterwards; default true. */
  verify?: boolean;
}

export interface DownloadResult {
  dir: string;
  files: { name: string; outcome: FileOutcome | 'extracted' }[];
}

export async function md5File(path: string): Promise<string> {
  const hash = createHash('md5');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch (e) {
    throw new DataError(`${path}: cannot read: ${describeFsError(e)}`, path);
  }
  return hash.digest('hex');
}

/** Size of a regular file, -1 when absent; anything else (directory, FIFO, device) is a one-line DataError. */
function sizeOf(path: string): number {
  try {
    return regularFileSize(path);
  } catch (e) {
    throw new DataError(`${path}: ${(e as Error).message}; remove it and run again`, path);
  }
}

/** fh.write may write less than asked (a filling disk) without an error: loop, so every byte lands or an error says why. */
async function writeAll(fh: FileHandle, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off);
    if (bytesWritten <= 0) throw Object.assign(new Error('write made no progress'), { code: 'ENOSPC' });
    off += bytesWritten;
  }
}

function writeError(part: string, e: unknown, hint: string): DataError {
  if (e instanceof DataError) return e;
  return new DataError(`${part}: cannot write the download: ${describeIoError(e)}${hint}`, part);
}

function tryUnlink(path: string): void {
  try { unlinkSync(path); } catch { /* already gone */ }
}

function causeText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = (e as { cause?: unknown }).cause;
  const inner = cause instanceof Error ? ((cause as { code?: string }).code ?? cause.message) : '';
  return inner ? `${e.message} (${inner})` : e.message;
}

type FetchBody = { written: number; expected: number | undefined };

/**
 * One GET, appending to (or replacing) `part`. Returns what was received, or null when the
 * server says the range starts at or past the end, i.e. the part is probably already whole.
 */
async function fetchInto(
  url: string, part: string, start: number, opts: DownloadFileOptions,
): Promise<{ from: number; body: FetchBody } | null> {
  const log = opts.log ?? (() => {});
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  const ctrl = new AbortController();
  let timer = setTimeout(() => ctrl.abort(), idleMs);
  const keepAlive = (): void => { clearTimeout(timer); timer = setTimeout(() => ctrl.abort(), idleMs); };
  const resumeHint = (): string => (existsSync(part) ? `; the partial file ${part} is kept, run again to resume` : '');
  try {
    let res: Response;
    try {
      res = await fetch(url, { headers: start > 0 ? { Range: `bytes=${start}-` } : {}, signal: ctrl.signal });
    } catch (e) {
      const why = ctrl.signal.aborted ? `no response within ${idleMs / 1000} s` : causeText(e);
      throw new DataError(`${url}: download failed: ${why}${resumeHint()}`, part);
    }
    if (res.status === 416 && start > 0) {
      await res.body?.cancel();
      return null;
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new DataError(`${url}: download failed: HTTP ${res.status} ${res.statusText}`.trimEnd(), part);
    }
    let from = 0;
    if (res.status === 206 && start > 0) {
      const m = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
      if (m && Number(m[1]) === start) from = start;
      else {
        await res.body?.cancel();
        throw new DataError(`${url}: server answered the resume request with an unexpected range `
          + `'${res.headers.get('content-range') ?? ''}'; delete ${part} and try again`, part);
      }
    } else if (start > 0) {
      log(`${basename(part)}: server ignored the resume request, downloading from the start`);
    }
    const len = res.headers.get('content-length');
    const expected = len !== null && /^\d+$/.test(len) ? Number(len) : undefined;
    const cap = opts.maxBytes ?? DEFAULT_DOWNLOAD_CAP;
    if (expected !== undefined && from + expected > cap) {
      await res.body?.cancel();
      throw new DataError(`${url}: the server announces ${from + expected} bytes, more than the ${cap} bytes this file can be; not downloaded`, part);
    }
    let fh: FileHandle;
    try {
      fh = await open(part, from > 0 ? 'a' : 'w');
    } catch (e) {
      await res.body?.cancel();
      throw writeError(part, e, '');
    }
    let written = 0;
    let overCap = false;
    try {
      if (res.body) {
        const reader = res.body.getReader();
        for (;;) {
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            chunk = await reader.read();
          } catch (e) {
            const why = ctrl.signal.aborted ? `no data for ${idleMs / 1000} s` : causeText(e);
            throw new DataError(`${url}: download interrupted after ${from + written} bytes: ${why}${resumeHint()}`, part);
          }
          if (chunk.done) break;
          keepAlive();
          if (from + written + chunk.value.length > cap) {
            overCap = true;
            await reader.cancel().catch(() => {});
            break;
          }
          try {
            await writeAll(fh, chunk.value);
          } catch (e) {
            await reader.cancel().catch(() => {});
            throw writeError(part, e, resumeHint());
          }
          written += chunk.value.length;
          opts.onProgress?.(from + written, expected !== undefined ? from + expected : undefined);
        }
      }
    } finally {
      try {
        await fh.close();
      } catch (e) {
        // A full disk can surface only when the file is closed.
        throw writeError(part, e, resumeHint());
      }
    }
    if (overCap) {
      tryUnlink(part);
      throw new DataError(`${url}: the download grew past ${cap} bytes, more than this file can be; stopped and deleted ${part}`, part);
    }
    if (expected !== undefined && written < expected) {
      throw new DataError(`${url}: connection closed after ${from + written} of ${from + expected} bytes${resumeHint()}`, part);
    }
    return { from, body: { written, expected } };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Downloads `url` to `dest` through `dest.part`: resumes an existing part with a Range
 * request, verifies the MD5 and only then renames, so `dest` is either absent or verified.
 * A `dest` already present with the right checksum is left alone.
 */
export async function downloadFile(
  url: string, dest: string, md5: string, opts: DownloadFileOptions = {},
): Promise<FileOutcome> {
  const log = opts.log ?? (() => {});
  const want = md5.toLowerCase();
  if (sizeOf(dest) >= 0) {
    if ((await md5File(dest)) === want) return 'skipped';
    log(`${basename(dest)}: present but its checksum is wrong, downloading it again`);
  }
  const part = `${dest}.part`;
  // A resumed download whose prefix was corrupt fails the checksum; one clean retry fixes it.
  for (let attempt = 0; ; attempt++) {
    const start = Math.max(sizeOf(part), 0);
    const cap = opts.maxBytes ?? DEFAULT_DOWNLOAD_CAP;
    if (start > cap) {
      tryUnlink(part);
      throw new DataError(`${part}: the partial download is ${start} bytes, more than the ${cap} bytes this file can be; deleted it, run again`, part);
    }
    if (start > 0) log(`${basename(dest)}: resuming from byte ${start}`);
    const got = await fetchInto(url, part, start, opts);
    const resumed = got === null || got.from > 0;
    const actual = await md5File(part);
    if (actual === want) {
      try {
        renameSync(part, dest);
      } catch (e) {
        throw new DataError(`${dest}: cannot move the verified download into place: ${describeFsError(e)}`, dest);
      }
      return resumed ? 'resumed' : 'downloaded';
    }
    tryUnlink(part);
    if (resumed && attempt === 0) {
      log(`${basename(dest)}: checksum mismatch after resuming, downloading from the start`);
      continue;
    }
    throw new DataError(
      `${url}: checksum mismatch: expected md5 ${want}, got ${actual}; deleted the bad download ${part}`, dest);
  }
}

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

/**
 * Backend of `svdd data download <dataset> --dir DIR`: fetches the official files into `dir`
 * (created if needed), skipping what is already there and verified, then checks the result
 * loads with the dataset reader.
 */
export async function downloadDataset(
  name: DatasetName, dir: string, opts: DownloadOptions = {},
): Promise<DownloadResult> {
  const source = DOWNLOAD_SOURCES[name];
  if (source === undefined) {
    throw new DataError(`unknown dataset '${String(name)}'; expected one of ${Object.keys(DOWNLOAD_SOURCES).join(', ')}`);
  }
  const target = resolve(dir);
  try {
    mkdirSync(target, { recursive: true });
  } catch (e) {
    throw new DataError(`${target}: cannot create the download directory: ${describeFsError(e)}`, target);
  }
  const log = opts.log ?? (() => {});
  const base = resolveBaseUrl(name, opts.baseUrl);
  if (base !== source.baseUrl) log(`${name}: downloading from ${base} instead of ${source.baseUrl} (the MD5 check stays)`);
  const result: DownloadResult = { dir: target, files: [] };
  for (const f of opts.files ?? source.files) {
    const url = new URL(f.name, base).href;
    const dest = join(target, f.name);
    const fileOpts: DownloadFileOptions = { ...opts, maxBytes: opts.maxBytes ?? downloadCap(f) };
    if (f.extract) {
      // Extracted members are written atomically, so their presence means they are whole.
      if (f.extract.every((m) => existsSync(join(target, m)))) {
        result.files.push({ name: f.name, outcome: 'skipped' });
        continue;
      }
      log(`${f.name}: fetching ${url}`);
      await downloadFile(url, dest, f.md5, fileOpts);
      log(`${f.name}: extracting ${f.extract.join(', ')}`);
      extractMembers(dest, target, f.extract);
      if (!opts.keepArchive) tryUnlink(dest);
      result.files.push({ name: f.name, outcome: 'extracted' });
      continue;
    }
    if (!existsSync(dest)) log(`${f.name}: fetching ${url}`);
    const outcome = await downloadFile(url, dest, f.md5, fileOpts);
    result.files.push({ name: f.name, outcome });
  }
  if (opts.verify ?? true) {
    const raw = loadRaw(name, target);
    log(`${name}: ${raw.train.count} training and ${raw.test.count} test images in ${raw.source}`);
  }
  return result;
}
