// One file over HTTP(S): resumed with Range requests, capped in size, MD5-checked before it is moved into place.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, renameSync, unlinkSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { describeIoError, regularFileSize } from '../../tensor/io/bounded.ts';
import { DataError, describeFsError } from './errors.ts';

/** The cap for a file whose size is not known (custom file tables): 1 GiB. */
export const DEFAULT_DOWNLOAD_CAP = 2 ** 30;

export type FileOutcome = 'downloaded' | 'resumed' | 'skipped';

export interface DownloadFileOptions {
  log?: (line: string) => void;
  onProgress?: (received: number, total: number | undefined) => void;
  /** Abort when no data arrives for this long; a stalled connection should not hang forever. */
  idleTimeoutMs?: number;
  /** Stop (and delete the partial file) past this many bytes; default DEFAULT_DOWNLOAD_CAP. */
  maxBytes?: number;
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

export function tryUnlink(path: string): void {
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

