/**
 * `svdd study run|status|summarize|slurm|specs`: a declarative grid of runs (see
 * src/svdd/study/spec.ts), resumable, shardable over processes, Slurm job arrays and Kubernetes
 * Indexed Jobs, and summarised against the paper.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DATASET_NAMES, isDatasetName } from '../svdd/data/datasets.ts';
import { UsageError } from '../svdd/run.ts';
import { initStudyDir, runStudy, StopStudy, studyStatus, type CellFilter, type Shard } from '../svdd/study/runner.ts';
import { BUILTIN_SPECS, expandCells, parseSpec, SpecError, type StudySpec } from '../svdd/study/spec.ts';
import { slurmScript } from '../svdd/study/slurm.ts';
import { writeSummary } from '../svdd/study/summary.ts';
import { BACKEND_NAMES, MAX_WASM_THREADS, resolveWasmThreads } from '../tensor/backends.ts';
import { writeFileAtomic } from '../tensor/io/atomic.ts';
import { parseChoice, parseList, parseNumber } from './args.ts';

const SPEC_DOC = `A spec is JSON (or a built-in name: ${Object.keys(BUILTIN_SPECS).join(', ')}):
  { "name": "my-study",                       lower-case letters, digits, dashes
    "valFraction": 0.1,                       held-out normal fraction for label-free τ (0: none; default 0.1)
    "alpha": 0.05,                            target false-positive rate of τ (default 0.05)
    "groups": [ {
      "dataset": "mnist",                     mnist | fashion-mnist | cifar10
      "classes": [0, 1, 2],                   normal classes (default all ten)
      "seeds": [0, 1, 2],
      "protocol": "short",                    paper | short | quick, or an object:
                                              { "base": "paper", "aeEpochs", "aeMilestones", "aeWeightDecay", "aeLr",
                                                "epochs", "milestones", "weightDecay", "lr", "batchSize",
                                                "aeBatchSize", "subset", "testSubset" }
      "preprocessing": ["gcn-minmax", "none"],  default ["gcn-minmax"]
      "methods": [ { "kind": "one-class" },
                   { "kind": "soft-boundary", "nu": 0.1 },
                   { "kind": "hybrid", "mu1": 1, "mu2": 0.5 } ] } ] }
A cell is (dataset, preprocessing, protocol, class, seed): its first method pretrains the autoencoder,
the others start from that same autoencoder and the same validation split. Every method is scored by the
SVDD distance and, with a validation split, the Mahalanobis distance (the "adaptive" threshold); hybrid
models also by reconstruction error and the combined score.
`;

export const STUDY_HELP = `svdd study <run|status|summarize|slurm|specs> …: a grid of Deep SVDD runs

  svdd study run SPEC --out DIR [--jobs K] [--shard i/n] [--threads T] [--backend B]
                 [--data-dir DATASET=DIR …] [--datasets a,b] [--classes 0,1] [--seeds 0,1] [--stale-after S]
      runs the cells not yet done (a cell is done when DIR/cells/<cell>.json exists); killed at any
      point, a rerun skips finished cells and finished methods of the interrupted cell.
      --jobs K       K worker processes on this machine, the cores split between them (default: one per
                     core, at most 16 and one per 1.5 GB of memory; measured faster than fewer, wider workers)
      --shard i/n    this worker's share: cells i, i+n, i+2n, … (default from SLURM_ARRAY_TASK_ID /
                     SLURM_ARRAY_TASK_COUNT, or JOB_COMPLETION_INDEX with --shard-count n; else 0/1)
      --threads T    wasm threads per worker (default: cores / jobs)
      --data-dir D=P data directory of dataset D (CIFAR-10 needs one), repeatable
      --datasets, --classes, --seeds   run only the matching cells
      --stale-after S  take over a cell lock whose heartbeat is older than S seconds (default 900)
      --checkpoint-every N  epochs between training checkpoints (default 5); an interrupted method resumes from its last
  svdd study status DIR        done / running / failed / pending cells, with an ETA
  svdd study summarize DIR… [--out OUT]   OUT/summary.md, summary.csv, summary.html (default OUT: the first DIR)
  svdd study slurm SPEC --out DIR --shards N [--time HH:MM:SS] [--cpus C] [--partition P] [--data-dir D=P …]
      prints a ready sbatch job-array script (one array task per shard)
  svdd study specs [NAME]      lists the built-in specs, or prints one as JSON

${SPEC_DOC}`;

function parse(argv: string[], options: NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
}

/** A built-in spec's name or a JSON file's path, validated. */
export function loadSpec(nameOrPath: string): StudySpec {
  try {
    if (Object.hasOwn(BUILTIN_SPECS, nameOrPath)) return parseSpec(BUILTIN_SPECS[nameOrPath], `built-in spec ${nameOrPath}`);
    if (!existsSync(nameOrPath)) throw new UsageError(`no such spec '${nameOrPath}' (a JSON file, or one of ${Object.keys(BUILTIN_SPECS).join(', ')})`);
    let value: unknown;
    try { value = JSON.parse(readFileSync(nameOrPath, 'utf8')); } catch (e) { throw new UsageError(`${nameOrPath}: not valid JSON (${(e as Error).message})`); }
    return parseSpec(value, nameOrPath);
  } catch (e) {
    if (e instanceof SpecError) throw new UsageError(e.message);
    throw e;
  }
}

