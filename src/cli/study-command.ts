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
import { DATASET_NAMES, isDatasetName } from '../svdd/data/datasets.ts';
import { UsageError } from './usage-error.ts';
import { initStudyDir, matchesFilter, runStudy, StopStudy, studyStatus, type CellFilter, type Shard } from '../svdd/study/runner.ts';
import { BUILTIN_SPECS, expandCells, parseSpec, SpecError, type StudySpec } from '../svdd/study/spec.ts';
import { slurmScript } from '../svdd/study/slurm.ts';
import { writeSummary } from '../svdd/study/summary.ts';
import { BACKEND_NAMES, MAX_WASM_THREADS, resolveWasmThreads } from '../tensor/backends.ts';
import { writeFileAtomic } from '../tensor/io/atomic.ts';
import { defineCommand, helpText, type CliIo, type CommandGroup, type FlagTable, type Parsed } from './command.ts';

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

function parseFilter(values: { datasets?: string; classes?: number[]; seeds?: number[] }): CellFilter {
  const datasets = typeof values.datasets === 'string' ? values.datasets.split(',').map((d) => {
    if (!isDatasetName(d)) throw new UsageError(`--datasets: unknown dataset '${d}'`);
    return d;
  }) : null;
  return {
    datasets,
    classes: values.classes ?? null,
    seeds: values.seeds ?? null,
  };
}

const here = fileURLToPath(new URL('.', import.meta.url));
/** Set for the workers of `study run --jobs K`: the parent's pid. */
const PARENT_ENV = 'SVDD_STUDY_PARENT';
// Workers run the entry this process runs: a checkout's launcher (the sources, through tsx) or the
// installed package's built bin.
const svddBin = import.meta.url.endsWith('.ts') ? resolve(here, '../../bin/svdd.js') : resolve(here, 'bin.js');

const RUN_FLAGS = {
  out: { kind: 'string', arg: 'DIR', nonEmpty: true, required: true, help: 'the study directory (created; a rerun resumes it)' },
  jobs: { kind: 'int', min: 1, max: 64, arg: 'K', help: 'K worker processes on this machine, the cores split between them (default: one per\ncore, at most 16 and one per 1.5 GB of memory; measured faster than fewer, wider workers)' },
  shard: { kind: 'string', arg: 'i/n', help: 'this worker\'s share: cells i, i+n, i+2n, … (default from SLURM_ARRAY_TASK_ID /\nSLURM_ARRAY_TASK_COUNT, or JOB_COMPLETION_INDEX with --shard-count n; else 0/1)' },
  'shard-count': { kind: 'string', arg: 'n', help: 'the number of indexes of a Kubernetes Indexed Job (with JOB_COMPLETION_INDEX)' },
  threads: { kind: 'int', min: 1, max: MAX_WASM_THREADS, arg: 'T', help: 'wasm threads per worker (default: cores / jobs)' },
  backend: { kind: { choices: BACKEND_NAMES }, arg: 'B', default: 'auto', help: 'compute backend of every cell (default auto)' },
  'data-dir': { kind: 'strings', arg: 'D=P', help: 'data directory of dataset D (CIFAR-10 needs one), repeatable' },
  datasets: { kind: 'string', arg: 'a,b', help: 'run only the cells of these datasets' },
  classes: { kind: 'list', arg: '0,1', help: 'run only the cells of these normal classes' },
  seeds: { kind: 'list', arg: '0,1', help: 'run only the cells of these seeds' },
  'stale-after': { kind: 'number', min: 1, arg: 'S', default: '900', help: 'take over a cell lock whose heartbeat is older than S seconds (default 900)' },
  'checkpoint-every': { kind: 'int', min: 0, arg: 'N', help: 'epochs between training checkpoints (default 5); an interrupted method resumes from its last' },
} as const satisfies FlagTable;

const runCommand = defineCommand({
  name: 'study run',
  synopsis: 'svdd study run',
  summary: 'run the cells of a study not yet done',
  usage: 'svdd study run SPEC --out DIR [--jobs K] [--shard i/n] [--threads T] [--backend B]\n               [--data-dir DATASET=DIR …] [--datasets a,b] [--classes 0,1] [--seeds 0,1] [--stale-after S]',
  description: `  runs the cells not yet done (a cell is done when DIR/cells/<cell>.json exists); killed at any
  point, a rerun skips finished cells and finished methods of the interrupted cell.`,
  flags: RUN_FLAGS,
  positionals: { min: 1, max: 1, what: 'one SPEC (a JSON file or a built-in name)' },
  helpColumn: 24,
  run: (p, io) => run(p, io),
});

