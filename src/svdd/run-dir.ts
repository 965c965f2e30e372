/**
 * Run directories: one writer at a time (an exclusive lock file), complete only once results.json
 * exists (written last: the completion marker every reader checks), and the directory of an
 * incomplete run (killed, failed, diverged) replaced by a rerun. Also the one-line wording of
 * file-system errors.
 */
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { RunError } from './errors.ts';

export const LOCK_FILE = '.svdd-lock';
/** Written last by `svdd train`: a run directory without it is incomplete. */
export const COMPLETE_MARKER = 'results.json';
/** Everything `svdd train` (and `svdd test`) write into a run directory. */
const RUN_FILES = new Set(['config.json', 'log.txt', 'autoencoder.safetensors', 'model.safetensors', 'model.json', COMPLETE_MARKER,
  'timings.json', 'normals.png', 'anomalies.png', 'checkpoint.safetensors', 'test_results.json']);
/** writeFileAtomic's temporaries: `<file>.tmp-<pid>`. */
const TMP_FILE = /^(.+)\.tmp-\d+$/;

/** Whether `dir` holds a finished run (results.json, written last, and its model). */
export function isRunComplete(dir: string): boolean {
  return existsSync(join(dir, COMPLETE_MARKER)) && existsSync(join(dir, 'model.json'));
}

interface LockInfo { host: string; pid: number; started: string }

export interface RunLock { readonly path: string; release(): void }

/** Whether a process of this host is running: it answers kill(pid, 0) and is not a zombie (exited, not yet reaped: an orphan under an init that does not reap). */
export function alive(pid: number): boolean {
  try { process.kill(pid, 0); } catch (e) { if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false; }
  try { if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) return false; } catch { /* no /proc: trust kill */ }
  return true;
}

/**
 * Takes `dir`'s lock (exclusive create of DIR/.svdd-lock). A lock whose owner is dead (same host)
 * is taken over; one held by a live process, or by a process on another host, is one line.
 */
export function acquireRunLock(dir: string, opts: { takeOver?: boolean } = {}): RunLock {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    // The lock appears with its content (written aside, then hard-linked into place, which fails
    // when a lock exists), so a reader never sees a lock without its owner.
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify({ host: hostname(), pid: process.pid, started: new Date().toISOString() } satisfies LockInfo));
    try {
      linkSync(tmp, path);
      let released = false;
      return { path, release: () => { if (!released) { released = true; rmSync(path, { force: true }); } } };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      rmSync(tmp, { force: true });
    }
    let info: LockInfo | null = null;
    try { info = JSON.parse(readFileSync(path, 'utf8')) as LockInfo; } catch { /* garbage, or gone meanwhile */ }
    let stale: boolean;
    // The caller already holds a lock that keeps others out (the study's cell lock): any left here is stale.
    if (opts.takeOver) stale = true;
    else if (info && typeof info.pid === 'number') stale = info.host === hostname() && !alive(info.pid);
    // Unreadable: no writer leaves a lock without its content, so it is garbage (or was just released).
    else stale = true;
    if (!stale) {
      const who = `pid ${info!.pid} on ${info!.host}, since ${info!.started}`;
      throw new RunError(`${dir} is being written by another svdd process (${who}); wait for it or choose another output directory`
        + (info && info.host !== hostname() ? ` (if that process is gone, remove ${path})` : ''));
    }
    // Rename first: of two processes taking over one stale lock, only one rename succeeds.
    const aside = `${path}.stale-${process.pid}`;
    try { renameSync(path, aside); unlinkSync(aside); } catch { /* the other one took it; try again */ }
  }
  throw new RunError(`${dir}: could not take the lock ${path}; another svdd process keeps taking it`);
}

/**
 * Makes `dir` ready for a new run and locks it: creates it, refuses a file, another writer, a
 * finished run, an interrupted run that can be resumed, or files that are not a run's; replaces an
 * incomplete run that cannot be resumed. With `resume` only locks it and removes leftover
 * temporaries (runTraining decides what to continue). Returns the lock and what was replaced.
 */