export function parseShard(v: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(v);
  if (!m) throw new UsageError(`--shard: expected i/n (e.g. 0/4), got '${v}'`);
  const index = Number(m[1]), count = Number(m[2]);
  if (!(count >= 1 && index < count)) throw new UsageError(`--shard: need 0 ≤ i < n, got ${index}/${count}`);
  return { index, count };
}

/** The shard from the flag, else from Slurm's or Kubernetes' environment, else the whole study. */
export function shardFromEnv(flag: string | undefined, shardCount: string | undefined, env: NodeJS.ProcessEnv): Shard {
  if (flag !== undefined) return parseShard(flag);
  const int = (name: string, v: string): number => {
    if (!/^\d+$/.test(v)) throw new UsageError(`${name}: expected a non-negative integer, got '${v}'`);
    return Number(v);
  };
  if (env.SLURM_ARRAY_TASK_ID !== undefined && env.SLURM_ARRAY_TASK_COUNT !== undefined) {
    const min = env.SLURM_ARRAY_TASK_MIN !== undefined ? int('SLURM_ARRAY_TASK_MIN', env.SLURM_ARRAY_TASK_MIN) : 0;
    const index = int('SLURM_ARRAY_TASK_ID', env.SLURM_ARRAY_TASK_ID) - min, count = int('SLURM_ARRAY_TASK_COUNT', env.SLURM_ARRAY_TASK_COUNT);
    if (!(count >= 1 && index >= 0 && index < count)) throw new UsageError(`Slurm array task ${index} of ${count}: out of range`);
    return { index, count };
  }
  if (env.JOB_COMPLETION_INDEX !== undefined) {
    if (shardCount === undefined) throw new UsageError('JOB_COMPLETION_INDEX is set: give the number of indexes with --shard-count N (the Job\'s completions)');
    const index = int('JOB_COMPLETION_INDEX', env.JOB_COMPLETION_INDEX), count = int('--shard-count', shardCount);
    if (!(count >= 1 && index < count)) throw new UsageError(`JOB_COMPLETION_INDEX ${index} is not below --shard-count ${count}`);
    return { index, count };
  }
  return { index: 0, count: 1 };
}

function parseDataDirs(values: string[] | undefined): Partial<Record<string, string>> {
  const out: Partial<Record<string, string>> = {};
  for (const v of values ?? []) {
    const m = /^([a-z0-9-]+)=(.+)$/.exec(v);
    if (!m || !isDatasetName(m[1]!)) throw new UsageError(`--data-dir: expected DATASET=DIR with DATASET one of ${DATASET_NAMES.join(', ')}, got '${v}'`);
    out[m[1]!] = resolve(m[2]!);
  }
  return out;
}

