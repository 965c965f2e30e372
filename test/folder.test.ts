/**
 * --dataset folder (anomalib's layout): PNGs of any size and colour type, fitted to the network by
 * the chosen resize; svdd train / svdd test and the estimator train and score the same images to
 * the same numbers; bad folders are refused in one line.
 */
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { DeepSVDD, loadImageFolder } from '../src/index.ts';
import { loadRaw } from '../src/svdd/data/datasets.ts';
import { DataError } from '../src/svdd/data/errors.ts';
import { fitImage, readImageFolder } from '../src/svdd/data/folder.ts';
import { errorLines, runCli } from './cli-run.ts';

const folderFile = (root: string, sub: string, k: number): string => join(root, sub, `${String(k).padStart(3, '0')}.png`);

/** Writes a PNG of `width` × `height` from a pixel function giving [r, g, b] (grayscale when gray). */
function writePng(path: string, width: number, height: number, pixel: (x: number, y: number) => [number, number, number], gray = false): void {
  const png = new PNG({ width, height, colorType: gray ? 0 : 2, inputHasAlpha: true });
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const [r, g, b] = pixel(x, y);
    const o = 4 * (y * width + x);
    png.data[o] = r; png.data[o + 1] = gray ? r : g; png.data[o + 2] = gray ? r : b; png.data[o + 3] = 255;
  }
  writeFileSync(path, PNG.sync.write(png, { colorType: gray ? 0 : 2 }));
}

/** An MNIST digit scaled nearest-neighbour to width × height, as grey or as a tinted RGB image. */
function digitPng(path: string, images: Uint8Array, i: number, width: number, height: number, gray: boolean): void {
  writePng(path, width, height, (x, y) => {
    const v = images[i * 784 + Math.floor((y * 28) / height) * 28 + Math.floor((x * 28) / width)]!;
    return [v, v, v];
  }, gray);
}

