/**
 * `svdd study` and `svdd train --resume`: spec validation, cell expansion, presets against the
 * published commands, the paper's reference figures, the Wilcoxon test against scipy, shards and
 * locks, resume of single runs and of studies after SIGKILL (byte-identical to uninterrupted
 * runs), summaries, and a real Slurm job array.
 */
import { expect } from 'chai';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { main } from '../src/cli/main.ts';
import { loadSpec, parseShard, shardFromEnv } from '../src/cli/study-command.ts';
import { defaultConfig } from '../src/svdd/config.ts';
import { readCheckpoint } from '../src/svdd/checkpoint.ts';
import { CellLock, cellsOfShard, lockIsStale, shardCells } from '../src/svdd/study/runner.ts';
import { PAPER_TABLE1 } from '../src/svdd/study/reference.ts';
import { BUILTIN_SPECS, cellConfigHash, expandCells, methodId, parseSpec, SpecError } from '../src/svdd/study/spec.ts';
import { sampleRoc } from '../src/svdd/study/records.ts';
import { wilcoxonSignedRank } from '../src/svdd/study/wilcoxon.ts';

const repo = resolve(import.meta.dirname, '..');
const svdd = join(repo, 'bin', 'svdd.js');

/** Runs the CLI in this process, returning its exit code and output. */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const code = await main(argv, { out: (t) => { out += t; }, err: (t) => { err += t; }, stderrStream: process.stderr });
  return { code, out, err };
}

const tmp = (tag: string): string => mkdtempSync(join(tmpdir(), `svdd-study-${tag}-`));

/** Every cell record of a study, without what legitimately differs between runs (timings, host). */
function records(dir: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of readdirSync(join(dir, 'cells')).sort()) {
    const r = JSON.parse(readFileSync(join(dir, 'cells', f), 'utf8')) as Record<string, unknown> & { methods: { seconds: number }[] };
    delete r.timings;
    for (const m of r.methods) m.seconds = 0;
    out[f] = r;
  }
  return out;
}

/** A small study spec for the resume and Slurm tests: 3 + 3 epochs on 1000 images, two cells. */
const TEST_SPEC = {
  name: 'resume-test',
  groups: [{
    dataset: 'mnist', classes: [0, 1], seeds: [0],
    protocol: { base: 'quick', aeEpochs: 3, epochs: 3, aeMilestones: [2], milestones: [2], subset: 1000, testSubset: 800 },
    methods: [{ kind: 'one-class' }, { kind: 'soft-boundary', nu: 0.1 }, { kind: 'hybrid', mu1: 1, mu2: 1 }],
  }],
};