async function run({ values, positionals, argv }: Parsed<typeof RUN_FLAGS>, io: CliIo): Promise<number> {
  const out = io.out;
  const env = io.env ?? process.env;
  const spec = loadSpec(positionals[0]!);
  const cores = os.availableParallelism();
  // One single-threaded worker per core by default: on this 2-core machine two MNIST cells at once with one
  // thread each finish 1.56× faster than one cell with two threads (npx tsx bench/study-jobs.ts); a
  // worker holds up to ~1.5 GB (a CIFAR-10 cell), so memory caps the count too.
  const defaultJobs = Math.max(1, Math.min(cores, 16, Math.floor(os.totalmem() / 1.5e9)));
  const jobs = values.jobs ?? defaultJobs;
  const threads = values.threads ?? Math.min(MAX_WASM_THREADS, Math.max(1, Math.floor(cores / jobs)));
  resolveWasmThreads(threads); // a bad SVDD_THREADS is one line here, not a failure in every cell
  const backend = values.backend;
  const staleAfterSeconds = values['stale-after'];
  const shard = shardFromEnv(values.shard, values['shard-count'], env);
  const dataDirs = parseDataDirs(values['data-dir']);
  const filter = parseFilter(values);
  const checkpointEvery = values['checkpoint-every'];
  const dir = resolve(values.out);

  // Checked here once, so that a wrong directory is one line, not one per worker.
  initStudyDir(dir, spec);
  if (jobs > 1) {
    // K workers, each the shard (i·K + j) of (n·K): disjoint, and together exactly this shard.
    const passOn = argv.filter((_, k) => !['--jobs', '--shard', '--threads', '--shard-count'].some((f) => argv[k] === f || argv[k - 1] === f) && !/^--(jobs|shard|threads|shard-count)=/.test(argv[k]!));
    const codes = await Promise.all(Array.from({ length: jobs }, (_, j) => new Promise<number>((done) => {
      const sub = `${shard.index * jobs + j}/${shard.count * jobs}`;
      const child = spawn(process.execPath, [svddBin, 'study', 'run', ...passOn, '--shard', sub, '--threads', String(threads), '--jobs', '1'],
        { stdio: ['ignore', 'pipe', 'inherit'], env: { ...env, [PARENT_ENV]: String(process.pid) } });
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
  const parent = env[PARENT_ENV] ? Number(env[PARENT_ENV]) : null;
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

const statusCommand = defineCommand({
  name: 'study status',
  synopsis: 'svdd study status',
  summary: 'done / running / failed / pending cells, with an ETA',
  usage: 'svdd study status DIR [--datasets a,b] [--classes 0,1] [--seeds 0,1] [--stale-after S]',
  description: `  done / running / failed / pending cells, with an ETA; --datasets, --classes and --seeds count only
  the cells a \`study run\` with the same filters runs.`,
  flags: {
    'stale-after': { kind: 'number', min: 1, arg: 'S', default: '900', help: 'a running cell whose heartbeat is older than S seconds is stale (default 900)' },
    datasets: { ...RUN_FLAGS.datasets, help: 'count only the cells of these datasets' },
    classes: { ...RUN_FLAGS.classes, help: 'count only the cells of these normal classes' },
    seeds: { ...RUN_FLAGS.seeds, help: 'count only the cells of these seeds' },
  },
  positionals: { min: 1, max: 1, what: 'one study directory' },
  run: ({ values, positionals }, io) => status(positionals[0]!, values['stale-after'], parseFilter(values), io.out),
});

function status(dir: string, stale: number, filter: CellFilter, out: (t: string) => void): number {
  const all = studyStatus(resolve(dir), stale);
  const st = { ...all, cells: all.cells.filter((c) => matchesFilter(c.cell, filter)) };
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

const summarizeCommand = defineCommand({
  name: 'study summarize',
  synopsis: 'svdd study summarize',
  summary: 'OUT/summary.md, summary.csv, summary.html',
  usage: 'svdd study summarize DIR… [--out OUT]',
  description: '  writes OUT/summary.md, summary.csv, summary.html over the studies in DIR…',
  flags: { out: { kind: 'string', arg: 'OUT', nonEmpty: true, help: 'where the summary goes (default OUT: the first DIR)' } },
  positionals: { min: 1, max: Infinity, what: 'one or more study directories' },
  run: ({ values, positionals }, io) => summarize(values.out, positionals, io.out),
});

function summarize(outDir: string | undefined, positionals: string[], out: (t: string) => void): number {
  const target = resolve(outDir ?? positionals[0]!);
  const written = writeSummary(positionals.map((p) => resolve(p)), target, { dirs: positionals, out: outDir ?? positionals[0]! });
  const records = written.records === written.cells ? '' : ` (${written.records} cell records)`;
  out(`${written.cells} cells${records} summarised: ${written.files.join(', ')}\n`);
  return 0;
}

const SLURM_FLAGS = {
  out: { kind: 'string', arg: 'DIR', nonEmpty: true, required: true, help: 'the study directory the array tasks write (created now: Slurm opens the log files there)' },
  shards: { kind: 'int', min: 1, max: 10000, arg: 'N', default: '1', help: 'array tasks, one shard each (default 1)' },
  time: { kind: 'string', arg: 'HH:MM:SS', default: '24:00:00', help: 'time limit of each task, [D-]HH:MM:SS (default 24:00:00)' },
  cpus: { kind: 'int', min: 1, max: 256, arg: 'C', default: '2', help: 'CPUs per task (default 2)' },
  partition: { kind: 'string', arg: 'P', help: 'the Slurm partition' },
  'data-dir': { kind: 'strings', arg: 'D=P', help: 'data directory of dataset D, repeatable' },
  write: { kind: 'string', arg: 'FILE', nonEmpty: true, help: 'write the script to FILE instead of printing it' },
} as const satisfies FlagTable;

const slurmCommand = defineCommand({
  name: 'study slurm',
  synopsis: 'svdd study slurm',
  summary: 'prints a ready sbatch job-array script',
  usage: 'svdd study slurm SPEC --out DIR --shards N [--time HH:MM:SS] [--cpus C] [--partition P] [--data-dir D=P …]',
  description: '  prints a ready sbatch job-array script (one array task per shard)',
  flags: SLURM_FLAGS,
  positionals: { min: 1, max: 1, what: 'one SPEC' },
  run: (p, io) => slurm(p, io.out),
});

function slurm({ values, positionals }: Parsed<typeof SLURM_FLAGS>, out: (t: string) => void): number {
  const spec = loadSpec(positionals[0]!);
  const shards = values.shards;
  const cells = expandCells(spec).length;
  if (shards > cells) throw new UsageError(`--shards ${shards}: the study has only ${cells} cells`);
  const time = values.time;
  if (!/^(\d+-)?\d{1,3}:\d{2}:\d{2}$/.test(time)) throw new UsageError(`--time: expected [D-]HH:MM:SS, got '${time}'`);
  const cpus = values.cpus;
  const partition = values.partition ?? null;
  if (partition !== null && !/^[A-Za-z0-9_-]+$/.test(partition)) throw new UsageError(`--partition: unexpected characters in '${partition}'`);
  const script = slurmScript({
    spec: Object.hasOwn(BUILTIN_SPECS, positionals[0]!) ? positionals[0]! : resolve(positionals[0]!), name: spec.name,
    out: resolve(values.out), shards, time, cpus, partition, svdd: svddBin,
    dataDirs: Object.entries(parseDataDirs(values['data-dir'])) as [string, string][],
  });
  // Slurm opens each task's --output file before the script runs: the directory must exist at submission.
  mkdirSync(resolve(values.out), { recursive: true });
  if (values.write !== undefined) { writeFileAtomic(values.write, script); out(`wrote ${values.write} (submit: sbatch ${values.write})\n`); } else out(script);
  return 0;
}

const specsCommand = defineCommand({
  name: 'study specs',
  synopsis: 'svdd study specs',
  summary: 'lists the built-in specs, or prints one as JSON',
  usage: 'svdd study specs [NAME]',
  description: '  lists the built-in specs, or prints one (or a JSON file\'s, validated) as JSON',
  flags: {},
  positionals: { min: 0, max: 1, what: 'at most one spec name' },
  run: ({ positionals }, io) => {
    if (positionals.length === 0) {
      for (const [name, s] of Object.entries(BUILTIN_SPECS)) io.out(`${name.padEnd(16)} ${expandCells(parseSpec(s)).length} cells: ${s.description ?? ''}\n`);
      return 0;
    }
    io.out(`${JSON.stringify(loadSpec(positionals[0]!), null, 2)}\n`);
    return 0;
  },
});

const STUDY_SUBCOMMANDS = [runCommand, statusCommand, summarizeCommand, slurmCommand, specsCommand];

/** `svdd study --help`: every subcommand's help (from its table), then the spec format. */
export const STUDY_HELP = `svdd study <run|status|summarize|slurm|specs> …: a grid of Deep SVDD runs

${STUDY_SUBCOMMANDS.map((c) => helpText(c)).join('\n')}
${SPEC_DOC}`;

/** `svdd study …`: the bare word prints the help and exits 2. */
export const study: CommandGroup = {
  name: 'study',
  synopsis: 'svdd study run SPEC --out DIR',
  summary: 'a grid of runs (resumable, shardable); status, summarize, slurm',
  help: STUDY_HELP,
  subcommands: STUDY_SUBCOMMANDS,
  unknown: (sub) => `svdd study: unknown subcommand '${sub}' (run, status, summarize, slurm, specs)`,
};