function parseFilter(values: Record<string, unknown>): CellFilter {
  const datasets = typeof values.datasets === 'string' ? values.datasets.split(',').map((d) => {
    if (!isDatasetName(d)) throw new UsageError(`--datasets: unknown dataset '${d}'`);
    return d;
  }) : null;
  return {
    datasets,
    classes: typeof values.classes === 'string' ? parseList('--classes', values.classes) : null,
    seeds: typeof values.seeds === 'string' ? parseList('--seeds', values.seeds) : null,
  };
}

const here = fileURLToPath(new URL('.', import.meta.url));
/** Set for the workers of `study run --jobs K`: the parent's pid. */
const PARENT_ENV = 'SVDD_STUDY_PARENT';
// Workers run the entry this process runs: a checkout's launcher (the sources, through tsx) or the
// installed package's built bin.
const svddBin = import.meta.url.endsWith('.ts') ? resolve(here, '../../bin/svdd.js') : resolve(here, 'bin.js');

async function run(argv: string[], out: (t: string) => void): Promise<number> {
  const { values, positionals } = parse(argv, {
    out: { type: 'string' }, jobs: { type: 'string' }, shard: { type: 'string' }, 'shard-count': { type: 'string' },
    threads: { type: 'string' }, backend: { type: 'string' }, 'data-dir': { type: 'string', multiple: true },
    datasets: { type: 'string' }, classes: { type: 'string' }, seeds: { type: 'string' }, 'stale-after': { type: 'string' },
    'checkpoint-every': { type: 'string' }, help: { type: 'boolean' },
  });
  if (values.help) { out(STUDY_HELP); return 0; }
  if (positionals.length !== 1) throw new UsageError('svdd study run: expected one SPEC (a JSON file or a built-in name)');
  if (typeof values.out !== 'string') throw new UsageError('svdd study run: --out DIR is required');
  const spec = loadSpec(positionals[0]!);
  const cores = os.availableParallelism();
  // One single-threaded worker per core by default: on this 2-core machine two MNIST cells at once with one
  // thread each finish 1.56× faster than one cell with two threads (npx tsx bench/study-jobs.ts); a
  // worker holds up to ~1.5 GB (a CIFAR-10 cell), so memory caps the count too.
  const defaultJobs = Math.max(1, Math.min(cores, 16, Math.floor(os.totalmem() / 1.5e9)));
  const jobs = values.jobs === undefined ? defaultJobs : parseNumber('--jobs', values.jobs as string, { integer: true, min: 1, max: 64 });
  const threads = values.threads === undefined ? Math.min(MAX_WASM_THREADS, Math.max(1, Math.floor(cores / jobs))) : parseNumber('--threads', values.threads as string, { integer: true, min: 1, max: MAX_WASM_THREADS });
  resolveWasmThreads(threads); // a bad SVDD_THREADS is one line here, not a failure in every cell
  const backend = values.backend === undefined ? 'auto' : parseChoice('--backend', values.backend as string, BACKEND_NAMES);
  const staleAfterSeconds = values['stale-after'] === undefined ? 900 : parseNumber('--stale-after', values['stale-after'] as string, { min: 1 });
  const shard = shardFromEnv(values.shard as string | undefined, values['shard-count'] as string | undefined, process.env);
  const dataDirs = parseDataDirs(values['data-dir'] as string[] | undefined);
  const filter = parseFilter(values);
  const checkpointEvery = values['checkpoint-every'] === undefined ? undefined : parseNumber('--checkpoint-every', values['checkpoint-every'] as string, { integer: true, min: 0 });
  const dir = resolve(values.out);

  // Checked here once, so that a wrong directory is one line, not one per worker.
  initStudyDir(dir, spec);
  if (jobs > 1) {
    // K workers, each the shard (i·K + j) of (n·K): disjoint, and together exactly this shard.
    const passOn = argv.filter((_, k) => !['--jobs', '--shard', '--threads', '--shard-count'].some((f) => argv[k] === f || argv[k - 1] === f) && !/^--(jobs|shard|threads|shard-count)=/.test(argv[k]!));
    const codes = await Promise.all(Array.from({ length: jobs }, (_, j) => new Promise<number>((done) => {
      const sub = `${shard.index * jobs + j}/${shard.count * jobs}`;
      const child = spawn(process.execPath, [svddBin, 'study', 'run', ...passOn, '--shard', sub, '--threads', String(threads), '--jobs', '1'],
        { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, [PARENT_ENV]: String(process.pid) } });
      let buf = '';
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        buf = lines.pop()!;
        for (const l of lines) out(`[job ${j}] ${l}\n`);
      });
      child.on('close', (code) => { if (buf) out(`[job ${j}] ${buf}\n`); done(code ?? 1); });
    })));
    return Math.max(...codes);
  }
  // A --jobs worker whose parent is gone (killed without passing the signal on) stops at its next batch;
  // its cell is resumed by the next run (its lock is taken over: its owner is dead).
  const parent = process.env[PARENT_ENV] ? Number(process.env[PARENT_ENV]) : null;
  const beat = parent === null ? undefined : (): void => { if (process.ppid !== parent) throw new StopStudy('the parent process is gone'); };
  let res;
  try {
    res = await runStudy(dir, spec, {
      backend, threads, dataDirs, shard, staleAfterSeconds, filter, checkpointEvery, beat,
      log: (l) => out(`${new Date().toISOString().slice(11, 19)} ${l}\n`),
    });
  } catch (e) {
    if (e instanceof StopStudy) return 3;
    throw e;
  }
  out(`study ${spec.name}: ${res.ran} cells run, ${res.skipped} already done, ${res.busy} held by other workers, ${res.failed.length} failed${res.failed.length ? ` (${res.failed.join(', ')}; see ${dir}/failed/)` : ''}\n`);
  return res.failed.length > 0 ? 1 : 0;
}

