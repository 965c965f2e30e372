/**
 * Issue 11, item 2 and the decision rule of models without a validation split: a score that is not
 * a finite number is never decided "normal" (predict, test, thresholds), a model whose weights
 * cannot give finite scores is refused on load, and every model has a documented decision rule.
 */
import { expect } from 'chai';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, errorLines, mnistPng, TINY } from './cli-run.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../src/tensor/io/safetensors.ts';
import { decide } from '../src/svdd/predict.ts';
import { evaluateThreshold, quantileThreshold } from '../src/svdd/threshold.ts';

/** Rewrites DIR/model.safetensors with `edit` applied to one tensor's values. */
function editWeights(dir: string, name: string, edit: (v: Float32Array | Float64Array) => void): void {
  const path = join(dir, 'model.safetensors');
  const f = readSafetensors(path);
  const tensors: Record<string, TensorToWrite> = {};
  for (const [n, t] of f.tensors) {
    const data = t.dtype === 'F64' ? Float64Array.from(t.data) : Float32Array.from(t.data);
    if (n === name) edit(data);
    tensors[n] = { dtype: t.dtype as 'F32' | 'F64', shape: [...t.shape], data };
  }
  expect(Object.keys(tensors)).to.include(name);
  writeSafetensors(path, tensors, f.metadata);
}

describe('decisions fail closed: a non-finite score is never "normal"', function () {
  this.timeout(300000);
  let tmp = '', model = '', png = '';
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'svdd-decide-'));
    model = join(tmp, 'model');
    const r = await runCli(['train', ...TINY, '--threshold', 'adaptive', '--out', model]);
    expect(r.code, r.err).to.equal(0);
    png = join(tmp, 'digit.png');
    mnistPng(png, 3);
  });
  after(() => { rmSync(tmp, { recursive: true, force: true }); });

  it('decide(): NaN and ±Infinity are anomalous', () => {
    expect(decide(NaN, 1)).to.equal('anomalous');
    expect(decide(Infinity, 1)).to.equal('anomalous');
    expect(decide(-Infinity, 1)).to.equal('anomalous');
    expect(decide(0.5, 1)).to.equal('normal');
    expect(decide(1, 1)).to.equal('normal');
    expect(decide(1.5, 1)).to.equal('anomalous');
  });

  it('thresholds: evaluated with non-finite scores they count them as flagged; calibrated on them they refuse', () => {
    const ev = evaluateThreshold([0, 0, 1, 1], [0.1, NaN, 5, Infinity], 1);
    expect([ev.tp, ev.fp, ev.tn, ev.fn]).to.deep.equal([2, 1, 1, 0]);
    expect(() => quantileThreshold([1, 2, Infinity], 0.05)).to.throw(/not finite/);
    expect(() => quantileThreshold([1, NaN, 2], 0.05)).to.throw(/not finite/);
  });

  const broken: [string, string, (v: Float32Array | Float64Array) => void, RegExp][] = [
    ['a NaN weight', 'fc1.weight', (v) => { v[7] = NaN; }, /fc1\.weight.*not finite/],
    ['an infinite weight', 'conv1.weight', (v) => { v[0] = Infinity; }, /conv1\.weight.*not finite/],
    ['a negative running variance', 'bn1.running_var', (v) => { v[2] = -1; }, /bn1\.running_var.*negative/],
  ];
  for (const [what, name, edit, pattern] of broken) {
    it(`${what} in model.safetensors: predict and test refuse the model in one line`, async () => {
      const dir = join(tmp, what.replace(/\W+/g, '_'));
      cpSync(model, dir, { recursive: true });
      editWeights(dir, name, edit);
      const p = await runCli(['predict', '--model', dir, '--input', png, '--threads', '1']);
      if (p.threw) throw p.threw;
      expect(p.code, p.out + p.err).to.equal(2);
      expect(p.out).to.not.match(/normal/);
      expect(errorLines(p).some((l) => pattern.test(l)), p.err).to.equal(true);
      const t = await runCli(['test', '--model', dir, '--threads', '1', '--test-subset', '300']);
      if (t.threw) throw t.threw;
      expect(t.code, t.err).to.equal(2);
      expect(errorLines(t).some((l) => pattern.test(l)), t.err).to.equal(true);
    });
  }
});

