import { writeFileSync, renameSync, unlinkSync } from 'node:fs';

/**
 * Writes to `path.tmp-<pid>` then renames: a killed process never leaves a file at `path`
 * that looks complete but is not (rename is atomic on POSIX filesystems).
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* the temp file may not exist */ }
    throw e;
  }
}
