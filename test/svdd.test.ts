import { expect } from 'chai';
import { mkdtempSync, readFileSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ag from '../src/autograd/index.ts';
import { main, type CliIo } from '../src/cli/main.ts';
import { Rng, randNormal, tensor } from '../src/tensor/creation.ts';
import { initCenter, radiusFromDistances, softBoundaryLoss, hybridLoss } from '../src/svdd/trainer.ts';
import { detectCollapse } from '../src/svdd/evaluate.ts';
import { buildAutoencoder, buildEncoder, copyEncoderWeights } from '../src/svdd/networks.ts';
import { Adam } from '../src/nn/index.ts';
import { quantileLinear } from '../src/svdd/metrics.ts';

/** Runs the CLI in-process, capturing its output. */
export async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const io: CliIo = { out: (t) => { out += t; }, err: (t) => { err += t; }, stderrStream: process.stderr };
  const code = await main(argv, io);
  return { code, out, err };
}

const tiny = ['--preset', 'quick', '--subset', '200', '--test-subset', '400', '--ae-epochs', '1', '--epochs', '2', '--backend', 'ts'];

describe('Deep SVDD rules', () => {
  it('center c is the mean code with |c_i| < eps pushed to ±eps', () => {
    const codes = Float64Array.from([0.5, -0.05, -0.02, 0, 0.7, 0.01, -0.06, 0]);
    const c = initCenter(codes, 2, 0.1);
    expect(Array.from(c)).to.deep.equal([0.6, -0.1, -0.1, 0.1]);
  });

  it('radius R is the (1 − ν)-quantile of the distances ||φ(x) − c|| (not squared)', () => {
    const sq = Float64Array.from({ length: 50 }, (_, i) => (i + 1) ** 2);
    expect(radiusFromDistances(sq, 0.1)).to.be.closeTo(quantileLinear(Float64Array.from({ length: 50 }, (_, i) => i + 1), 0.9), 1e-12);
  });

  it('soft-boundary loss is R² + mean(max(0, d − R²))/ν and differentiates like it', () => {
    const d = tensor([0.5, 2, 4, 1], [4], 'float64');
    expect(softBoundaryLoss(d, 1.2, 0.5).item()).to.be.closeTo(1.44 + ((2 - 1.44) + (4 - 1.44)) / 4 / 0.5, 1e-12);
    const res = ag.gradCheck((x) => softBoundaryLoss(x!, 1.2, 0.5), [tensor([0.5, 2, 4, 1], [4], 'float64')]);
    expect(res.maxError).to.be.below(1e-8);
  });

  it('detects collapsed (constant or non-finite) scores', () => {
    expect(detectCollapse([1, 1, 1], 'x').detected).to.equal(true);
    expect(detectCollapse([1, NaN, 2], 'x').detected).to.equal(true);
    expect(detectCollapse([1, 1.5, 1], 'x').detected).to.equal(false);
  });

  it('hybrid: with μ2 > 0 the reconstruction term changes the encoder update', () => {
    const x = randNormal([8, 1, 28, 28], 0.5, 0.2, new Rng(3));
    const encoderUpdate = (mu2: number): Float32Array => {
      const ae = buildAutoencoder('mnist_LeNet', { seed: 1 });
      const c = tensor(Array.from({ length: 32 }, (_, i) => (i % 2 ? 0.1 : -0.1)), [32]);
      const before = Float32Array.from(ae.getModule('conv1').namedParameters()[0]![1].values());
      const opt = new Adam(ae.parameters(), { lr: 1e-3 });
      ag.backward(hybridLoss(ae, x, c, 1, mu2).loss);
      opt.step();
      const after = ae.getModule('conv1').namedParameters()[0]![1].values();
      return Float32Array.from(after, (v, i) => v - before[i]!);
    };
    const plain = encoderUpdate(0), hybrid = encoderUpdate(0.5);
    let diff = 0;
    for (let i = 0; i < plain.length; i++) diff = Math.max(diff, Math.abs(plain[i]! - hybrid[i]!));
    expect(diff).to.be.greaterThan(1e-6);
    // And the reconstruction term alone reaches the encoder's first layer.
    const ae = buildAutoencoder('mnist_LeNet', { seed: 1 });
    const { recon } = hybridLoss(ae, x, tensor(new Array(32).fill(0.1), [32]), 1, 1);
    ag.backward(recon);
    const g = ae.getModule('conv1').namedParameters()[0]![1].grad!.values();
    expect(Math.max(...Array.from(g, Math.abs))).to.be.greaterThan(0);
  });

  it('copies the pretrained encoder weights into the Deep SVDD network by name', () => {
    const ae = buildAutoencoder('mnist_LeNet', { seed: 5 }), enc = buildEncoder('mnist_LeNet', { seed: 6 });
    copyEncoderWeights(ae, enc);
    const aeState = ae.stateDict();
    for (const [name, t] of enc.stateDict()) expect(Array.from(t.values())).to.deep.equal(Array.from(aeState.get(name)!.values()));
  });
});

