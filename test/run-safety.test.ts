/**
 * Issue 11, items 8–12 and the run-directory fixes of its "also fix" list: divergence stops a run
 * in one line without a model; a last batch of one image and a validation set too small for α;
 * file-system errors in one line; one writer per run directory; a run is complete only at its end.
 */
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/tensor/creation.ts';
import { buildAutoencoder } from '../src/svdd/networks.ts';
import { pretrainAutoencoder } from '../src/svdd/trainer.ts';
import { randomFloats } from './helpers.ts';
import { runCli, errorLines, mnistPng, TINY, type CliRun } from './cli-run.ts';
import { claimDefaultOutDir, prepareRunDir } from '../src/svdd/run-dir.ts';

function expectOneLine(r: CliRun, ...patterns: RegExp[]): void {
  if (r.threw) throw new Error(`escaped exception (a stack trace for a user): ${r.threw.stack}`);
  expect(r.code, `exit status; stderr: ${r.err}`).to.equal(2);
  const lines = errorLines(r);
  expect(lines.length, r.err).to.equal(1);
  for (const p of patterns) expect(p.test(lines[0]!), `${p} in ${lines[0]}`).to.equal(true);
}

describe('divergence: a non-finite loss or weight stops the run in one line, with no model', function () {
  this.timeout(300000);
  let tmp = '';
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'svdd-diverge-')); });
  after(() => { rmSync(tmp, { recursive: true, force: true }); });

  const probes: [string, string[], RegExp][] = [
    ['training (one-class)', ['--lr', '1e30'], /^svdd: training/],
    ['training with --threshold adaptive (the Gaussian fit)', ['--lr', '1e30', '--threshold', 'adaptive'], /\btrain/],
    ['training with a validation split (the thresholds)', ['--lr', '1e30', '--val-fraction', '0.1'], /\btrain/],
    ['pretraining', ['--ae-lr', '1e30'], /pretrain/],
    ['hybrid training', ['--hybrid', '--lr', '1e30'], /hybrid/],
    ['soft-boundary training over several epochs', ['--objective', 'soft-boundary', '--warm-up-epochs', '0', '--lr', '1e30', '--epochs', '3'], /\btrain/],
  ];
  for (const [what, flags, phase] of probes) {
    it(what, async () => {
      const out = join(tmp, what.replace(/\W+/g, '_'));
      const r = await runCli(['train', ...TINY, ...flags, '--out', out]);
      expectOneLine(r, /diverged/, phase);
      for (const f of ['model.json', 'model.safetensors', 'results.json', 'checkpoint.safetensors']) {
        expect(existsSync(join(out, f)), `${f} in ${readdirSync(out).join(', ')}`).to.equal(false);
      }
    });
  }
});

const CIFAR_DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'shared', 'data', 'cifar-10');

describe('small sets: a last batch of one image, a training set of one, a validation set too small for α', function () {
  this.timeout(600000);
  let tmp = '';
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'svdd-small-')); });
  after(() => { rmSync(tmp, { recursive: true, force: true }); });

  it('CIFAR-10 --subset 201, batch 200: the last batch of one image is dropped where BatchNorm1d needs two (pretraining, hybrid)', async function () {
    if (!existsSync(CIFAR_DIR)) { console.log(`      skipped: no CIFAR-10 files in ${CIFAR_DIR}`); this.skip(); }
    const out = join(tmp, 'cifar201');
    const r = await runCli(['train', '--dataset', 'cifar10', '--data-dir', CIFAR_DIR, '--subset', '201', '--test-subset', '60',
      '--ae-epochs', '1', '--epochs', '1', '--hybrid', '--threads', '1', '--out', out]);
    if (r.threw) throw r.threw;
    expect(r.code, r.err).to.equal(0);
    const log = readFileSync(join(out, 'log.txt'), 'utf8');
    expect(log).to.match(/pretrain.*last batch of 1 image is dropped/i);
    expect(log).to.match(/hybrid.*last batch of 1 image is dropped/i);
  });

  it('the MNIST networks (no BatchNorm1d) keep every batch: a last batch of one still trains', () => {
    const set = { x: randomFloats(201 * 784, 3).map((v) => (v + 1) / 2), count: 201, shape: [1, 28, 28] as const };
    let batches = 0;
    pretrainAutoencoder(buildAutoencoder('mnist_LeNet', { seed: 1 }), set, { epochs: 1, lr: 1e-4, milestones: [], gamma: 0.1, weightDecay: 0, batchSize: 200, amsgrad: false },
      new Rng(0), { onBatch: () => { batches++; } });
    expect(batches).to.equal(2);
  });

  it('a training set of one image is one line', async () => {
    const out = join(tmp, 'one');
    const r = await runCli(['train', ...TINY.filter((_, i, a) => a[i] !== '--subset' && a[i - 1] !== '--subset'), '--subset', '2', '--val-fraction', '0.5', '--out', out]);
    expectOneLine(r, /training set.*1 image/);
  });

  it('a validation set smaller than 1/α images: a warning that the observed FPR cannot resolve α', async () => {
    const out = join(tmp, 'smallval');
    const r = await runCli(['train', ...TINY.filter((_, i, a) => a[i] !== '--subset' && a[i - 1] !== '--subset'), '--subset', '40', '--val-fraction', '0.1', '--out', out]);
    expect(r.code, r.err).to.equal(0);
    const warning = /WARNING: the validation set has 4 images.*α = 0\.05 needs at least 20/;
    expect(r.out).to.match(warning);
    expect(readFileSync(join(out, 'log.txt'), 'utf8')).to.match(warning);
  });
});