describe('study: specs', () => {
  it('every built-in spec validates and expands to the documented grid', () => {
    const n = (name: string): number => expandCells(parseSpec(BUILTIN_SPECS[name])).length;
    expect(n('table1')).to.equal(200); // 2 datasets × 10 classes × 10 seeds
    expect(n('seed-comparison')).to.equal(30 + 60 + 10); // MNIST 10×3, Fashion-MNIST 2 preprocessings × 10×3, CIFAR-10 10×1
    expect(n('short')).to.equal(100);
    expect(n('smoke')).to.equal(2);
    const short = expandCells(parseSpec(BUILTIN_SPECS.short));
    const fm = short.find((c) => c.dataset === 'fashion-mnist' && c.preprocessing === 'none')!;
    expect(fm.methods.map(methodId)).to.deep.equal(['one-class', 'soft-boundary-nu0.1', 'hybrid-mu1=1-mu2=0.5']);
    expect(short.find((c) => c.dataset === 'cifar10')!.methods.map(methodId)).to.include('hybrid-mu1=1-mu2=2');
    expect(short.find((c) => c.dataset === 'mnist')!.protocol).to.include({ aeEpochs: 30, epochs: 30 });
  });

  it('reports every problem of a bad spec with its path, in one line each', () => {
    const bad = {
      name: 'Bad Name', valFraction: 1.5, extra: true,
      groups: [{ dataset: 'svhn', classes: [11], seeds: [], protocol: 'long', methods: [{ kind: 'two-class' }] }],
    };
    let msg = '';
    try { parseSpec(bad, 'x.json'); } catch (e) { expect(e).to.be.instanceOf(SpecError); msg = (e as Error).message; }
    for (const part of ['x.json: name', 'x.json: valFraction', 'extra', 'groups.0.dataset', 'groups.0.classes.0', 'groups.0.seeds', 'groups.0.protocol', 'groups.0.methods.0.kind']) {
      expect(msg, part).to.include(part);
    }
    expect(msg.split('\n').every((l) => l.startsWith('x.json: '))).to.equal(true);
  });

  it('loadSpec reads a JSON file or a built-in name and says which when neither fits', () => {
    const dir = tmp('spec');
    writeFileSync(join(dir, 'ok.json'), JSON.stringify(TEST_SPEC));
    writeFileSync(join(dir, 'broken.json'), '{ "name": ');
    expect(loadSpec(join(dir, 'ok.json')).name).to.equal('resume-test');
    expect(() => loadSpec(join(dir, 'broken.json'))).to.throw(/not valid JSON/);
    expect(() => loadSpec('nonesuch')).to.throw(/no such spec 'nonesuch'.*table1/);
  });

  it('methods of equal cells merge; the config hash follows everything that changes the numbers', () => {
    const spec = parseSpec({
      name: 'merge', groups: [
        { dataset: 'mnist', classes: [3], seeds: [0], protocol: 'short', methods: [{ kind: 'one-class' }] },
        { dataset: 'mnist', classes: [3], seeds: [0], protocol: 'short', methods: [{ kind: 'one-class' }, { kind: 'hybrid', mu2: 1 }] },
      ],
    });
    const cells = expandCells(spec);
    expect(cells.map((c) => c.id)).to.deep.equal(['mnist-short-c3-s0']);
    expect(cells[0]!.methods.map(methodId)).to.deep.equal(['one-class', 'hybrid-mu1=1-mu2=1']);
    const h = cellConfigHash(cells[0]!);
    const other = expandCells(parseSpec({ ...spec, alpha: 0.1 }))[0]!;
    expect(cellConfigHash(other)).to.not.equal(h);
    expect(cellConfigHash(expandCells(spec)[0]!)).to.equal(h);
  });

  it('every committed result record still belongs to its cell (a config change would silently discard finished cells)', () => {
    const results = join(repo, 'results');
    let checked = 0;
    for (const study of existsSync(results) ? readdirSync(results) : []) {
      if (!existsSync(join(results, study, 'spec.json'))) continue;
      const cells = new Map(expandCells(parseSpec(JSON.parse(readFileSync(join(results, study, 'spec.json'), 'utf8')))).map((c) => [c.id, c]));
      // A study that has started but finished no cell yet has no cells/ folder in a clone (git keeps no empty folders).
      const cellsDir = join(results, study, 'cells');
      if (!existsSync(cellsDir)) continue;
      for (const f of readdirSync(cellsDir)) {
        const rec = JSON.parse(readFileSync(join(cellsDir, f), 'utf8')) as { cell: string; configHash: string };
        expect(cells.has(rec.cell), `${study}/${f}: no such cell in the spec`).to.equal(true);
        expect(rec.configHash, `${study}/${f}: config hash`).to.equal(cellConfigHash(cells.get(rec.cell)!));
        checked++;
      }
    }
    if (checked === 0) console.log('      (no committed records to check)');
  });

  it('presets follow the published commands (autoencoder weight decay 0.5e-3 for MNIST, 0.5e-6 for CIFAR-10)', () => {
    const m = defaultConfig('mnist', 3, 'paper'), c = defaultConfig('cifar10', 3, 'paper');
    expect([m.aeEpochs, m.aeMilestones, m.epochs, m.milestones, m.aeWeightDecay, m.weightDecay, m.lr, m.aeLr, m.batchSize]).to.deep.equal([150, [50], 150, [50], 0.5e-3, 0.5e-6, 1e-4, 1e-4, 200]);
    expect([c.aeEpochs, c.aeMilestones, c.epochs, c.milestones, c.aeWeightDecay, c.weightDecay, c.lr, c.aeLr, c.batchSize]).to.deep.equal([350, [250], 150, [50], 0.5e-6, 0.5e-6, 1e-4, 1e-4, 200]);
    expect(defaultConfig('cifar10', 0, 'short').aeWeightDecay).to.equal(0.5e-6);
    expect(m.preprocessing).to.equal('gcn-minmax');
  });
});