describe('svdd CLI end to end (tiny MNIST run)', function () {
  this.timeout(180000);
  const root = mkdtempSync(join(tmpdir(), 'svdd-e2e-'));
  const run1 = join(root, 'run1'), run2 = join(root, 'run2');

  it('train writes config, log, model, results and image grids', async () => {
    const r = await cli('train', ...tiny, '--out', run1);
    expect(r.code, r.err).to.equal(0);
    for (const f of ['config.json', 'log.txt', 'model.json', 'model.safetensors', 'autoencoder.safetensors', 'results.json', 'timings.json', 'normals.png', 'anomalies.png']) {
      expect(existsSync(join(run1, f)), f).to.equal(true);
    }
    const res = JSON.parse(readFileSync(join(run1, 'results.json'), 'utf8'));
    expect(res.evaluation.metrics.auroc).to.be.within(0.5, 1);
    expect(res.scores).to.have.length(400);
    expect(res.evaluation.positiveClass).to.match(/anomaly/);
    expect(res.history.train).to.have.length(2);
    expect(readFileSync(join(run1, 'log.txt'), 'utf8')).to.match(/\[train\] epoch 2\/2 loss/);
    expect(r.out).to.match(/test AUROC \d+\.\d\d/);
  });

  it('the same seed and backend give an identical results.json', async () => {
    const r = await cli('train', ...tiny, '--out', run2);
    expect(r.code, r.err).to.equal(0);
    expect(readFileSync(join(run2, 'results.json'), 'utf8')).to.equal(readFileSync(join(run1, 'results.json'), 'utf8'));
  });

  it('test --model reloads the saved model and reproduces every score', async () => {
    const r = await cli('test', '--model', run1, '--test-subset', '400', '--backend', 'ts');
    expect(r.code, r.err).to.equal(0);
    const saved = JSON.parse(readFileSync(join(run1, 'results.json'), 'utf8')).scores;
    const again = JSON.parse(readFileSync(join(run1, 'test_results.json'), 'utf8')).scores;
    expect(again).to.deep.equal(saved);
  });

  it('--ae-weights reuses a saved autoencoder: same scores as the run that pretrained it', async () => {
    const out = join(root, 'reuse');
    const r = await cli('train', ...tiny, '--ae-weights', join(run1, 'autoencoder.safetensors'), '--out', out);
    expect(r.code, r.err).to.equal(0);
    const a = JSON.parse(readFileSync(join(run1, 'results.json'), 'utf8')), b = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(b.history.pretrain).to.have.length(0);
    expect(b.scores).to.deep.equal(a.scores);
  });

  it('a config file is read and flags override it', async () => {
    const cfgPath = join(root, 'cfg.json');
    writeFileSync(cfgPath, JSON.stringify({ objective: 'soft-boundary', nu: 0.2, warmUpEpochs: 0, epochs: 5 }));
    const out = join(root, 'sb');
    const r = await cli('train', ...tiny, '--config', cfgPath, '--epochs', '2', '--out', out);
    expect(r.code, r.err).to.equal(0);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(cfg).to.include({ objective: 'soft-boundary', nu: 0.2, epochs: 2 });
    const model = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
    expect(model.radiusR).to.be.greaterThan(0);
  });

  it('refuses an output directory that holds another run, and overwrites nothing', async () => {
    const before = statSync(join(run1, 'results.json')).mtimeMs;
    const r = await cli('train', ...tiny, '--out', run1);
    expect(r.code).to.equal(2);
    expect(r.err).to.match(/not empty/);
    expect(statSync(join(run1, 'results.json')).mtimeMs).to.equal(before);
  });

  it('bad input gives one clear message and exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['train', '--dataset', 'imagenet'], /--dataset: expected one of mnist, fashion-mnist, cifar10/],
      [['train', '--normal-class', '10', '--out', join(root, 'x1')], /--normal-class must be an integer 0\.\.9/],
      [['train', '--lr', 'fast'], /--lr: expected a number, got 'fast'/],
      [['train', '--bogus'], /unknown flag --bogus for svdd train/],
      [['train', '--dataset', 'cifar10', '--data-dir', join(root, 'nothing'), '--out', join(root, 'x2')], /cifar/i],
      [['test', '--model', join(root, 'nothing')], /holds no complete model/],
      [['frobnicate'], /unknown command/],
    ];
    for (const [argv, re] of cases) {
      const r = await cli(...argv);
      expect(r.code, argv.join(' ')).to.equal(2);
      expect(r.err.trim().split('\n')[0], argv.join(' ')).to.match(re);
    }
    expect(existsSync(join(root, 'x1'))).to.equal(false);
  });
});
