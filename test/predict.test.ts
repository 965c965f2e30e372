import { expect } from 'chai';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { main } from '../src/cli/main.ts';
import { explainCommand } from '../src/cli/explain-command.ts';
import { predictCommand } from '../src/cli/predict-command.ts';
import { decide, decisionThreshold, predictFiles, readInputImages } from '../src/svdd/predict.ts';
import { loadModel, type ModelMeta } from '../src/svdd/model.ts';
import { loadRaw } from '../src/svdd/data/datasets.ts';
import { DataError } from '../src/svdd/data/errors.ts';
import { UsageError } from '../src/cli/usage-error.ts';
import { readPng } from '../src/svdd/images.ts';

/** Runs fn with stdout and stderr captured (returned instead of printed). */
async function capture(fn: () => Promise<unknown>): Promise<{ out: string; err: string }> {
  const o = process.stdout.write.bind(process.stdout), e = process.stderr.write.bind(process.stderr);
  let out = '', err = '';
  process.stdout.write = ((s: string | Uint8Array) => { out += String(s); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { err += String(s); return true; }) as typeof process.stderr.write;
  try { await fn(); } finally { process.stdout.write = o; process.stderr.write = e; }
  return { out, err };
}

function writeGrayPng(path: string, bytes: ArrayLike<number>, width: number, height: number, rgb = false): void {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) {
    png.data[4 * i] = bytes[i]!;
    png.data[4 * i + 1] = rgb ? (bytes[i]! + 40) % 256 : bytes[i]!;
    png.data[4 * i + 2] = bytes[i]!;
    png.data[4 * i + 3] = 255;
  }
  writeFileSync(path, PNG.sync.write(png, rgb ? {} : { colorType: 0 }));
}

interface ResultScore { index: number; label: number; class: number; score: number; mahalanobis?: number }

