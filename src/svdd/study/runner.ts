/**
 * Runs a study's cells into one directory, resumably and shardable:
 *
 *   DIR/spec.json            the spec (a rerun must give the same one)
 *   DIR/cells/<cell>.json    a cell's record: the cell is done when this exists (with the same config hash)
 *   DIR/locks/<cell>.lock    held while a worker runs the cell (exclusive create; heartbeat; stale detection)
 *   DIR/failed/<cell>.json   the error of the last failed attempt (a rerun tries again)
 *   DIR/runs/<cell>/<method>/  the usual run directories (weights, results.json, log.txt, …)
 *
 * A cell's methods run in order; the first pretrains the autoencoder, the others load it
 * (--ae-weights), so every method of a cell starts from the same autoencoder and the same
 * validation split. A method whose run directory is complete (results.json written last) is
 * reused, so a killed study resumes where it stopped; results are deterministic for a seed,
 * backend and thread count, so a resumed study equals an uninterrupted one.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../../tensor/io/atomic.ts';
import { hasCheckpoint, readCheckpoint, trainConfigHash } from '../checkpoint.ts';
import { alive } from '../run-dir.ts';
import { packageVersion } from '../model.ts';
import { runTraining } from '../run.ts';
import { RunError } from '../errors.ts';
import { methodRecord, RECORD_FORMAT, type CellRecord, type MethodRecord } from './records.ts';
import { cellConfigHash, expandCells, methodConfig, methodId, stableJson, type Cell, type StudySpec } from './spec.ts';

export interface Shard { index: number; count: number }

export interface StudyRunOptions {
  backend: string;
  threads: number | null;
  /** Data directory per dataset (CIFAR-10 needs one). */
  dataDirs: Partial<Record<string, string>>;
  shard: Shard;
  /** A lock whose heartbeat is older than this is taken over (seconds). */
  staleAfterSeconds: number;
  /** Run only cells matching these (null: all). */
  filter: CellFilter;
  /** Epochs between training checkpoints (default: runTraining's). */
  checkpointEvery?: number;
  /** Called with every heartbeat (each training batch): a --jobs worker stops here when its parent is gone. */
  beat?: () => void;
  log(line: string): void;
}

export interface CellFilter { datasets: string[] | null; classes: number[] | null; seeds: number[] | null }

export const cellsDir = (dir: string): string => join(dir, 'cells');
const locksDir = (dir: string): string => join(dir, 'locks');
const failedDir = (dir: string): string => join(dir, 'failed');
export const runsDir = (dir: string): string => join(dir, 'runs');

/** Writes DIR/spec.json, or checks that the one there is the same study. */
export function initStudyDir(dir: string, spec: StudySpec): void {
  for (const d of [dir, cellsDir(dir), locksDir(dir), failedDir(dir), runsDir(dir)]) mkdirSync(d, { recursive: true });
  const path = join(dir, 'spec.json');
  const text = `${JSON.stringify(spec, null, 2)}\n`;
  if (existsSync(path)) {
    let old: unknown;
    try { old = JSON.parse(readFileSync(path, 'utf8')); } catch (e) { throw new RunError(`${path}: not valid JSON (${(e as Error).message})`); }
    if (stableJson(old) !== stableJson(spec)) {
      throw new RunError(`${dir} holds a different study (spec.json differs from '${spec.name}'); use another study directory, or the same spec`);
    }
    return;
  }
  writeFileAtomic(path, text);
}

export function readStudySpec(dir: string): StudySpec {
  const path = join(dir, 'spec.json');
  if (!existsSync(path)) throw new RunError(`${dir} is not a study directory (no spec.json)`);
  return JSON.parse(readFileSync(path, 'utf8')) as StudySpec;
}

export function matchesFilter(c: Cell, f: CellFilter): boolean {
  return (!f.datasets || f.datasets.includes(c.dataset)) && (!f.classes || f.classes.includes(c.normalClass)) && (!f.seeds || f.seeds.includes(c.seed));
}

/** The cells of shard i of n: every n-th cell of the spec's order, from the i-th. */
export function shardCells(cells: Cell[], shard: Shard): Cell[] {
  return cells.filter((_, k) => k % shard.count === shard.index);
}