function status(argv: string[], out: (t: string) => void): number {
  const { values, positionals } = parse(argv, { 'stale-after': { type: 'string' }, help: { type: 'boolean' } });
  if (values.help) { out(STUDY_HELP); return 0; }
  if (positionals.length !== 1) throw new UsageError('svdd study status: expected one study directory');
  const stale = values['stale-after'] === undefined ? 900 : parseNumber('--stale-after', values['stale-after'] as string, { min: 1 });
  const st = studyStatus(resolve(positionals[0]!), stale);
  const count = (s: string): number => st.cells.filter((c) => c.state === s).length;
  const groups = new Map<string, typeof st.cells>();
  for (const c of st.cells) {
    const key = `${c.cell.dataset}${c.cell.preprocessing === 'none' ? ' (no preprocessing)' : ''} ${c.cell.protocolTag}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(c);
  }
  // Groups with no finished cell yet are estimated at the mean of all finished cells (flagged as a guess).
  const allDone = st.cells.filter((c) => c.state === 'done');
  const overall = allDone.length ? allDone.reduce((a, c) => a + c.seconds!, 0) / allDone.length : null;
  let etaSeconds = 0, unknown = false;
  out(`${'group'.padEnd(36)} done running failed pending  mean s/cell\n`);
  for (const [key, cells] of groups) {
    const done = cells.filter((c) => c.state === 'done');
    const mean = done.length ? done.reduce((a, c) => a + c.seconds!, 0) / done.length : null;
    const left = cells.filter((c) => c.state !== 'done').length;
    if (left > 0) {
      if (mean === null) unknown = true;
      etaSeconds += left * (mean ?? overall ?? 0);
    }
    const n = (s: string): string => String(cells.filter((c) => c.state === s).length);
    out(`${key.padEnd(36)} ${n('done').padStart(4)} ${n('running').padStart(7)} ${n('failed').padStart(6)} ${String(cells.filter((c) => c.state === 'pending' || c.state === 'stale').length).padStart(7)}  ${mean === null ? '-' : mean.toFixed(0)}\n`);
  }
  for (const c of st.cells) if (c.state === 'failed' || c.state === 'stale') out(`${c.state}: ${c.cell.id}: ${c.detail ?? ''}\n`);
  const running = Math.max(1, count('running'));
  const hours = etaSeconds / running / 3600;
  out(`total: ${count('done')} done, ${count('running')} running, ${count('failed')} failed, ${count('pending') + count('stale')} pending of ${st.cells.length}; `
    + `ETA ${count('done') === st.cells.length ? '0' : `${hours.toFixed(1)} h at ${running} worker${running > 1 ? 's' : ''}${unknown ? (overall === null ? ' (no cell finished yet: no estimate)' : ', groups with no finished cell guessed at the mean cell time') : ''}`}\n`);
  return 0;
}

function summarize(argv: string[], out: (t: string) => void): number {
  const { values, positionals } = parse(argv, { out: { type: 'string' }, help: { type: 'boolean' } });
  if (values.help) { out(STUDY_HELP); return 0; }
  if (positionals.length < 1) throw new UsageError('svdd study summarize: expected one or more study directories');
  const target = resolve(typeof values.out === 'string' ? values.out : positionals[0]!);
  const written = writeSummary(positionals.map((p) => resolve(p)), target);
  out(`${written.cells} cells summarised: ${written.files.join(', ')}\n`);
  return 0;
}

function slurm(argv: string[], out: (t: string) => void): number {
  const { values, positionals } = parse(argv, {
    out: { type: 'string' }, shards: { type: 'string' }, time: { type: 'string' }, cpus: { type: 'string' }, partition: { type: 'string' },
    'data-dir': { type: 'string', multiple: true }, 'write': { type: 'string' }, help: { type: 'boolean' },
  });
  if (values.help) { out(STUDY_HELP); return 0; }
  if (positionals.length !== 1) throw new UsageError('svdd study slurm: expected one SPEC');
  if (typeof values.out !== 'string') throw new UsageError('svdd study slurm: --out DIR is required');
  const spec = loadSpec(positionals[0]!);
  const shards = values.shards === undefined ? 1 : parseNumber('--shards', values.shards as string, { integer: true, min: 1, max: 10000 });
  const cells = expandCells(spec).length;
  if (shards > cells) throw new UsageError(`--shards ${shards}: the study has only ${cells} cells`);
  const time = values.time === undefined ? '24:00:00' : String(values.time);
  if (!/^(\d+-)?\d{1,3}:\d{2}:\d{2}$/.test(time)) throw new UsageError(`--time: expected [D-]HH:MM:SS, got '${time}'`);
  const cpus = values.cpus === undefined ? 2 : parseNumber('--cpus', values.cpus as string, { integer: true, min: 1, max: 256 });
  const partition = typeof values.partition === 'string' ? values.partition : null;
  if (partition !== null && !/^[A-Za-z0-9_-]+$/.test(partition)) throw new UsageError(`--partition: unexpected characters in '${partition}'`);
  const script = slurmScript({
    spec: Object.hasOwn(BUILTIN_SPECS, positionals[0]!) ? positionals[0]! : resolve(positionals[0]!), name: spec.name,
    out: resolve(values.out), shards, time, cpus, partition, svdd: svddBin,
    dataDirs: Object.entries(parseDataDirs(values['data-dir'] as string[] | undefined)) as [string, string][],
  });
  // Slurm opens each task's --output file before the script runs: the directory must exist at submission.
  mkdirSync(resolve(values.out), { recursive: true });
  if (typeof values.write === 'string') { writeFileAtomic(values.write, script); out(`wrote ${values.write} (submit: sbatch ${values.write})\n`); } else out(script);
  return 0;
}

export async function studyCommand(argv: string[], out: (t: string) => void): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'run': return run(rest, out);
    case 'status': return status(rest, out);
    case 'summarize': return summarize(rest, out);
    case 'slurm': return slurm(rest, out);
    case 'specs': {
      if (rest[0] === '--help') { out(STUDY_HELP); return 0; }
      if (rest.length === 0) {
        for (const [name, s] of Object.entries(BUILTIN_SPECS)) out(`${name.padEnd(16)} ${expandCells(parseSpec(s)).length} cells: ${s.description ?? ''}\n`);
        return 0;
      }
      out(`${JSON.stringify(loadSpec(rest[0]!), null, 2)}\n`);
      return 0;
    }
    case undefined: case '--help': case '-h': out(STUDY_HELP); return sub === undefined ? 2 : 0;
    default: throw new UsageError(`svdd study: unknown subcommand '${sub}' (run, status, summarize, slurm, specs)`);
  }
}