export function prepareRunDir(dir: string, opts: { resume?: boolean; takeOverLock?: boolean } = {}): { lock: RunLock; replaced: string[] } {
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new RunError(`${dir}: is a file, not a directory`);
  mkdirSync(dir, { recursive: true });
  const lock = acquireRunLock(dir, { takeOver: opts.takeOverLock });
  try {
    const entries = readdirSync(dir).filter((f) => f !== LOCK_FILE);
    const leftovers = entries.filter((f) => TMP_FILE.test(f));
    if (opts.resume) {
      for (const f of leftovers) rmSync(join(dir, f), { force: true });
      return { lock, replaced: leftovers };
    }
    if (entries.length === 0) return { lock, replaced: [] };
    const listed = `${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}`;
    if (isRunComplete(dir)) throw new RunError(`output directory ${dir} is not empty (it holds a finished run: ${listed}); choose a new one or remove it`);
    const ours = entries.every((f) => RUN_FILES.has(f) || RUN_FILES.has(f.replace(TMP_FILE, '$1')));
    const isRun = entries.includes('config.json') || entries.includes('log.txt');
    if (!ours || !isRun) throw new RunError(`output directory ${dir} is not empty (it holds ${listed}); choose a new one or remove it`);
    if (entries.includes('checkpoint.safetensors')) {
      throw new RunError(`${dir} holds an interrupted run with a checkpoint: continue it with 'svdd train --resume ${dir}', or remove it to start over`);
    }
    // An incomplete run without a checkpoint (killed, failed, diverged): nothing in it can be used.
    for (const f of entries) rmSync(join(dir, f), { recursive: true, force: true });
    return { lock, replaced: entries };
  } catch (e) {
    lock.release();
    throw e;
  }
}

/**
 * Removes the `*.tmp-<pid>` files directly in `dir` whose writer is gone (a process of this host
 * that is not running: killed while writing); a live writer's temporary is left alone. For the
 * output directories without a lock (explain --out, a report's plots). Returns the names removed.
 */
export function removeDeadTemporaries(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const removed: string[] = [];
  for (const f of readdirSync(dir)) {
    const pid = /\.tmp-(\d+)$/.exec(f)?.[1];
    if (pid === undefined || alive(Number(pid))) continue;
    rmSync(join(dir, f), { force: true });
    removed.push(f);
  }
  return removed;
}

/**
 * A new directory `root/<prefix>-<date>T<time>-<ms>` (`-2`, `-3`, … when taken), created here so
 * that two runs started in the same millisecond never share it.
 */
export function claimDefaultOutDir(root: string, prefix: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 23);
  mkdirSync(root, { recursive: true });
  for (let k = 1; ; k++) {
    const dir = join(root, `${prefix}-${stamp}${k === 1 ? '' : `-${k}`}`);
    try { mkdirSync(dir); return dir; } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; }
  }
}

const FS_REASONS: Record<string, string> = {
  ENOSPC: 'no space left on device', EDQUOT: 'disk quota exceeded', EROFS: 'read-only file system',
  EACCES: 'permission denied', EPERM: 'operation not permitted', EEXIST: 'it already exists',
  ENOTDIR: 'not a directory', EISDIR: 'is a directory', ENOENT: 'no such file or directory',
  EMFILE: 'too many open files', ENFILE: 'too many open files in the system', EIO: 'input/output error',
  ENAMETOOLONG: 'file name too long', ELOOP: 'too many levels of symbolic links', EBUSY: 'resource busy',
  EXDEV: 'not on the same file system', ENOTEMPTY: 'directory not empty', EFBIG: 'file too large',
};
const FS_VERBS: Record<string, string> = {
  open: 'cannot open', write: 'cannot write', read: 'cannot read', mkdir: 'cannot create directory', rename: 'cannot rename',
  unlink: 'cannot remove', rmdir: 'cannot remove', scandir: 'cannot list', copyfile: 'cannot copy', stat: 'cannot read',
  lstat: 'cannot read', fsync: 'cannot write', close: 'cannot write', rm: 'cannot remove', access: 'cannot access',
};

/** Whether `e` is a file-system error of Node's (a code such as ENOSPC, a syscall and usually a path). */
export function isFsError(e: unknown): e is NodeJS.ErrnoException {
  const x = e as NodeJS.ErrnoException;
  return e instanceof Error && typeof x.code === 'string' && x.code in FS_REASONS && typeof x.syscall === 'string';
}

/**
 * One line: `cannot write /a/b: no space left on device (ENOSPC)`. `where` names the place when the
 * error has no path (a write to an open file).
 */
export function fsErrorMessage(e: NodeJS.ErrnoException, where = 'a file'): string {
  const verb = FS_VERBS[e.syscall ?? ''] ?? `${e.syscall} failed on`;
  const dest = (e as { dest?: string }).dest;
  const what = e.path ? `${e.path}${dest ? ` to ${dest}` : ''}` : where;
  const reason = e.syscall === 'mkdir' && e.code === 'EEXIST' ? 'a file of that name exists' : FS_REASONS[e.code!];
  return `${verb} ${what}: ${reason} (${e.code})`;
}