/**
 * The cells a worker runs: the spec's cells that pass the filter, then its shard of those. Sharding
 * first would hand every filtered cell to one worker whenever the filter keeps every n-th cell (one
 * seed of a spec with 10 seeds per class, 2 shards).
 */
export function cellsOfShard(spec: StudySpec, shard: Shard, filter: CellFilter): Cell[] {
  return shardCells(expandCells(spec).filter((c) => matchesFilter(c, filter)), shard);
}

/** The record of a cell, when it exists and belongs to the cell's current config. */
export function readRecord(dir: string, cell: Cell): { record: CellRecord | null; stale: boolean } {
  const path = join(cellsDir(dir), `${cell.id}.json`);
  if (!existsSync(path)) return { record: null, stale: false };
  try {
    const rec = JSON.parse(readFileSync(path, 'utf8')) as CellRecord;
    if (rec.format !== RECORD_FORMAT) return { record: null, stale: true };
    return rec.configHash === cellConfigHash(cell) ? { record: rec, stale: false } : { record: null, stale: true };
  } catch {
    return { record: null, stale: true };
  }
}

interface LockInfo { host: string; pid: number; started: string }

/** Whether a lock is abandoned: its owner is gone (same host) or its heartbeat stopped. */
export function lockIsStale(path: string, staleAfterSeconds: number): boolean {
  let info: LockInfo;
  try {
    info = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
  } catch {
    // Unreadable: either being written right now (fresh) or garbage (judge by age).
    try { return Date.now() - statSync(path).mtimeMs > staleAfterSeconds * 1000; } catch { return false; }
  }
  if (info.host === hostname() && !alive(info.pid)) return true;
  try { return Date.now() - statSync(path).mtimeMs > staleAfterSeconds * 1000; } catch { return false; }
}

export class CellLock {
  private last = Date.now();
  private constructor(readonly path: string) {}

  /** Takes the cell's lock (exclusive create), taking over a stale one; null when another worker holds it. */
  static acquire(dir: string, cellId: string, staleAfterSeconds: number): CellLock | null {
    const path = join(locksDir(dir), `${cellId}.lock`);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx');
        writeSync(fd, JSON.stringify({ host: hostname(), pid: process.pid, started: new Date().toISOString() } satisfies LockInfo));
        closeSync(fd);
        return new CellLock(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      if (!lockIsStale(path, staleAfterSeconds)) return null;
      // Rename first: of two workers taking over the same stale lock, only one rename succeeds.
      const aside = `${path}.stale-${hostname()}-${process.pid}`;
      try { renameSync(path, aside); unlinkSync(aside); } catch { return null; }
    }
    return null;
  }

  /** Marks the lock alive (at most every 10 s; called from training hooks). */
  heartbeat(): void {
    const now = Date.now();
    if (now - this.last < 10000) return;
    this.last = now;
    try { utimesSync(this.path, now / 1000, now / 1000); } catch { /* a lost lock shows up as a duplicate run, never as wrong numbers */ }
  }

  release(): void { try { unlinkSync(this.path); } catch { /* already gone */ } }
}

let commitCache: string | null | undefined;
/**
 * The commit of the checkout this code runs from, or null. Only a repository whose top level is the
 * package's own root counts: an installed copy (node_modules/svdd-ts) may sit inside another
 * project's repository, whose commit says nothing about this code.
 */
function gitCommit(): string | null {
  if (commitCache !== undefined) return commitCache;
  commitCache = null;
  const here = new URL('.', import.meta.url).pathname;
  const git = (...args: string[]): string => execFileSync('git', args, { stdio: ['ignore', 'pipe', 'ignore'], cwd: here }).toString().trim();
  try {
    // This module is <root>/src/svdd/study/ (sources) or <root>/dist/svdd/study/ (the build).
    if (realpathSync(git('rev-parse', '--show-toplevel')) === realpathSync(resolve(here, '../../..'))) commitCache = git('rev-parse', 'HEAD');
  } catch { /* no git, or not a repository: no commit */ }
  return commitCache;
}