const SVDD_BIN = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'bin', 'svdd.js');

/** A tmpfs of `size` mounted at a new directory (root only); null with the reason when it cannot be had. */
function smallTmpfs(size: string): { dir: string; remount(opts: string): void; release(): void } | string {
  if (process.getuid?.() !== 0) return 'not root: cannot mount a tmpfs';
  const dir = mkdtempSync(join(tmpdir(), 'svdd-tmpfs-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) { rmSync(dir, { recursive: true, force: true }); return `mount -t tmpfs failed: ${(r.stderr || r.error?.message || '').trim()}`; }
  return {
    dir,
    remount: (opts) => { const m = spawnSync('mount', ['-o', `remount,${opts}`, dir], { encoding: 'utf8' }); if (m.status !== 0) throw new Error(m.stderr); },
    release: () => { spawnSync('umount', [dir]); rmSync(dir, { recursive: true, force: true }); },
  };
}

describe('file-system errors are one line', function () {
  this.timeout(300000);
  let tmp = '', model = '';
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'svdd-fs-'));
    model = join(tmp, 'model');
    const r = await runCli(['train', ...TINY, '--out', model]);
    expect(r.code, r.err).to.equal(0);
  });
  after(() => { rmSync(tmp, { recursive: true, force: true }); });

  it('--out naming a file, or a directory inside a file', async () => {
    const file = join(tmp, 'afile');
    writeFileSync(file, 'x');
    expectOneLine(await runCli(['train', ...TINY, '--out', file]), /afile/, /not a directory|is a file/);
    expectOneLine(await runCli(['train', ...TINY, '--out', join(file, 'sub')]), /afile/, /not a directory/);
    expect(readFileSync(file, 'utf8')).to.equal('x');
  });

  it('explain --out naming a file', async () => {
    const file = join(tmp, 'bfile');
    writeFileSync(file, 'x');
    expectOneLine(await runCli(['explain', '--model', model, '--index', '0', '--test-subset', '300', '--out', file]), /bfile/);
  });

  it('ENOSPC during a run (a 96 KiB tmpfs): one line, the run left incomplete, and predict refuses it', async function () {
    const fs = smallTmpfs('96k');
    if (typeof fs === 'string') { console.log(`      skipped: ${fs}`); this.skip(); return; }
    try {
      const out = join(fs.dir, 'run');
      const r = await runCli(['train', ...TINY, '--out', out]);
      expectOneLine(r, /no space left on device/, /ENOSPC/);
      expect(existsSync(join(out, 'results.json'))).to.equal(false);
      expect(readdirSync(out).filter((f) => /\.tmp-\d+$/.test(f))).to.deep.equal([]);
      const p = await runCli(['test', '--model', out, '--threads', '1']);
      expectOneLine(p, /no complete|not complete|incomplete/);
    } finally { fs.release(); }
  });

  it('svdd test on a read-only model directory prints the metrics, then one line on where the results could not go; --out FILE writes them elsewhere', async function () {
    const fs = smallTmpfs('20m');
    if (typeof fs === 'string') { console.log(`      skipped: ${fs}`); this.skip(); return; }
    try {
      const ro = join(fs.dir, 'model');
      cpSync(model, ro, { recursive: true });
      fs.remount('ro');
      const r = await runCli(['test', '--model', ro, '--threads', '1']);
      if (r.threw) throw r.threw;
      expect(r.out).to.match(/test AUROC \d+\.\d\d/);
      expect(r.code).to.equal(2);
      const lines = errorLines(r);
      expect(lines).to.have.length(1);
      expect(lines[0]).to.match(/test_results\.json/);
      expect(lines[0]).to.match(/read-only/);
      expect(lines[0]).to.match(/--out/);
      const elsewhere = join(tmp, 'elsewhere.json');
      const r2 = await runCli(['test', '--model', ro, '--threads', '1', '--out', elsewhere]);
      expect(r2.code, r2.err).to.equal(0);
      expect(JSON.parse(readFileSync(elsewhere, 'utf8')).scores).to.have.length(300);
    } finally { fs.release(); }
  });
});