describe('svdd explain and svdd predict (end to end on a tiny MNIST model)', function () {
  this.timeout(120000);
  let tmp = '';
  let modelDir = '';
  let scores: ResultScore[] = [];
  const raw = loadRaw('mnist');
  const testImage = (i: number): Uint8Array => raw.test.images.subarray(i * 784, (i + 1) * 784);
  const relClose = (a: number, b: number, tol = 1e-5): void => { expect(Math.abs(a - b)).to.be.at.most(tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`); };

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'svdd-predict-'));
    modelDir = join(tmp, 'model');
    let code = -1;
    await capture(async () => {
      code = await main(['train', '--preset', 'quick', '--subset', '200', '--test-subset', '300', '--ae-epochs', '1', '--epochs', '1',
        '--threshold', 'adaptive', '--backend', 'ts', '--out', modelDir]);
    });
    expect(code).to.equal(0);
    scores = (JSON.parse(readFileSync(join(modelDir, 'results.json'), 'utf8')) as { scores: ResultScore[] }).scores;
  });
  after(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

  it('explain --top-anomalies writes heatmaps, overlays, grids and explain.json', async () => {
    const out = join(tmp, 'explain');
    const { out: printed } = await capture(() => explainCommand(['--model', modelDir, '--top-anomalies', '3', '--test-subset', '300', '--backend', 'ts', '--out', out]));
    const report = JSON.parse(readFileSync(join(out, 'explain.json'), 'utf8')) as {
      layer: string; score: string; grids: string[];
      images: { group: string; index: number; label: number; class: number; score: number; files: Record<string, string> }[];
    };
    expect(report.layer).to.equal('conv2');
    expect(report.score).to.equal('svdd');
    expect(report.grids).to.deep.equal(['top_anomalies_gradcam.png', 'most_normal_gradcam.png']);
    const top = report.images.filter((e) => e.group === 'top-anomaly'), normal = report.images.filter((e) => e.group === 'most-normal');
    expect(top).to.have.length(3);
    expect(normal).to.have.length(3);
    const byIndex = new Map(scores.map((s) => [s.index, s]));
    const maxScore = Math.max(...scores.map((s) => s.score));
    const minNormal = Math.min(...scores.filter((s) => s.label === 0).map((s) => s.score));
    relClose(top[0]!.score, maxScore);
    relClose(normal[0]!.score, minNormal);
    for (const e of normal) expect(e.label).to.equal(0);
    for (const e of report.images) {
      relClose(e.score, byIndex.get(e.index)!.score);
      expect(e.class).to.equal(byIndex.get(e.index)!.class);
      for (const f of Object.values(e.files)) expect(existsSync(join(out, f)), f).to.equal(true);
      expect(printed).to.contain(e.files.overlay);
    }
    const heat = readPng(join(out, top[0]!.files.heatmap));
    expect([heat.channels, heat.height, heat.width]).to.deep.equal([3, 28, 28]);
    const input = readPng(join(out, top[0]!.files.input));
    expect(Array.from(input.data, (v) => Math.round(v * 255))).to.deep.equal(Array.from(testImage(top[0]!.index)));
    const grid = readPng(join(out, 'top_anomalies_gradcam.png'));
    // 3 columns, 2 rows (inputs over overlays), 2-pixel padding.
    expect([grid.width, grid.height]).to.deep.equal([3 * 28 + 4 * 2, 2 * 28 + 3 * 2]);
  });

  it('explain --index with the Mahalanobis score and another layer', async () => {
    const out = join(tmp, 'explain-idx');
    await capture(() => explainCommand(['--model', modelDir, '--index', '5,0', '--score', 'mahalanobis', '--layer', 'conv1', '--backend', 'ts', '--out', out]));
    const report = JSON.parse(readFileSync(join(out, 'explain.json'), 'utf8')) as { layer: string; grids: string[]; images: { index: number; score: number }[] };
    expect(report.layer).to.equal('conv1');
    expect(report.grids).to.deep.equal(['gradcam.png']);
    expect(report.images.map((e) => e.index)).to.deep.equal([5, 0]);
    for (const e of report.images) relClose(e.score, scores.find((s) => s.index === e.index)!.mahalanobis!);
  });

  it('explain rejects bad flags with usage errors', async () => {
    await capture(async () => {
      for (const argv of [
        ['--model', modelDir],
        ['--model', modelDir, '--index', '1', '--top-anomalies', '2'],
        ['--model', modelDir, '--index', '1', '--layer', 'bn1'],
        ['--model', modelDir, '--index', '99999'],
        ['--model', modelDir, '--index', '1', '--score', 'cosine'],
      ]) {
        let err: unknown = null;
        try { await explainCommand([...argv, '--backend', 'ts', '--out', join(tmp, 'unused')]); } catch (e) { err = e; }
        expect(err, argv.join(' ')).to.be.instanceOf(UsageError);
      }
    });
  });

  it('predict on a PNG of a test image reproduces its score and decides with the saved τ', async () => {
    const i = 7;
    const png = join(tmp, 'seven.png');
    writeGrayPng(png, testImage(i), 28, 28);
    const { out } = await capture(() => predictCommand(['--model', modelDir, '--input', png, '--json', '--backend', 'ts']));
    const r = JSON.parse(out) as { score: string; threshold: { tau: number; method: string }; predictions: { input: string; score: number; decision: string }[] };
    expect(r.score).to.equal('mahalanobis');
    expect(r.threshold.method).to.equal('quantile');
    expect(r.predictions).to.have.length(1);
    const p = r.predictions[0]!;
    expect(p.input).to.equal(png);
    relClose(p.score, scores[i]!.mahalanobis!);
    expect(p.decision).to.equal(p.score > r.threshold.tau ? 'anomalous' : 'normal');

    const { out: text, err } = await capture(() => predictCommand(['--model', modelDir, '--input', png, '--score', 'svdd', '--backend', 'ts']));
    const [name, score, decision] = text.trim().split(/\s+/);
    expect(name).to.equal(png);
    relClose(Number(score), scores[i]!.score, 1e-5);
    expect(['normal', 'anomalous']).to.include(decision);
    expect(err).to.match(/svdd score, anomalous when score > τ/);
  });

  it('predict accepts RGB PNGs with equal channels and IDX files, and scores every image in them', () => {
    const model = loadModel(modelDir);
    const rgbGray = join(tmp, 'rgb-gray.png');
    const png = new PNG({ width: 28, height: 28 });
    testImage(3).forEach((b, k) => { png.data.set([b, b, b, 255], 4 * k); });
    writeFileSync(rgbGray, PNG.sync.write(png));
    const idx = join(tmp, 'three-idx3-ubyte');
    const header = Buffer.from([0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28]);
    writeFileSync(idx, Buffer.concat([header, raw.test.images.subarray(0, 3 * 784)]));
    const r = predictFiles(model, [rgbGray, idx], 'svdd');
    expect(r.predictions.map((p) => p.input)).to.deep.equal([rgbGray, `${idx}#0`, `${idx}#1`, `${idx}#2`]);
    [3, 0, 1, 2].forEach((t, k) => relClose(r.predictions[k]!.score, scores[t]!.score));
  });

  it('predict gives clear errors for wrong sizes, colour images and unknown files', async () => {
    const small = join(tmp, 'small.png');
    writeGrayPng(small, new Uint8Array(20 * 20).fill(128), 20, 20);
    const colour = join(tmp, 'colour.png');
    writeGrayPng(colour, testImage(0), 28, 28, true);
    const text = join(tmp, 'notes.txt');
    writeFileSync(text, 'hello');
    const shape = [1, 28, 28] as const;
    expect(() => readInputImages(small, shape)).to.throw(DataError, /grayscale 20×20, the model expects grayscale 28×28/);
    expect(() => readInputImages(colour, shape)).to.throw(DataError, /colour 28×28 PNG, the model expects grayscale 28×28/);
    expect(() => readInputImages(text, shape)).to.throw(DataError, /not a PNG, an IDX image file or a CIFAR-10 binary batch/);
    expect(() => readInputImages(small, [3, 32, 32])).to.throw(DataError, /RGB 32×32/);
    let err: unknown = null;
    await capture(async () => { try { await predictCommand(['--model', modelDir, '--input', small, '--backend', 'ts']); } catch (e) { err = e; } });
    expect(err).to.be.instanceOf(DataError);
    err = null;
    try { await predictCommand(['--model', modelDir]); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(UsageError);
  });

  it('predict without a saved threshold prints scores only and says why', async () => {
    const bare = join(tmp, 'bare');
    cpSync(modelDir, bare, { recursive: true });
    const metaPath = join(bare, 'model.json');
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as ModelMeta;
    writeFileSync(metaPath, JSON.stringify({ ...meta, thresholds: [], gaussian: null, decisionScore: 'svdd' }));
    const png = join(tmp, 'zero.png');
    writeGrayPng(png, testImage(0), 28, 28);
    const { out, err } = await capture(() => predictCommand(['--model', bare, '--input', png, '--backend', 'ts']));
    expect(out.trim().split(/\s+/)).to.have.length(2);
    expect(err).to.match(/no decision threshold .* --threshold adaptive/);
    let e2: unknown = null;
    try { await predictCommand(['--model', bare, '--input', png, '--score', 'mahalanobis', '--backend', 'ts']); } catch (e) { e2 = e; }
    expect((e2 as Error).message).to.match(/no Gaussian/);
  });

  it('prefers the quantile threshold and decides strictly above τ', () => {
    const meta = { thresholds: [
      { method: 'chi2', alpha: 0.05, tau: 40, score: 'mahalanobis' },
      { method: 'quantile', alpha: 0.05, tau: 1, score: 'svdd' },
      { method: 'quantile', alpha: 0.05, tau: 30, score: 'mahalanobis' },
    ] } as unknown as ModelMeta;
    expect(decisionThreshold(meta, 'mahalanobis')!.tau).to.equal(30);
    expect(decisionThreshold(meta, 'svdd')!.tau).to.equal(1);
    expect(decisionThreshold({ thresholds: [meta.thresholds[0]] } as unknown as ModelMeta, 'mahalanobis')!.method).to.equal('chi2');
    expect(decisionThreshold({ thresholds: [] } as unknown as ModelMeta, 'svdd')).to.equal(null);
    expect(decide(30, 30)).to.equal('normal');
    expect(decide(30.000001, 30)).to.equal('anomalous');
  });
});