describe('--dataset folder', function () {
  this.timeout(600000);
  let dir: string, root: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'svdd-folder-'));
    root = join(dir, 'data');
    const raw = loadRaw('mnist');
    const of = (cls: number, from: number, n: number): number[] => {
      const out: number[] = [];
      for (let i = from; out.length < n; i++) if (raw.train.labels[i] === cls) out.push(i);
      return out;
    };
    const write = (sub: string, idx: number[]): void => {
      mkdirSync(join(root, sub), { recursive: true });
      // Sizes and colour types vary: grey and RGB, square and not, larger and smaller than 28 × 28.
      idx.forEach((i, k) => digitPng(join(root, sub, `${String(k).padStart(3, '0')}.png`), raw.train.images, i, [28, 40, 56, 21][k % 4]!, [28, 36, 50, 24][k % 4]!, k % 2 === 0));
    };
    write('train/good', of(1, 0, 60));
    write('test/good', of(1, 20000, 12));
    write('test/seven', of(7, 0, 10));
    write('test/three', of(3, 0, 8));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('fits images to the network: bilinear as PyTorch (align_corners=False), centre crop, grey ↔ RGB', () => {
    const img = (width: number, height: number, channels: 1 | 3, data: number[]) => ({ width, height, channels, data: Float32Array.from(data) });
    // 1 × 2 → 1 × 4: F.interpolate([[0, 1]], size=4, mode='bilinear') = [0, 0.25, 0.75, 1].
    expect(Array.from(fitImage(img(2, 1, 1, [0, 1]), [1, 1, 4], 'bilinear'))).to.deep.equal([0, 64, 191, 255]);
    // A 4 × 2 image, black left half, white right half, centre-cropped to 2 × 2: one black, one white column.
    expect(Array.from(fitImage(img(4, 2, 1, [0, 0, 1, 1, 0, 0, 1, 1]), [1, 2, 2], 'center-crop'))).to.deep.equal([0, 255, 0, 255]);
    // The same stretched to 2 × 2 averages each pair.
    expect(Array.from(fitImage(img(4, 2, 1, [0, 0, 1, 1, 0, 0, 1, 1]), [1, 2, 2], 'bilinear'))).to.deep.equal([0, 255, 0, 255]);
    // Pure red → grey 0.299 (BT.601 luma); grey → RGB repeats the value.
    expect(Array.from(fitImage(img(1, 1, 3, [1, 0, 0]), [1, 1, 1], 'bilinear'))).to.deep.equal([76]);
    expect(Array.from(fitImage(img(1, 1, 1, [0.5]), [3, 1, 1], 'bilinear'))).to.deep.equal([128, 128, 128]);
  });

  it('trains and tests through the CLI and through the estimator to the same scores', async () => {
    const run = join(dir, 'run');
    const train = await runCli(['train', '--dataset', 'folder', '--data-dir', root, '--resize', 'center-crop', '--ae-epochs', '1', '--epochs', '2',
      '--ae-batch-size', '32', '--batch-size', '32', '--checkpoint-every', '0', '--backend', 'wasm', '--threads', '1', '--out', run]);
    expect(train.code, train.err).to.equal(0);
    const results = JSON.parse(readFileSync(join(run, 'results.json'), 'utf8')) as { counts: { train: number }; scores: { score: number; label: number; class: number }[]; evaluation: { metrics: { auroc: number } } };
    expect(results.counts.train).to.equal(60);
    expect(results.scores.map((s) => s.label)).to.deep.equal([...Array(12).fill(0), ...Array(18).fill(1)]);
    // Classes are the test folders in name order after good: seven (1), then three (2).
    expect(results.scores.map((s) => s.class)).to.deep.equal([...Array(12).fill(0), ...Array(10).fill(1), ...Array(8).fill(2)]);
    expect(results.evaluation.metrics.auroc).to.be.a('number');
    const meta = JSON.parse(readFileSync(join(run, 'model.json'), 'utf8')) as { dataset: string; resize: string };
    expect(meta).to.include({ dataset: 'folder', resize: 'center-crop' });

    const test = await runCli(['test', '--model', run, '--backend', 'wasm', '--threads', '1']);
    expect(test.code, test.err).to.equal(0);
    const retest = JSON.parse(readFileSync(join(run, 'test_results.json'), 'utf8')) as { scores: { score: number }[] };
    expect(retest.scores.map((s) => s.score)).to.deep.equal(results.scores.map((s) => s.score));

    // svdd predict fits a PNG of any size as the run's images were fitted: the score results.json has for it.
    const png = folderFile(root, 'test/seven', 2);
    const predicted = await runCli(['predict', '--model', run, '--input', png, '--json', '--backend', 'wasm', '--threads', '1']);
    expect(predicted.code, predicted.err).to.be.oneOf([0, 1]);
    expect((JSON.parse(predicted.out) as { predictions: { score: number }[] }).predictions[0]!.score).to.equal(results.scores[12 + 2]!.score);
    // So does svdd explain --input: it explains the image the run scored, to the same score.
    const explained = await runCli(['explain', '--model', run, '--input', png, '--method', 'gradxinput', '--backend', 'wasm', '--out', join(dir, 'explain')]);
    expect(explained.code, explained.err).to.equal(0);
    const index = JSON.parse(readFileSync(join(dir, 'explain', 'explain.json'), 'utf8')) as { images: { score: number }[] };
    expect(index.images[0]!.score).to.equal(results.scores[12 + 2]!.score);

    // The estimator on the same folder: its min-max constants come from the same train/good images.
    const folder = await loadImageFolder(root, { resize: 'center-crop' });
    expect(folder.classNames).to.deep.equal(['good', 'seven', 'three']);
    expect(Array.from(folder.labels)).to.deep.equal(results.scores.map((s) => s.label));
    const model = new DeepSVDD({ pretrain: { epochs: 1, batchSize: 32 }, epochs: 2, batchSize: 32, backend: 'wasm', threads: 1 });
    await model.fit(folder.train);
    expect(Array.from(await model.decisionFunction(folder.test))).to.deep.equal(results.scores.map((s) => s.score));
  });

  it('refuses a bad folder or bad settings in one line', async () => {
    const bad = join(dir, 'bad');
    mkdirSync(join(bad, 'train', 'good'), { recursive: true });
    mkdirSync(join(bad, 'test', 'good'), { recursive: true });
    writePng(join(bad, 'train', 'good', 'a.png'), 5, 5, () => [1, 2, 3]);
    writePng(join(bad, 'test', 'good', 'a.png'), 5, 5, () => [1, 2, 3]);
    writeFileSync(join(bad, 'train', 'good', 'notes.txt'), 'x');
    expect(() => readImageFolder(bad, [1, 28, 28], 'bilinear')).to.throw(DataError, /notes\.txt: not a \.png file/);
    rmSync(join(bad, 'train', 'good', 'notes.txt'));
    writeFileSync(join(bad, 'train', 'good', 'b.png'), 'not a png');
    expect(() => readImageFolder(bad, [1, 28, 28], 'bilinear')).to.throw(DataError, /b\.png/);
    expect(() => readImageFolder(join(dir, 'missing'), [1, 28, 28], 'bilinear')).to.throw(DataError, /is not a directory/);
    expect(() => readImageFolder(join(bad, 'test'), [1, 28, 28], 'bilinear')).to.throw(DataError, /train.good does not exist/);

    const cases: [string[], RegExp][] = [
      [['--dataset', 'folder'], /--dataset folder needs --data-dir ROOT/],
      [['--dataset', 'folder', '--data-dir', root, '--normal-class', '3'], /--normal-class has no meaning for --dataset folder/],
      [['--dataset', 'mnist', '--resize', 'center-crop'], /--resize has no effect here/],
      [['--dataset', 'folder', '--data-dir', root, '--resize', 'stretch'], /--resize/],
      [['--dataset', 'folder', '--data-dir', bad, '--ae-epochs', '1', '--epochs', '1', '--out', join(dir, 'bad-run')], /b\.png/],
    ];
    for (const [args, pattern] of cases) {
      const r = await runCli(['train', ...args]);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.threw, args.join(' ')).to.equal(null);
      expect(errorLines(r).join('\n'), args.join(' ')).to.match(pattern);
    }
  });
});