/** Whether a run directory holds a finished run (results.json is written last but for timings). */
const runComplete = (runDir: string): boolean => existsSync(join(runDir, 'results.json')) && existsSync(join(runDir, 'model.json'));

/** Runs (or resumes) one cell and writes its record. */
export async function runCell(dir: string, cell: Cell, opts: StudyRunOptions, lock: CellLock | null): Promise<CellRecord> {
  const t0 = performance.now();
  const cellRuns = join(runsDir(dir), cell.id);
  mkdirSync(cellRuns, { recursive: true });
  const dataDir = opts.dataDirs[cell.dataset] ?? null;
  const methods: MethodRecord[] = [];
  let aeWeights: string | null = null;
  let first: ReturnType<typeof methodRecord> | null = null;
  let pretrainSeconds = 0;
  for (const m of cell.methods) {
    const runDir = join(cellRuns, methodId(m));
    const cfg = methodConfig(cell, m, { backend: opts.backend, threads: opts.threads, dataDir, aeWeights });
    const tm = performance.now();
    let seconds: number;
    if (runComplete(runDir)) {
      opts.log(`${cell.id} ${methodId(m)}: done earlier, reusing ${runDir}`);
      seconds = readSeconds(runDir);
    } else {
      const beat = (): void => { lock?.heartbeat(); opts.beat?.(); };
      const hooks = { onBatch: beat, onEpoch: beat };
      // An interrupted run continues from its checkpoint when it has one of these settings; else it starts over.
      const resumable = hasCheckpoint(runDir) && readCheckpoint(runDir).configHash === trainConfigHash(cfg);
      if (!resumable) rmSync(runDir, { recursive: true, force: true });
      opts.log(`${cell.id} ${methodId(m)}: ${resumable ? 'resuming from its checkpoint' : 'training'} (${cfg.aeWeights ? 'autoencoder from the cell\'s first method' : `pretraining ${cfg.aeEpochs} epochs`}, ${cfg.epochs} epochs)`);
      // The cell lock keeps other workers out, so a run lock left by a killed worker (on any host) is taken over.
      await runTraining(cfg, runDir, { log: () => undefined, hooks }, { resume: resumable, checkpointEvery: opts.checkpointEvery, takeOverLock: true });
      // The run's own total counts the processes before a resume too; this process's time does not.
      seconds = readSeconds(runDir) || (performance.now() - tm) / 1000;
    }
    const mr = methodRecord(runDir, m, seconds);
    methods.push(mr.rec);
    if (!first) {
      first = mr;
      aeWeights = join(runDir, 'autoencoder.safetensors');
      pretrainSeconds = readPretrainSeconds(runDir);
    }
    const best = mr.rec.scores.distance?.auroc;
    opts.log(`${cell.id} ${methodId(m)}: AUROC ${best === undefined ? 'n/a (collapsed)' : (100 * best).toFixed(2)}${mr.rec.scores.mahalanobis ? `, Mahalanobis ${(100 * mr.rec.scores.mahalanobis.auroc).toFixed(2)}` : ''}${mr.rec.scores.combined ? `, combined ${(100 * mr.rec.scores.combined.auroc).toFixed(2)}` : ''} (${seconds.toFixed(1)} s)`);
  }
  const r = first!.results;
  const record: CellRecord = {
    format: RECORD_FORMAT, version: 1, cell: cell.id, configHash: cellConfigHash(cell),
    dataset: cell.dataset, normalClass: cell.normalClass, seed: cell.seed, preprocessing: cell.preprocessing, protocol: cell.protocolTag,
    counts: { train: r.counts.train, validation: r.counts.validation, test: r.evaluation.counts.test, anomalous: r.evaluation.counts.anomalous },
    f1AllAnomalous: Number(r.evaluation.f1AllAnomalous.toFixed(6)),
    pretrainTestAuroc: r.pretrainTestAuroc,
    methods,
    timings: {
      seconds: Number(methods.reduce((a, m) => a + m.seconds, 0).toFixed(2)), pretrainSeconds,
      threads: opts.threads, backend: r.backend, host: hostname(), finished: new Date().toISOString(),
    },
    versions: { svddTs: packageVersion(), node: process.version, commit: gitCommit() },
  };
  writeFileAtomic(join(cellsDir(dir), `${cell.id}.json`), `${JSON.stringify(record, null, 1)}\n`);
  rmSync(join(failedDir(dir), `${cell.id}.json`), { force: true });
  opts.log(`${cell.id}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return record;
}

function readTimings(runDir: string): { seconds?: Record<string, number> } {
  try { return JSON.parse(readFileSync(join(runDir, 'timings.json'), 'utf8')) as { seconds?: Record<string, number> }; } catch { return {}; }
}
const readSeconds = (runDir: string): number => readTimings(runDir).seconds?.total ?? 0;
const readPretrainSeconds = (runDir: string): number => Number((readTimings(runDir).seconds?.pretrain ?? 0).toFixed(2));

export interface StudyRunSummary { ran: number; skipped: number; busy: number; failed: string[] }

/** Thrown by a heartbeat (StudyRunOptions.beat) to stop the study at once: the cell's lock is released, nothing is recorded. */
export class StopStudy extends Error {}

/** Runs the pending cells of this shard, one after another. */
export async function runStudy(dir: string, spec: StudySpec, opts: StudyRunOptions): Promise<StudyRunSummary> {
  initStudyDir(dir, spec);
  const mine = cellsOfShard(spec, opts.shard, opts.filter);
  const out: StudyRunSummary = { ran: 0, skipped: 0, busy: 0, failed: [] };
  opts.log(`study ${spec.name}: ${mine.length} cells in shard ${opts.shard.index}/${opts.shard.count}`);
  for (const cell of mine) {
    if (readRecord(dir, cell).record) { out.skipped++; continue; }
    const lock = CellLock.acquire(dir, cell.id, opts.staleAfterSeconds);
    if (!lock) { out.busy++; opts.log(`${cell.id}: another worker holds it, skipping`); continue; }
    try {
      // Checked again under the lock: another worker may have finished it meanwhile.
      if (readRecord(dir, cell).record) { out.skipped++; continue; }
      await runCell(dir, cell, opts, lock);
      out.ran++;
    } catch (e) {
      if (e instanceof StopStudy) throw e;
      const msg = (e as Error).message;
      out.failed.push(cell.id);
      writeFileAtomic(join(failedDir(dir), `${cell.id}.json`), `${JSON.stringify({ cell: cell.id, error: msg, host: hostname(), when: new Date().toISOString() }, null, 1)}\n`);
      opts.log(`${cell.id}: FAILED: ${msg.split('\n')[0]}`);
    } finally {
      lock.release();
    }
  }
  return out;
}

export type CellState = 'done' | 'running' | 'failed' | 'stale' | 'pending';

export interface StudyStatus {
  cells: { cell: Cell; state: CellState; seconds: number | null; detail: string | null }[];
}

export function studyStatus(dir: string, staleAfterSeconds: number): StudyStatus {
  const spec = readStudySpec(dir);
  const cells = expandCells(spec).map((cell) => {
    const { record, stale } = readRecord(dir, cell);
    if (record) return { cell, state: 'done' as const, seconds: record.timings.seconds, detail: null };
    const lockPath = join(locksDir(dir), `${cell.id}.lock`);
    if (existsSync(lockPath) && !lockIsStale(lockPath, staleAfterSeconds)) return { cell, state: 'running' as const, seconds: null, detail: null };
    const failedPath = join(failedDir(dir), `${cell.id}.json`);
    if (existsSync(failedPath)) {
      let detail: string | null = null;
      try { detail = (JSON.parse(readFileSync(failedPath, 'utf8')) as { error: string }).error.split('\n')[0]!; } catch { /* shown without detail */ }
      return { cell, state: 'failed' as const, seconds: null, detail };
    }
    return { cell, state: stale ? 'stale' as const : 'pending' as const, seconds: null, detail: stale ? 'record from another config; will be rerun' : null };
  });
  return { cells };
}

/** Every record in DIR/cells that belongs to the study's current spec. */
export function readRecords(dir: string): CellRecord[] {
  const spec = readStudySpec(dir);
  const out: CellRecord[] = [];
  for (const cell of expandCells(spec)) {
    const { record } = readRecord(dir, cell);
    if (record) out.push(record);
  }
  return out;
}
