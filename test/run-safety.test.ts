/**
 * Issue 11, items 8–12 and the run-directory fixes of its "also fix" list: divergence stops a run
 * in one line without a model; a last batch of one image and a validation set too small for α;
 * file-system errors in one line; one writer per run directory; a run is complete only at its end.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/tensor/creation.ts';
import { buildAutoencoder } from '../src/svdd/networks.ts';
import { pretrainAutoencoder } from '../src/svdd/trainer.ts';
import { randomFloats } from './helpers.ts';
import { runCli, errorLines, TINY, type CliRun } from './cli-run.ts';

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
