/**
 * `svdd explain` end to end on a tiny hybrid MNIST model with adaptive thresholds: every method,
 * the faithfulness evaluation, explaining PNG files, the combined score, and flag errors.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { main } from '../src/cli/main.ts';
import { explainCommand } from '../src/cli/explain-command.ts';
import { loadRaw } from '../src/svdd/data/datasets.ts';
import { loadModel, loadModelData } from '../src/svdd/model.ts';
import { UsageError } from '../src/cli/usage-error.ts';
import { explain } from '../src/svdd/explain/explain.ts';
import { modelScorer, scoreMany } from '../src/svdd/explain/score.ts';
import { scoreImages } from '../src/svdd/evaluate.ts';

async function capture(fn: () => Promise<unknown>): Promise<{ out: string; err: string }> {
  const o = process.stdout.write.bind(process.stdout), e = process.stderr.write.bind(process.stderr);
  let out = '', err = '';
  process.stdout.write = ((s: string | Uint8Array) => { out += String(s); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { err += String(s); return true; }) as typeof process.stderr.write;
  try { await fn(); } finally { process.stdout.write = o; process.stderr.write = e; }
  return { out, err };
}

interface Entry {
  group: string; index: number | null; input?: string; label: number | null; score: number; decision: string | null;
  files: Record<string, string>; attributions: Record<string, { heatmap: string; overlay: string; maxAbs: number; completenessGap?: number }>;
}

describe('svdd explain: methods, faithfulness, PNG inputs (tiny hybrid MNIST model)', function () {
  this.timeout(300000);
  let tmp = '';
  let modelDir = '';
  const raw = loadRaw('mnist');

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'svdd-explain-'));
    modelDir = join(tmp, 'model');
    let code = -1;
    await capture(async () => {
      code = await main(['train', '--preset', 'quick', '--subset', '200', '--test-subset', '200', '--ae-epochs', '1', '--epochs', '1',
        '--hybrid', '--threshold', 'adaptive', '--backend', 'ts', '--out', modelDir]);
    });
    expect(code).to.equal(0);
  });
  after(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

  it('--method all --evaluate: every method, figures, completeness, a faithfulness table and JSON', async () => {
    const out = join(tmp, 'all');
    const { out: printed } = await capture(() => explainCommand(['--model', modelDir, '--top-anomalies', '2', '--test-subset', '200', '--method', 'all',
      '--steps', '16', '--evaluate', '--random-anomalies', '2', '--curve-steps', '10', '--random-orders', '2', '--backend', 'ts', '--out', out]));
    const report = JSON.parse(readFileSync(join(out, 'explain.json'), 'utf8')) as { methods: { id: string }[]; images: Entry[]; figures: string[]; grids: string[]; threshold: { tau: number } | null; layer: string; at: string; scale: string; baseline: string };
    expect(report.methods.map((m) => m.id)).to.deep.equal(['gradcam', 'gradxinput', 'ig', 'occlusion']);
    expect([report.layer, report.at, report.scale, report.baseline]).to.deep.equal(['conv2', 'bn', 'shared', 'mean']);
    expect(report.figures).to.deep.equal(['figure_top_anomalies.png', 'figure_most_normal.png', 'figure_random_anomalies.png']);
    expect(report.grids).to.include('top_anomalies_gradcam.png');
    expect(report.grids).to.include('random_anomalies_occlusion.png');
    expect(report.images.filter((e) => e.group === 'random-anomaly').every((e) => e.label === 1)).to.equal(true);
    expect(report.threshold).to.not.equal(null);
    for (const e of report.images) {
      expect(e.decision).to.equal(e.score > report.threshold!.tau ? 'anomalous' : 'normal');
      for (const a of Object.values(e.attributions)) for (const f of [a.heatmap, a.overlay]) expect(existsSync(join(out, f)), f).to.equal(true);
      expect(e.attributions.ig!.completenessGap).to.be.a('number');
    }
    for (const f of report.figures) {
      const png = PNG.sync.read(readFileSync(join(out, f)));
      // Upscaled at least 4× (5× for 28×28): the width holds the tiles of every column.
      expect(png.width).to.be.greaterThan(2 * 28 * 4);
    }
    expect(printed).to.match(/ig: completeness gap/);
    expect(printed).to.match(/top 2 anomalies \(2 images/);
    expect(printed).to.match(/2 random anomalies \(seed 0\)/);
    const faith = JSON.parse(readFileSync(join(out, 'faithfulness.json'), 'utf8')) as { sets: { name: string; summary: { rows: { id: string; deletion: { mean: number | null } }[] }; meanCurves: Record<string, { deletion: number[] }> }[] };
    expect(faith.sets).to.have.length(2);
    for (const s of faith.sets) {
      expect(s.summary.rows.map((r) => r.id)).to.deep.equal(['gradcam', 'gradxinput', 'ig', 'occlusion', 'random']);
      for (const r of s.summary.rows) if (r.deletion.mean !== null) expect(r.deletion.mean).to.be.within(0, 1);
      for (const c of Object.values(s.meanCurves)) { expect(c.deletion).to.have.length(11); expect(c.deletion[0]).to.be.closeTo(1, 1e-9); }
    }
  });

  it('--input explains PNG files with the scores svdd predict gives them', async () => {
    const out = join(tmp, 'inputs');
    const paths = [3, 8].map((i) => {
      const p = join(tmp, `test${i}.png`);
      const png = new PNG({ width: 28, height: 28 });
      for (let k = 0; k < 784; k++) { const v = raw.test.images[i * 784 + k]!; png.data.set([v, v, v, 255], 4 * k); }
      writeFileSync(p, PNG.sync.write(png, { colorType: 0 }));
      return p;
    });
    let predicted = '';
    await capture(async () => { await main(['predict', '--model', modelDir, '--input', ...paths, '--score', 'svdd', '--json', '--backend', 'ts']); }).then((r) => { predicted = r.out; });
    const pred = JSON.parse(predicted) as { predictions: { input: string; score: number; decision: string }[] };
    await capture(() => explainCommand(['--model', modelDir, '--input', ...paths, '--method', 'gradxinput,occlusion', '--scale', 'per-image', '--backend', 'ts', '--out', out]));
    const report = JSON.parse(readFileSync(join(out, 'explain.json'), 'utf8')) as { images: Entry[]; figures: string[]; grids: string[]; scale: string };
    expect(report.scale).to.equal('per-image');
    expect(report.figures).to.deep.equal(['figure_inputs.png']);
    expect(report.grids).to.deep.equal(['inputs_gradxinput.png', 'inputs_occlusion.png']);
    expect(report.images.map((e) => e.input)).to.deep.equal(paths);
    report.images.forEach((e, k) => {
      expect(e.index).to.equal(null);
      expect(e.score).to.be.closeTo(pred.predictions[k]!.score, 1e-9 * Math.max(1, pred.predictions[k]!.score));
      expect(e.decision).to.equal(pred.predictions[k]!.decision);
    });
  });

  it('ranks the run\'s own test subset (from its config.json) unless --test-subset is given, as svdd test does', async () => {
    // The model was evaluated on the first 200 test images: its top anomalies are among those.
    const out = join(tmp, 'subset');
    const { out: printed } = await capture(() => explainCommand(['--model', modelDir, '--top-anomalies', '3', '--method', 'gradxinput', '--backend', 'ts', '--out', out]));
    expect(printed).to.match(/test subset: the first 200 test images, as the run was evaluated/);
    const report = JSON.parse(readFileSync(join(out, 'explain.json'), 'utf8')) as { images: Entry[] };
    const results = JSON.parse(readFileSync(join(modelDir, 'results.json'), 'utf8')) as { scores: { index: number; label: number; score: number }[] };
    const byIndex = new Map(results.scores.map((s) => [s.index, s.score]));
    const top = report.images.filter((e) => e.group === 'top-anomaly');
    expect(top).to.have.length(3);
    for (const e of top) expect(byIndex.has(e.index!), `index ${e.index} is outside the run's test subset`).to.equal(true);
    const expected = results.scores.map((s) => s.score).sort((a, b) => b - a).slice(0, 3);
    expect(top.map((e) => e.score)).to.deep.equal(expected);
  });

  it('the combined score of a hybrid model is μ1·distance + μ2·reconstruction error, as evaluation computes it', () => {
    const model = loadModel(modelDir);
    const { data } = loadModelData(model.meta, undefined, 20);
    const x = data.test.x.subarray(0, 5 * 784);
    const combined = scoreMany(modelScorer(model, 'combined'), x, 5);
    const ref = scoreImages(model, { x, count: 5, shape: model.meta.inputShape }).combined!;
    for (let i = 0; i < 5; i++) expect(combined[i]).to.be.closeTo(ref[i]!, 1e-4 * Math.max(1, ref[i]!));
    // float64 copy of the network: the same scores up to float32 rounding.
    const c64 = scoreMany(modelScorer(model, 'combined', { dtype: 'float64' }), x, 5);
    for (let i = 0; i < 5; i++) expect(c64[i]).to.be.closeTo(ref[i]!, 1e-4 * Math.max(1, ref[i]!));
    // explain() on the combined score in float64: integrated gradients' completeness within 2%
    // at 128 steps (the quadrature error of a piecewise-linear net; 0 for a smooth quadratic).
    const e = explain(model, x.subarray(0, 2 * 784), 2, { score: 'combined', methods: [{ method: 'ig', steps: 128 }], dtype: 'float64' });
    const { gaps, baselineScores } = e.attributions[0]!.completeness!;
    for (let i = 0; i < 2; i++) expect(Math.abs(gaps[i]!)).to.be.below(0.02 * Math.abs(e.attributions[0]!.scores[i]! - baselineScores[i]!));
  });

  it('--score combined and mahalanobis explain; bad flags are usage errors', async () => {
    const out = join(tmp, 'scores');
    for (const score of ['combined', 'mahalanobis']) {
      await capture(() => explainCommand(['--model', modelDir, '--index', '1', '--score', score, '--method', 'gradcam', '--layer', 'conv1,conv2', '--at', 'conv,act', '--backend', 'ts', '--out', out]));
      const report = JSON.parse(readFileSync(join(out, 'explain.json'), 'utf8')) as { score: string; methods: { id: string }[]; threshold: unknown };
      expect(report.score).to.equal(score);
      expect(report.methods.map((m) => m.id)).to.deep.equal(['gradcam-conv1-conv', 'gradcam-conv1-act', 'gradcam-conv2-conv', 'gradcam-conv2-act']);
      expect(report.threshold === null).to.equal(score === 'combined');
    }
    await capture(async () => {
      for (const argv of [
        ['--index', '1', '--input', 'x.png'],
        ['--index', '1', '--method', 'lime'],
        ['--index', '1', '--at', 'relu'],
        ['--index', '1', '--layer', 'fc1'],
        ['--index', '1', '--baseline', 'white'],
        ['--index', '1', '--scale', 'log'],
        ['--index', '1', '--patch', '0'],
        ['--index', '1', '--steps', '0'],
        ['stray.png', '--index', '1'],
      ]) {
        let err: unknown = null;
        try { await explainCommand(['--model', modelDir, ...argv, '--backend', 'ts', '--out', join(tmp, 'unused')]); } catch (e) { err = e; }
        expect(err, argv.join(' ')).to.be.instanceOf(UsageError);
      }
    });
  });
});

describe('svdd explain on a CIFAR-10 run', function () {
  this.timeout(300000);
  const cifarDir = join(import.meta.dirname, '..', '..', 'shared', 'data', 'cifar-10');
  it('uses the run\'s own --data-dir (from its config.json) when none is given', async function () {
    if (!existsSync(cifarDir)) { console.log(`      skipped: no CIFAR-10 files in ${cifarDir}`); this.skip(); }
    const tmp = mkdtempSync(join(tmpdir(), 'svdd-explain-cifar-'));
    try {
      const io = { out: () => undefined, err: () => undefined, stderrStream: process.stderr };
      const run = join(tmp, 'run');
      expect(await main(['train', '--dataset', 'cifar10', '--data-dir', cifarDir, '--subset', '200', '--test-subset', '60', '--ae-epochs', '1', '--epochs', '1', '--threads', '1', '--out', run], io)).to.equal(0);
      const r = await capture(() => explainCommand(['--model', run, '--index', '0,1', '--method', 'gradxinput', '--out', join(tmp, 'explain')]));
      expect(r.err).to.not.match(/no data directory/);
      expect(existsSync(join(tmp, 'explain'))).to.equal(true);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