/** Spawns `svdd train …` as a child process; resolves with its exit code and output. */
function spawnTrain(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; err: string }> } {
  const child = spawn(process.execPath, [SVDD_BIN, 'train', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  return { child, done: new Promise((resolve) => child.on('close', (code) => resolve({ code, err }))) };
}
const waitFor = async (cond: () => boolean, ms = 60000): Promise<void> => {
  const t0 = Date.now();
  while (!cond()) { if (Date.now() - t0 > ms) throw new Error('timed out waiting'); await new Promise((r) => setTimeout(r, 20)); }
};

describe('one writer per run directory; a run is complete only at its end', function () {
  this.timeout(600000);
  let tmp = '';
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'svdd-lock-')); });
  after(() => { rmSync(tmp, { recursive: true, force: true }); });

  it('two svdd train into one --out: the second is refused while the first runs, the first finishes', async () => {
    const out = join(tmp, 'shared');
    const long = ['--subset', '1000', '--test-subset', '300', '--ae-epochs', '4', '--epochs', '4', '--threads', '1', '--out', out];
    const a = spawnTrain(long);
    await waitFor(() => existsSync(join(out, 'log.txt')));
    const b = await runCli(['train', ...TINY, '--out', out]);
    expectOneLine(b, /another svdd process/, new RegExp(`pid ${a.child.pid}`));
    const ra = await a.done;
    expect(ra.code, ra.err).to.equal(0);
    expect(existsSync(join(out, 'results.json'))).to.equal(true);
  });

  it('a lock left by a dead process is taken over', async () => {
    const out = join(tmp, 'stale');
    mkdirSync(out);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(join(out, '.svdd-lock'), JSON.stringify({ host: hostname(), pid: dead, started: new Date().toISOString() }));
    const r = await runCli(['train', ...TINY, '--out', out]);
    expect(r.code, r.err).to.equal(0);
    expect(existsSync(join(out, '.svdd-lock'))).to.equal(false);
  });

  it('an empty lock (a writer killed before its pid was in the file) is taken over at once', async () => {
    // The lock is linked into place with its content, so no live writer's lock is ever empty.
    const out = join(tmp, 'empty-lock');
    mkdirSync(out);
    writeFileSync(join(out, '.svdd-lock'), '');
    const r = await runCli(['train', ...TINY, '--out', out]);
    expect(r.code, r.err).to.equal(0);
    expect(readdirSync(out).filter((f) => f.startsWith('.svdd-lock'))).to.deep.equal([]);
  });

  it('the default --out has millisecond resolution and never reuses a directory', () => {
    const dirs = new Set<string>();
    const root = join(tmp, 'runs');
    for (let i = 0; i < 5; i++) {
      const d = claimDefaultOutDir(root, 'mnist-0');
      expect(dirs.has(d)).to.equal(false);
      dirs.add(d);
      expect(d).to.match(/mnist-0-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}(-\d+)?$/);
    }
  });

  it('a killed run (no results.json) is refused by predict and test, and a rerun replaces it, *.tmp-<pid> leftovers included', async () => {
    const out = join(tmp, 'killed');
    const r0 = await runCli(['train', ...TINY, '--out', out]);
    expect(r0.code, r0.err).to.equal(0);
    // What a run killed after saving its model leaves: no results.json, a temporary file.
    rmSync(join(out, 'results.json'));
    rmSync(join(out, 'timings.json'));
    writeFileSync(join(out, 'results.json.tmp-99999'), '{"trunc');
    const png = join(tmp, 'digit.png');
    mnistPng(png, 3);
    expectOneLine(await runCli(['predict', '--model', out, '--input', png, '--threads', '1']), /not complete|incomplete|no complete/);
    expectOneLine(await runCli(['test', '--model', out, '--threads', '1']), /not complete|incomplete|no complete/);
    const r = await runCli(['train', ...TINY, '--seed', '3', '--out', out]);
    expect(r.code, r.err).to.equal(0);
    expect(r.out + r.err).to.match(/replac/);
    expect(existsSync(join(out, 'results.json'))).to.equal(true);
    expect(readdirSync(out).filter((f) => f.includes('.tmp-'))).to.deep.equal([]);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).seed).to.equal(3);
  });

  it('a real SIGKILL mid-run (no checkpoint) leaves a run predict refuses and a rerun replaces', async () => {
    const out = join(tmp, 'sigkill');
    const a = spawnTrain(['--subset', '1000', '--test-subset', '300', '--ae-epochs', '6', '--epochs', '6', '--threads', '1', '--checkpoint-every', '0', '--out', out]);
    await waitFor(() => existsSync(join(out, 'log.txt')) && /\[pretrain\] epoch 1\//.test(readFileSync(join(out, 'log.txt'), 'utf8')));
    a.child.kill('SIGKILL');
    await a.done;
    expect(existsSync(join(out, 'results.json'))).to.equal(false);
    const r = await runCli(['train', ...TINY, '--out', out]);
    expect(r.code, r.err).to.equal(0);
    expect(existsSync(join(out, 'results.json'))).to.equal(true);
  });

  it('an interrupted run with a checkpoint is not replaced by a plain rerun (continue it with --resume); a directory of other files is never emptied', async () => {
    const out = join(tmp, 'resumable');
    const r0 = await runCli(['train', ...TINY, '--checkpoint-every', '1', '--out', out]);
    expect(r0.code, r0.err).to.equal(0);
    // Killed in training after a checkpoint: the checkpoint is there, results.json is not.
    rmSync(join(out, 'results.json'));
    writeFileSync(join(out, 'checkpoint.safetensors'), readFileSync(join(out, 'autoencoder.safetensors')));
    expectOneLine(await runCli(['train', ...TINY, '--out', out]), /--resume/);
    expect(existsSync(join(out, 'checkpoint.safetensors'))).to.equal(true);
    const mine = join(tmp, 'mine');
    mkdirSync(mine);
    writeFileSync(join(mine, 'config.json'), '{}');
    writeFileSync(join(mine, 'notes.txt'), 'precious');
    expectOneLine(await runCli(['train', ...TINY, '--out', mine]), /not empty/);
    expect(readFileSync(join(mine, 'notes.txt'), 'utf8')).to.equal('precious');
  });
});