describe('study: reference figures and statistics', () => {
  it("the paper's Table 1 rows average to the paper's quoted means (MNIST 94.8, CIFAR-10 64.8 one-class)", () => {
    const mean = (xs: { mean: number }[]): number => xs.reduce((a, x) => a + x.mean, 0) / xs.length;
    expect(mean(PAPER_TABLE1.mnist['one-class'])).to.be.closeTo(94.8, 0.05);
    expect(mean(PAPER_TABLE1.cifar10['one-class'])).to.be.closeTo(64.8, 0.05);
    for (const d of ['mnist', 'cifar10'] as const) for (const k of ['one-class', 'soft-boundary'] as const) expect(PAPER_TABLE1[d][k]).to.have.length(10);
  });

  it('Wilcoxon signed-rank p-values equal scipy.stats.wilcoxon (exact and normal approximation)', () => {
    // scipy 1.17: wilcoxon(d, method='exact') and, for the 60 values, method='approx', correction=False.
    const cases: [number[], number, number][] = [
      [[1.2, -0.5, 3.1, 2.2, 0.7, -1.1, 4.0, 2.5, 0.3, 1.9], 6, 0.02734375],
      [[0.5, 0.4, 0.3, 0.2, 0.1, 0.6, 0.7, 0.8, 0.9, 1.0], 0, 0.001953125],
      [[-2, 1, -3, 4, -5, 6, -7, 8, -9, 10, -11, 12], 37, 0.90966796875],
    ];
    for (const [d, stat, p] of cases) {
      const r = wilcoxonSignedRank(d);
      expect(r.statistic).to.equal(stat);
      expect(r.pValue).to.be.closeTo(p, 1e-12);
      expect(r.method).to.equal('exact');
    }
    const big = [0.645584, 1.121618, 0.630437, -1.003157, 1.205356, 0.746375, -0.236953, 0.881118, 0.664572, 0.594132, 0.328422, 0.846713, -0.436454, 0.13709, -0.182119, 0.898846, 0.339722, 0.007543, -0.481908, 0.042808, 0.308142, 0.024397, 1.594064, 1.306724, -2.411162, -1.589013, 0.125228, -0.12219, 0.513643, 0.517322, 2.417839, -0.812021, -0.077605, 2.342772, 0.946703, 0.963063, -0.214006, -1.348075, 0.467465, 0.409014, -0.927352, -0.383227, 0.227956, -0.644752, 0.20173, 0.395483, 0.335586, -0.206292, 0.893748, 1.191167, 0.620848, -0.51823, 1.031652, -0.20144, 1.179161, -0.771787, 1.214467, 0.279937, -0.948749, -0.013899];
    const r = wilcoxonSignedRank(big);
    expect(r.method).to.equal('normal');
    expect(r.statistic).to.equal(585);
    expect(r.pValue).to.be.closeTo(0.015126799117971637, 2e-6);
    expect(wilcoxonSignedRank([0, 0]).pValue).to.equal(1);
    expect(() => wilcoxonSignedRank([1, NaN])).to.throw(/non-finite/);
  });

  it('sampled ROC curves are the step function: perfect ranking reaches TPR 1 at FPR 0', () => {
    const roc = sampleRoc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]);
    expect(roc).to.have.length(101);
    expect(roc[0]).to.equal(1);
    const inverted = sampleRoc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]);
    expect(inverted[0]).to.equal(0);
    expect(inverted[49]).to.equal(0);
    expect(inverted[100]).to.equal(1);
  });
});