describe('a decision rule for every model', function () {
  this.timeout(300000);
  let tmp = '', png = '';
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'svdd-rule-'));
    png = join(tmp, 'digit.png');
    mnistPng(png, 3);
  });
  after(() => { rmSync(tmp, { recursive: true, force: true }); });

  it('one-class without a validation split: τ from the training scores at the default contamination 0.1, and predict says so', async () => {
    const dir = join(tmp, 'oc');
    const r = await runCli(['train', ...TINY, '--out', dir]);
    expect(r.code, r.err).to.equal(0);
    const meta = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    expect(meta.thresholds).to.deep.equal([]);
    expect(meta.decisionRule).to.include({ method: 'contamination', contamination: 0.1, score: 'svdd' });
    expect(Number.isFinite(meta.decisionRule.tau)).to.equal(true);
    const p = await runCli(['predict', '--model', dir, '--input', png, '--threads', '1']);
    expect(p.code, p.err).to.equal(0);
    expect(p.out).to.match(/(normal|anomalous)\n$/);
    expect(p.err).to.match(/contamination 0\.1/);
    expect(p.err).to.match(/training scores/);
    // explain decides with the same rule, and says which.
    const x = await runCli(['explain', '--model', dir, '--input', png, '--method', 'gradxinput', '--baseline', 'black', '--out', join(tmp, 'oc-explain')]);
    expect(x.code, x.err).to.equal(0);
    expect(x.out).to.match(/decision: anomalous when score > τ = .*contamination 0\.1/);
    const index = JSON.parse(readFileSync(join(tmp, 'oc-explain', 'explain.json'), 'utf8'));
    expect(index.threshold).to.deep.equal(meta.decisionRule);
    expect(index.images[0].decision).to.equal(p.out.trim().split(/\s+/).at(-1));
  });

  it('--contamination 0.25 sets it', async () => {
    const dir = join(tmp, 'oc25');
    const r = await runCli(['train', ...TINY, '--contamination', '0.25', '--out', dir]);
    expect(r.code, r.err).to.equal(0);
    const meta = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    expect(meta.decisionRule).to.include({ method: 'contamination', contamination: 0.25 });
    // A quarter of the training images lie above τ: check on the training scores themselves.
    const results = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
    expect(results.decisionRule).to.equal(undefined); // results.json keeps its fields
    expect(readFileSync(join(dir, 'log.txt'), 'utf8')).to.match(/decision rule.*contamination 0\.25/);
  });

  it('soft-boundary without a validation split: the radius R (anomalous when ‖φ(x) − c‖² > R²)', async () => {
    const dir = join(tmp, 'sb');
    const r = await runCli(['train', ...TINY, '--objective', 'soft-boundary', '--warm-up-epochs', '0', '--out', dir]);
    expect(r.code, r.err).to.equal(0);
    const meta = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    expect(meta.decisionRule).to.include({ method: 'radius', tau: 0, score: 'svdd' });
    const p = await runCli(['predict', '--model', dir, '--input', png, '--threads', '1']);
    expect(p.code, p.err).to.equal(0);
    expect(p.err).to.match(/radius R/);
    const x = await runCli(['explain', '--model', dir, '--input', png, '--method', 'gradxinput', '--baseline', 'black', '--out', join(tmp, 'sb-explain')]);
    expect(x.code, x.err).to.equal(0);
    expect(x.out).to.match(/decision: anomalous when score > τ = 0(\.0*)? .*radius R/);
    const index = JSON.parse(readFileSync(join(tmp, 'sb-explain', 'explain.json'), 'utf8'));
    expect(index.threshold).to.include({ method: 'radius', tau: 0 });
    expect(index.images[0].decision).to.equal(p.out.trim().split(/\s+/).at(-1));
  });

  it('with a validation split the calibrated τ is used, and predict names it', async () => {
    const dir = join(tmp, 'val');
    const r = await runCli(['train', ...TINY, '--val-fraction', '0.2', '--out', dir]);
    expect(r.code, r.err).to.equal(0);
    const meta = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    expect(meta.thresholds).to.have.length(1);
    const p = await runCli(['predict', '--model', dir, '--input', png, '--threads', '1']);
    expect(p.code, p.err).to.equal(0);
    expect(p.err).to.match(/held-out/);
    expect(existsSync(join(dir, 'results.json'))).to.equal(true);
  });
});