describe("svdd test scores the run's own test set", function () {
  this.timeout(600000);
  let tmp = '';
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'svdd-testdata-')); });
  after(() => { rmSync(tmp, { recursive: true, force: true }); });

  it('a --test-subset run: the same subset, the same scores', async () => {
    const out = join(tmp, 'sub');
    expect((await runCli(['train', ...TINY, '--out', out])).code).to.equal(0);
    const r = await runCli(['test', '--model', out, '--threads', '1']);
    expect(r.code, r.err).to.equal(0);
    const saved = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).scores;
    const again = JSON.parse(readFileSync(join(out, 'test_results.json'), 'utf8')).scores;
    expect(again).to.have.length(300);
    expect(again).to.deep.equal(saved);
  });

  it('a CIFAR-10 run: its --data-dir is remembered', async function () {
    if (!existsSync(CIFAR_DIR)) { console.log(`      skipped: no CIFAR-10 files in ${CIFAR_DIR}`); this.skip(); }
    const out = join(tmp, 'cifar');
    const t = await runCli(['train', '--dataset', 'cifar10', '--data-dir', CIFAR_DIR, '--subset', '200', '--test-subset', '60', '--ae-epochs', '1', '--epochs', '1', '--threads', '1', '--out', out]);
    expect(t.code, t.err).to.equal(0);
    const r = await runCli(['test', '--model', out, '--threads', '1']);
    if (r.threw) throw r.threw;
    expect(r.code, r.err).to.equal(0);
    expect(JSON.parse(readFileSync(join(out, 'test_results.json'), 'utf8')).scores).to.deep.equal(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).scores);
  });
});

describe('run locks inside a study', () => {
  it("a run lock left by a killed worker on another host is taken over when the caller holds the study's cell lock", () => {
    const dir = mkdtempSync(join(tmpdir(), 'svdd-takeover-'));
    try {
      writeFileSync(join(dir, '.svdd-lock'), JSON.stringify({ host: 'another-node', pid: 1, started: new Date().toISOString() }));
      expect(() => prepareRunDir(dir, { resume: true })).to.throw(/another svdd process.*another-node/);
      const { lock } = prepareRunDir(dir, { resume: true, takeOverLock: true });
      expect(JSON.parse(readFileSync(join(dir, '.svdd-lock'), 'utf8')).pid).to.equal(process.pid);
      lock.release();
      expect(existsSync(join(dir, '.svdd-lock'))).to.equal(false);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });
});