describe('study: shards and locks', () => {
  it('shards are disjoint and cover every cell; Slurm and Kubernetes environments pick the shard', () => {
    const cells = expandCells(parseSpec(BUILTIN_SPECS.short));
    const parts = [0, 1, 2].map((i) => shardCells(cells, { index: i, count: 3 }).map((c) => c.id));
    expect(parts.flat().sort()).to.deep.equal(cells.map((c) => c.id).sort());
    expect(new Set(parts.flat()).size).to.equal(cells.length);
    expect(shardFromEnv(undefined, undefined, { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '4' })).to.deep.equal({ index: 3, count: 4 });
    expect(shardFromEnv(undefined, undefined, { SLURM_ARRAY_TASK_ID: '11', SLURM_ARRAY_TASK_COUNT: '2', SLURM_ARRAY_TASK_MIN: '10' })).to.deep.equal({ index: 1, count: 2 });
    expect(shardFromEnv(undefined, '5', { JOB_COMPLETION_INDEX: '2' })).to.deep.equal({ index: 2, count: 5 });
    expect(shardFromEnv('1/2', undefined, { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '4' })).to.deep.equal({ index: 1, count: 2 });
    expect(shardFromEnv(undefined, undefined, {})).to.deep.equal({ index: 0, count: 1 });
    expect(() => shardFromEnv(undefined, undefined, { JOB_COMPLETION_INDEX: '2' })).to.throw(/--shard-count/);
    expect(() => shardFromEnv(undefined, undefined, { SLURM_ARRAY_TASK_ID: 'x', SLURM_ARRAY_TASK_COUNT: '2' })).to.throw(/SLURM_ARRAY_TASK_ID/);
    expect(() => parseShard('2/2')).to.throw(/0 ≤ i < n/);
    expect(() => parseShard('a/b')).to.throw(/expected i\/n/);
  });

  it('a filter applies before the sharding, so filtered cells still spread over every shard', () => {
    // table1 lists each class's 10 seeds in a row: with --seeds 0 alone every 10th cell is left, and
    // sharding the unfiltered list put all of them in shard 0 of 2 (the other worker sat idle).
    const spec = parseSpec(BUILTIN_SPECS.table1);
    const filter = { datasets: ['mnist'], classes: null, seeds: [0] };
    const wanted = expandCells(spec).filter((c) => c.dataset === 'mnist' && c.seed === 0).map((c) => c.id);
    expect(wanted).to.have.length(10);
    for (const count of [2, 3, 4]) {
      const parts = Array.from({ length: count }, (_, index) => cellsOfShard(spec, { index, count }, filter).map((c) => c.id));
      expect(parts.flat().sort(), `${count} shards`).to.deep.equal([...wanted].sort());
      expect(Math.max(...parts.map((p) => p.length)) - Math.min(...parts.map((p) => p.length)), `${count} shards`).to.be.at.most(1);
    }
  });

  it('a cell lock is exclusive; a dead owner\'s lock (same host) or a lock without heartbeat is taken over', () => {
    const dir = tmp('lock');
    execFileSync('mkdir', ['-p', join(dir, 'locks')]);
    const a = CellLock.acquire(dir, 'cell', 900);
    expect(a).to.not.equal(null);
    expect(CellLock.acquire(dir, 'cell', 900)).to.equal(null);
    a!.release();
    // A lock left by a process that no longer exists.
    const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid!;
    writeFileSync(join(dir, 'locks', 'cell.lock'), JSON.stringify({ host: hostname(), pid: dead, started: '' }));
    expect(lockIsStale(join(dir, 'locks', 'cell.lock'), 900)).to.equal(true);
    const b = CellLock.acquire(dir, 'cell', 900);
    expect(b).to.not.equal(null);
    b!.release();
    // Another host's lock is judged by its heartbeat (file time) alone.
    writeFileSync(join(dir, 'locks', 'cell.lock'), JSON.stringify({ host: 'elsewhere', pid: 1, started: '' }));
    expect(CellLock.acquire(dir, 'cell', 900)).to.equal(null);
    execFileSync('touch', ['-d', '2 hours ago', join(dir, 'locks', 'cell.lock')]);
    expect(CellLock.acquire(dir, 'cell', 900)).to.not.equal(null);
  });
});

/** Spawns the CLI; resolves with its exit code. `until` is polled and kills the process (SIGKILL) when true. */
function runUntil(args: string[], until: () => boolean): Promise<{ code: number | null; killed: boolean }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [svdd, ...args], { stdio: 'ignore' });
    let killed = false;
    const timer = setInterval(() => { if (!killed && until()) { killed = true; child.kill('SIGKILL'); } }, 3);
    child.on('close', (code) => { clearInterval(timer); done({ code, killed }); });
  });
}

describe('train --resume: a run killed mid-epoch continues to byte-identical results', function () {
  this.timeout(180000);
  const args = ['--dataset', 'mnist', '--normal-class', '1', '--ae-epochs', '4', '--epochs', '4', '--ae-milestones', '2', '--milestones', '2',
    '--subset', '1000', '--test-subset', '800', '--threshold', 'adaptive', '--threads', '1', '--checkpoint-every', '1'];
  const soft = ['--objective', 'soft-boundary', '--warm-up-epochs', '1'];
  let reference = '';
  before(async () => {
    const dir = tmp('ref');
    const r = await runUntil(['train', ...args, ...soft, '--out', join(dir, 'run')], () => false);
    expect(r.code).to.equal(0);
    reference = readFileSync(join(dir, 'run', 'results.json'), 'utf8');
  });

  for (const [phase, marker] of [['pretraining', /^\[pretrain\] epoch 2\//m], ['training', /^\[train\] epoch 2\//m], ['hybrid training', /^\[hybrid\] epoch 2\//m]] as const) {
    it(`killed during ${phase}`, async () => {
      const dir = tmp('kill'), run = join(dir, 'run');
      const hybrid = phase === 'hybrid training';
      const extra = hybrid ? ['--hybrid'] : soft;
      let want = reference;
      if (hybrid) {
        expect((await runUntil(['train', ...args, ...extra, '--out', join(dir, 'ref')], () => false)).code).to.equal(0);
        want = readFileSync(join(dir, 'ref', 'results.json'), 'utf8');
      }
      const log = join(run, 'log.txt');
      const r = await runUntil(['train', ...args, ...extra, '--out', run], () => existsSync(log) && marker.test(readFileSync(log, 'utf8')));
      expect(r.killed, 'the run was killed before it finished').to.equal(true);
      expect(existsSync(join(run, 'results.json'))).to.equal(false);
      const before = readCheckpoint(run).seconds;
      expect(before, 'the checkpoint records the seconds so far').to.be.greaterThan(0);
      const res = await cli('train', '--resume', run);
      expect(res.code, res.err).to.equal(0);
      expect(res.out).to.match(/resuming from checkpoint\.safetensors/);
      expect(readFileSync(join(run, 'results.json'), 'utf8')).to.equal(want);
      // The resumed run's wall time includes the time before the resume.
      const timings = JSON.parse(readFileSync(join(run, 'timings.json'), 'utf8')) as { seconds: { total: number; beforeResume: number } };
      expect(timings.seconds.beforeResume).to.equal(before);
      expect(timings.seconds.total).to.be.greaterThan(before);
      expect(existsSync(join(run, 'checkpoint.safetensors')), 'the checkpoint is removed at the end').to.equal(false);
    });
  }

  it('refuses to resume a finished run, or with other settings on the command line', async () => {
    const dir = tmp('fin');
    expect((await cli('train', ...args, ...soft, '--out', join(dir, 'run'))).code).to.equal(0);
    const r = await cli('train', '--resume', join(dir, 'run'));
    expect(r.code).to.equal(2);
    expect(r.err).to.match(/finished run/);
    const r2 = await cli('train', '--resume', join(dir, 'run'), '--epochs', '9');
    expect(r2.err).to.match(/drop --epochs/);
  });
});

describe('study run / status / summarize', function () {
  this.timeout(300000);
  let specPath = '';
  let reference = '';
  before(async () => {
    specPath = join(tmp('specfile'), 'spec.json');
    writeFileSync(specPath, JSON.stringify(TEST_SPEC));
    reference = tmp('uninterrupted');
    const r = await cli('study', 'run', specPath, '--out', reference, '--threads', '1', '--jobs', '1');
    expect(r.code, r.err + r.out).to.equal(0);
  });

  it('runs every cell of the spec, records every method and score, and skips done cells on a rerun', async () => {
    const rec = records(reference) as Record<string, { methods: { method: string; scores: Record<string, { auroc: number; atTau: unknown }> }[]; counts: { validation: number } }>;
    expect(Object.keys(rec)).to.have.length(2);
    const cell = Object.values(rec)[0]!;
    expect(cell.methods.map((m) => m.method)).to.deep.equal(['one-class', 'soft-boundary-nu0.1', 'hybrid-mu1=1-mu2=1']);
    expect(Object.keys(cell.methods[2]!.scores).sort()).to.deep.equal(['combined', 'distance', 'mahalanobis', 'reconstruction']);
    expect(cell.methods[0]!.scores.distance!.atTau).to.not.equal(null);
    expect(cell.counts.validation).to.equal(100);
    const again = await cli('study', 'run', specPath, '--out', reference, '--threads', '1', '--jobs', '1');
    expect(again.out).to.match(/0 cells run, 2 already done/);
    const st = await cli('study', 'status', reference);
    expect(st.out).to.match(/total: 2 done, 0 running, 0 failed, 0 pending of 2/);
    // The filters of study run count only the cells such a run would do (and are checked like run's).
    expect((await cli('study', 'status', reference, '--classes', '1')).out).to.match(/total: 1 done, 0 running, 0 failed, 0 pending of 1;/);
    expect((await cli('study', 'status', reference, '--seeds', '3')).out).to.match(/total: 0 done, 0 running, 0 failed, 0 pending of 0;/);
    const bad = await cli('study', 'status', reference, '--datasets', 'imagenet');
    expect([bad.code, bad.err]).to.deep.equal([2, "svdd: --datasets: unknown dataset 'imagenet'\n"]);
  });

  it('killed anywhere (inside a method, between methods), a rerun completes it with byte-identical records', async () => {
    const dir = tmp('resume');
    const runs = join(dir, 'runs', 'mnist-quick+');
    const cellRun = (method: string, cls: number): string => {
      const d = existsSync(join(dir, 'runs')) ? readdirSync(join(dir, 'runs')).find((x) => x.endsWith(`-c${cls}-s0`)) : undefined;
      return d ? join(dir, 'runs', d, method) : join(runs, 'none');
    };
    // 1: inside the first cell's pretraining (after its first checkpoint); 2: inside a training phase of the second
    // cell (soft-boundary, after a checkpoint); 3: right after the second cell's hybrid run finished, before its record.
    const kills: (() => boolean)[] = [
      () => existsSync(join(cellRun('one-class', 0), 'checkpoint.safetensors')),
      () => existsSync(join(cellRun('soft-boundary-nu0.1', 1), 'checkpoint.safetensors')),
      () => existsSync(join(cellRun('hybrid-mu1=1-mu2=1', 1), 'results.json')),
    ];
    for (const until of kills) {
      const r = await runUntil(['study', 'run', specPath, '--out', dir, '--threads', '1', '--jobs', '1', '--checkpoint-every', '1'], until);
      expect(r.killed, 'killed before the study finished').to.equal(true);
    }
    const final = await cli('study', 'run', specPath, '--out', dir, '--threads', '1', '--jobs', '1', '--checkpoint-every', '1');
    expect(final.code, final.err).to.equal(0);
    expect(records(dir)).to.deep.equal(records(reference));
    // A method's seconds are its run's own total, which counts the time before a resume (the
    // soft-boundary run of class 1 was killed and resumed).
    const cell1 = readdirSync(join(dir, 'cells')).sort()[1]!;
    const rec = JSON.parse(readFileSync(join(dir, 'cells', cell1), 'utf8')) as { methods: { method: string; seconds: number }[] };
    const soft = rec.methods.find((m) => m.method === 'soft-boundary-nu0.1')!;
    const timings = JSON.parse(readFileSync(join(cellRun('soft-boundary-nu0.1', 1), 'timings.json'), 'utf8')) as { seconds: { total: number; beforeResume?: number } };
    expect(timings.seconds.beforeResume, 'the run was resumed').to.be.greaterThan(0);
    expect(soft.seconds).to.equal(Number(timings.seconds.total.toFixed(2)));
  });

  it('--jobs 2 splits the cells over two processes with the same records', async () => {
    const dir = tmp('jobs');
    const r = await cli('study', 'run', specPath, '--out', dir, '--jobs', '2', '--threads', '1');
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/\[job 0\].*1 cells run/s);
    expect(r.out).to.match(/\[job 1\].*1 cells run/s);
    expect(records(dir)).to.deep.equal(records(reference));
  });

  it('--jobs workers stop when their parent is killed; the next run completes the study with the same records', async () => {
    const dir = tmp('orphans');
    const first = (): boolean => existsSync(join(dir, 'runs')) && readdirSync(join(dir, 'runs')).some((c) => existsSync(join(dir, 'runs', c, 'one-class', 'checkpoint.safetensors')));
    const r = await runUntil(['study', 'run', specPath, '--out', dir, '--jobs', '2', '--threads', '1', '--checkpoint-every', '1'], first);
    expect(r.killed).to.equal(true);
    let left = '';
    // A worker notices at its next batch (tens of ms); without that it would run its cell to the end (seconds).
    for (let i = 0; i < 20; i++) {
      left = spawnSync('pgrep', ['-f', dir], { encoding: 'utf8' }).stdout.trim();
      if (!left) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(left, 'no worker outlives its parent').to.equal('');
    const done = await cli('study', 'run', specPath, '--out', dir, '--jobs', '2', '--threads', '1');
    expect(done.code, done.err).to.equal(0);
    expect(records(dir)).to.deep.equal(records(reference));
  });

  it('refuses another spec in the same directory and a bad shard in one line', async () => {
    const r = await cli('study', 'run', 'smoke', '--out', reference);
    expect(r.code).to.equal(2);
    expect(r.err).to.match(/holds a different study/);
    const r2 = await cli('study', 'run', specPath, '--out', reference, '--shard', '3/2');
    expect(r2.err).to.match(/--shard: need 0 ≤ i < n/);
  });

  it('summarize writes summary.md/.csv/.html with the paper beside the one-class and soft-boundary columns', async () => {
    const out = tmp('summary');
    const r = await cli('study', 'summarize', reference, '--out', out);
    expect(r.code, r.err).to.equal(0);
    const md = readFileSync(join(out, 'summary.md'), 'utf8');
    expect(md).to.match(/## MNIST, protocol quick\+[0-9a-f]+, GCN \+ min-max preprocessing/);
    expect(md).to.include('| class | one-class | paper one-class | Δ/σ | soft-boundary | paper soft-boundary | Δ/σ |');
    expect(md).to.match(/\| 1 \| [0-9.]+ ± 0\.0 \(1\) \| 99\.7 ± 0\.1 \|/);
    expect(md).to.include('Wilcoxon p');
    const csv = readFileSync(join(out, 'summary.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).to.match(/^dataset,preprocessing,protocol,class,method,method_id,score,n,auroc_mean/);
    expect(csv).to.have.length(1 + 2 * 8);
    const html = readFileSync(join(out, 'summary.html'), 'utf8');
    expect(html.match(/<svg /g)).to.have.length(3);
    expect(html).to.not.match(/<script|https?:\/\/(?!www\.w3\.org)/);
  });
});

/** Starts the one-node Slurm cluster of ../shared/slurm (root, Debian), or says why it cannot. */
function startSlurm(): string | null {
  const script = resolve(repo, '..', 'shared', 'slurm', 'local-cluster.sh');
  if (!existsSync(script)) return `no ${script}`;
  if (process.getuid?.() !== 0) return 'not root (the local cluster installs and starts daemons)';
  const r = spawnSync('bash', [script, 'start'], { encoding: 'utf8', timeout: 240000 });
  if (r.status !== 0) return `local-cluster.sh start failed: ${(r.stderr || r.stdout).trim().split('\n').at(-1)}`;
  return null;
}

describe('study on a real Slurm cluster (sbatch --wait job arrays)', function () {
  this.timeout(600000);
  let specPath = '', local = '';
  before(async function () {
    const why = startSlurm();
    if (why) { console.log(`      skipped: no Slurm: ${why}`); this.skip(); }
    specPath = join(tmp('slurmspec'), 'spec.json');
    writeFileSync(specPath, JSON.stringify(TEST_SPEC));
    local = tmp('slurmlocal');
    expect((await cli('study', 'run', specPath, '--out', local, '--threads', '1', '--jobs', '1')).code).to.equal(0);
    expect((await cli('study', 'summarize', local)).code).to.equal(0);
  });

  /** summary.csv without the wall-time column. */
  const csvNoTime = (dir: string): string => readFileSync(join(dir, 'summary.csv'), 'utf8').split('\n').map((l) => l.split(',').slice(0, -1).join(',')).join('\n');

  it('an array job of 2 shards gives the same summary as a local run', async () => {
    const dir = tmp('slurm'), script = join(dir, 'job.sbatch');
    expect((await cli('study', 'slurm', specPath, '--out', join(dir, 'study'), '--shards', '2', '--cpus', '1', '--time', '00:20:00', '--write', script)).code).to.equal(0);
    const r = spawnSync('sbatch', ['--wait', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    expect(readdirSync(join(dir, 'study', 'cells'))).to.have.length(2);
    expect((await cli('study', 'summarize', join(dir, 'study'))).code).to.equal(0);
    expect(csvNoTime(join(dir, 'study'))).to.equal(csvNoTime(local));
  });

  it('a killed array task leaves its cell unfinished; resubmitting the script completes the study', async () => {
    const dir = tmp('slurmkill'), script = join(dir, 'job.sbatch'), study = join(dir, 'study');
    expect((await cli('study', 'slurm', specPath, '--out', study, '--shards', '2', '--cpus', '1', '--time', '00:20:00', '--write', script)).code).to.equal(0);
    const sub = spawnSync('sbatch', ['--parsable', script], { encoding: 'utf8' });
    expect(sub.status, sub.stderr).to.equal(0);
    const job = sub.stdout.trim().split(';')[0]!;
    // Kill task 1 as soon as its cell has a checkpoint (SIGKILL through scancel: no cleanup runs).
    const deadline = Date.now() + 120000;
    let killedTask = false;
    while (Date.now() < deadline) {
      const runs = existsSync(join(study, 'runs')) ? readdirSync(join(study, 'runs')).filter((d) => d.endsWith('-c1-s0')) : [];
      if (runs.length && existsSync(join(study, 'runs', runs[0]!, 'one-class', 'checkpoint.safetensors'))) {
        spawnSync('scancel', ['--signal=KILL', `${job}_1`]);
        killedTask = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(killedTask, 'task 1 was killed mid-cell').to.equal(true);
    for (let i = 0; i < 600 && spawnSync('squeue', ['-h', '-j', job], { encoding: 'utf8' }).stdout.trim(); i++) await new Promise((r) => setTimeout(r, 200));
    expect(readdirSync(join(study, 'cells'))).to.have.length(1);
    const again = spawnSync('sbatch', ['--wait', script], { encoding: 'utf8' });
    expect(again.status, again.stderr).to.equal(0);
    expect(readdirSync(join(study, 'cells'))).to.have.length(2);
    expect((await cli('study', 'summarize', study)).code).to.equal(0);
    expect(csvNoTime(study)).to.equal(csvNoTime(local));
    rmSync(dir, { recursive: true, force: true });
  });
});
