import { expect } from 'chai';
import seedrandom from 'seedrandom';
import { readSafetensors, type SafeTensor } from '../src/tensor/io/safetensors.ts';
import {
  auroc, averagePrecision, bestF1, confusionAt, f1AllAnomalous, prCurve, quantileLinear, quantilesLinear, rocCurve,
} from '../src/svdd/metrics.ts';
import { Gaussian, choleskyLower, fitGaussian, ledoitWolfShrinkage, meanAndCovariance } from '../src/svdd/gaussian.ts';
import { chiSquareCdf, chiSquareQuantile } from '../src/stats/chi-square.ts';
import { chi2Threshold, evaluateThreshold, quantileThreshold } from '../src/svdd/threshold.ts';

const FIX = new URL('./fixtures/metrics/', import.meta.url).pathname;

function load(name: string): Map<string, SafeTensor> {
  return readSafetensors(`${FIX}${name}.safetensors`).tensors;
}
function get(t: Map<string, SafeTensor>, name: string): SafeTensor {
  const v = t.get(name);
  if (!v) throw new Error(`fixture tensor ${name} missing`);
  return v;
}
function scalar(t: Map<string, SafeTensor>, name: string): number {
  return get(t, name).data[0]!;
}

function normalSampler(seed: string): () => number {
  const rng = seedrandom(seed);
  let spare: number | null = null;
  return () => {
    if (spare !== null) { const s = spare; spare = null; return s; }
    // Box–Muller; 1 - u keeps the logarithm's argument in (0, 1].
    const u = 1 - rng();
    const v = rng();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

describe('metrics vs scikit-learn fixture (ties)', () => {
  const t = load('auc_ap_f1_ties');
  const labels = get(t, 'labels').data;
  const scores = get(t, 'scores').data;

  it('AUROC', () => {
    expect(auroc(labels, scores)).to.be.closeTo(scalar(t, 'auroc'), 1e-12);
  });
  it('average precision', () => {
    expect(averagePrecision(labels, scores)).to.be.closeTo(scalar(t, 'average_precision'), 1e-12);
  });
  it('best F1 and its threshold', () => {
    const b = bestF1(labels, scores);
    expect(b.f1).to.be.closeTo(scalar(t, 'best_f1'), 1e-12);
    expect(b.threshold).to.equal(scalar(t, 'best_f1_threshold'));
    // The reported threshold reproduces the F1 under the ">=" rule.
    const c = confusionAt(labels, scores, b.threshold, '>=');
    expect(c.f1).to.be.closeTo(b.f1, 1e-12);
    expect(c.precision).to.be.closeTo(b.precision, 1e-12);
    expect(c.recall).to.be.closeTo(b.recall, 1e-12);
  });
  it('AUROC is invariant to a monotone transform and flips under negation', () => {
    const a = auroc(labels, scores);
    expect(auroc(labels, scores.map((s) => Math.exp(3 * s)))).to.be.closeTo(a, 1e-12);
    expect(auroc(labels, scores.map((s) => -s))).to.be.closeTo(1 - a, 1e-12);
  });
  it('curves: ROC area by trapezoid equals AUROC; PR is monotone in recall', () => {
    const roc = rocCurve(labels, scores);
    expect(roc[0]).to.deep.equal({ fpr: 0, tpr: 0, threshold: Infinity });
    expect(roc[roc.length - 1]!.fpr).to.equal(1);
    expect(roc[roc.length - 1]!.tpr).to.equal(1);
    let area = 0;
    for (let i = 1; i < roc.length; i++) area += (roc[i]!.fpr - roc[i - 1]!.fpr) * (roc[i]!.tpr + roc[i - 1]!.tpr) / 2;
    expect(area).to.be.closeTo(scalar(t, 'auroc'), 1e-12);
    const pr = prCurve(labels, scores);
    for (let i = 1; i < pr.length; i++) expect(pr[i]!.recall).to.be.at.least(pr[i - 1]!.recall);
    expect(pr[pr.length - 1]!.recall).to.equal(1);
  });
  it('trivial all-anomalous F1', () => {
    let p = 0;
    for (const l of labels) p += l;
    expect(f1AllAnomalous(labels)).to.be.closeTo((2 * p) / (p + labels.length), 1e-15);
    expect(bestF1(labels, scores).f1).to.be.at.least(f1AllAnomalous(labels));
  });
});

describe('metrics: small hand-checked cases and errors', () => {
  it('ties count one half', () => {
    expect(auroc([0, 1], [0.5, 0.5])).to.equal(0.5);
    expect(auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])).to.equal(0.75);
  });
  it('average precision on a known case (sklearn docs example)', () => {
    expect(averagePrecision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])).to.be.closeTo(0.8333333333333333, 1e-15);
  });
  it('throws a clear error with one class', () => {
    expect(() => auroc([0, 0, 0], [1, 2, 3])).to.throw(/only one class/);
    expect(() => averagePrecision([1, 1], [1, 2])).to.throw(/only one class/);
    expect(() => bestF1([1, 1], [1, 2])).to.throw(/only one class/);
  });
  it('rejects bad labels, NaN scores, length mismatch', () => {
    expect(() => auroc([0, 2], [1, 2])).to.throw(/expected 0/);
    expect(() => auroc([0, 1], [1, NaN])).to.throw(/NaN/);
    expect(() => auroc([0, 1], [1])).to.throw(/length/);
  });
  it('handles infinite scores in the ranking', () => {
    expect(auroc([0, 1, 1, 0], [-Infinity, Infinity, Infinity, 0])).to.equal(1);
  });
  it('confusionAt: strict rule by default, undefined ratios are NaN', () => {
    const c = confusionAt([0, 0, 1, 1], [1, 2, 2, 3], 2);
    expect([c.tp, c.fp, c.tn, c.fn]).to.deep.equal([1, 0, 2, 1]);
    expect(c.precision).to.equal(1);
    expect(c.recall).to.equal(0.5);
    expect(c.f1).to.be.closeTo(2 / 3, 1e-15);
    expect(c.fpr).to.equal(0);
    const ge = confusionAt([0, 0, 1, 1], [1, 2, 2, 3], 2, '>=');
    expect([ge.tp, ge.fp, ge.tn, ge.fn]).to.deep.equal([2, 1, 1, 0]);
    const none = confusionAt([0, 0], [1, 2], 5);
    expect(none.fpr).to.equal(0);
    expect(none.precision).to.be.NaN;
    expect(none.recall).to.be.NaN;
  });
});

describe('quantileLinear vs numpy fixture', () => {
  const t = load('quantile_linear');
  const values = get(t, 'values').data;
  const q = get(t, 'q').data;
  const expected = get(t, 'quantiles').data;
  it('matches numpy.quantile (linear)', () => {
    for (let i = 0; i < q.length; i++) expect(quantileLinear(values, q[i]!)).to.be.closeTo(expected[i]!, 1e-12);
    const all = quantilesLinear(values, q);
    for (let i = 0; i < q.length; i++) expect(all[i]).to.be.closeTo(expected[i]!, 1e-12);
  });
  it('rejects empty input and q outside [0, 1]', () => {
    expect(() => quantileLinear([], 0.5)).to.throw(/empty/);
    expect(() => quantileLinear([1, 2], 1.5)).to.throw(/\[0, 1\]/);
  });
});

describe('Gaussian / Mahalanobis', () => {
  const t = load('mahalanobis');
  const lat = get(t, 'train_latents');
  const [n, d] = lat.shape as [number, number];

  it('mean and unbiased covariance match the fixture', () => {
    const { mean, cov } = meanAndCovariance(lat.data, n, d);
    const em = get(t, 'mean').data;
    const ec = get(t, 'cov_unbiased').data;
    for (let j = 0; j < d; j++) expect(mean[j]).to.be.closeTo(em[j]!, 1e-12);
    for (let j = 0; j < d * d; j++) expect(cov[j]).to.be.closeTo(ec[j]!, 1e-12);
  });

  it('shrinkage 0 reproduces the squared Mahalanobis distances to 1e-9', () => {
    const g = fitGaussian(lat.data, n, d, { shrinkage: 0 });
    const got = g.mahalanobisSqBatch(get(t, 'query').data);
    const exp = get(t, 'mahalanobis_sq').data;
    expect(got.length).to.equal(exp.length);
    for (let i = 0; i < exp.length; i++) expect(got[i]).to.be.closeTo(exp[i]!, 1e-9);
  });

  it('Ledoit-Wolf shrinkage is in (0, 1) and shrinks toward (trace/d)·I', () => {
    const s = ledoitWolfShrinkage(lat.data, n, d);
    // Independent numpy evaluation of the Ledoit–Wolf (2004) definition min(b̄², d²)/d² on this data.
    expect(s).to.be.closeTo(0.02248385235910693, 1e-12);
    const g = fitGaussian(lat.data, n, d);
    expect(g.shrinkageMethod).to.equal('ledoit-wolf');
    expect(g.shrinkage).to.equal(s);
    const { cov } = meanAndCovariance(lat.data, n, d);
    let tr = 0;
    for (let j = 0; j < d; j++) tr += cov[j * d + j]!;
    // Off-diagonals scale by (1 - s); the trace is preserved.
    expect(g.covariance[1]).to.be.closeTo((1 - s) * cov[1]!, 1e-12);
    let trG = 0;
    for (let j = 0; j < d; j++) trG += g.covariance[j * d + j]!;
    expect(trG).to.be.closeTo(tr, 1e-9);
  });

  it('stays finite with a constant column and a duplicated column', () => {
    const m = 200;
    const dd = 5;
    const rnd = normalSampler('singular');
    const x = new Float64Array(m * dd);
    for (let i = 0; i < m; i++) {
      x[i * dd] = rnd();
      x[i * dd + 1] = rnd();
      x[i * dd + 2] = 3.5; // dead unit
      x[i * dd + 3] = x[i * dd]!; // duplicated unit
      x[i * dd + 4] = rnd() * 100;
    }
    const { cov } = meanAndCovariance(x, m, dd);
    expect(() => choleskyLower(cov, dd)).to.throw(/not positive definite/);
    for (const shrinkage of [0, 'ledoit-wolf'] as const) {
      const g = fitGaussian(x, m, dd, { shrinkage });
      const scores = g.mahalanobisSqBatch(x);
      for (const s of scores) expect(Number.isFinite(s)).to.equal(true);
      const off = Float64Array.from(x.subarray(0, dd));
      off[2] = 4; // leaves the dead unit's value
      expect(Number.isFinite(g.mahalanobisSq(off))).to.equal(true);
    }
    expect(() => fitGaussian(x, m, dd, { shrinkage: 0, ridge: 0 })).to.throw(/not positive definite/);
  });

  it('round-trips through JSON', () => {
    const g = fitGaussian(lat.data, n, d);
    const g2 = Gaussian.fromJSON(JSON.parse(JSON.stringify(g.toJSON())));
    const q = get(t, 'query').data;
    const a = g.mahalanobisSqBatch(q);
    const b = g2.mahalanobisSqBatch(q);
    for (let i = 0; i < a.length; i++) expect(b[i]).to.equal(a[i]);
    expect(g2.shrinkage).to.equal(g.shrinkage);
    expect(() => Gaussian.fromJSON({ format: 'svdd-gaussian', version: 1, d: 2, mean: [0] })).to.throw(/invalid Gaussian JSON/);
  });

  it('rejects bad input', () => {
    expect(() => fitGaussian(new Float64Array(5), 2, 3)).to.throw(/expected 2×3/);
    expect(() => fitGaussian(new Float64Array([0, NaN, 1, 2]), 2, 2)).to.throw(/non-finite/);
    expect(() => fitGaussian(new Float64Array(6), 3, 2, { shrinkage: 1.5 })).to.throw(/shrinkage/);
  });
});

describe('chi-square quantile', () => {
  const known: [number, number, number][] = [
    [0.95, 1, 3.841458820694124],
    [0.95, 10, 18.307038053275146],
    [0.99, 32, 53.48577183623047],
  ];
  for (const [p, k, x] of known) {
    it(`χ²(${p}, ${k}) = ${x}`, () => {
      expect(chiSquareQuantile(p, k)).to.be.closeTo(x, 1e-11 * x);
    });
  }
  it('inverts the CDF across the range, including extreme tails', () => {
    for (const k of [1, 2, 3, 8, 32, 128, 1000]) {
      for (const p of [1e-10, 0.001, 0.05, 0.5, 0.95, 0.999, 1 - 1e-9]) {
        const x = chiSquareQuantile(p, k);
        const back = chiSquareCdf(x, k);
        if (p > 0.5) expect((1 - back) / (1 - p)).to.be.closeTo(1, 1e-6);
        else expect(back / p).to.be.closeTo(1, 1e-9);
      }
    }
    // χ²(2) is exponential with mean 2: quantile = -2 ln(1 - p).
    expect(chiSquareQuantile(0.9, 2)).to.be.closeTo(-2 * Math.log(0.1), 1e-13);
    expect(chiSquareQuantile(0, 3)).to.equal(0);
    expect(chiSquareQuantile(1, 3)).to.equal(Infinity);
  });
});

describe('label-free threshold on synthetic Gaussian latents', () => {
  it('quantile threshold at alpha = 0.05 gives an observed FPR of 0.05 ± 0.01 on fresh normals', () => {
    const d = 8;
    const rnd = normalSampler('svdd-threshold');
    // A correlated, anisotropic Gaussian: x = A z + b.
    const A = new Float64Array(d * d);
    for (let i = 0; i < d; i++) for (let j = 0; j <= i; j++) A[i * d + j] = i === j ? 1 + i * 0.5 : 0.3 * rnd();
    const b = Float64Array.from({ length: d }, (_, i) => i - 3);
    const sample = (m: number): Float64Array => {
      const out = new Float64Array(m * d);
      const z = new Float64Array(d);
      for (let r = 0; r < m; r++) {
        for (let j = 0; j < d; j++) z[j] = rnd();
        for (let i = 0; i < d; i++) {
          let v = b[i]!;
          for (let j = 0; j <= i; j++) v += A[i * d + j]! * z[j]!;
          out[r * d + i] = v;
        }
      }
      return out;
    };
    const g = fitGaussian(sample(2000), 2000, d);
    const tau = quantileThreshold(g.mahalanobisSqBatch(sample(2000)), 0.05);
    expect(tau.method).to.equal('quantile');
    expect(tau.nCalibration).to.equal(2000);
    const testScores = g.mahalanobisSqBatch(sample(20000));
    const ev = evaluateThreshold(new Uint8Array(20000), testScores, tau);
    expect(ev.observedFpr).to.be.within(0.04, 0.06);
    expect(ev.alpha).to.equal(0.05);
    expect(ev.recall).to.be.NaN; // no anomalies in this test set

    // For truly Gaussian latents the χ² rule should land near alpha as well.
    const chi = chi2Threshold(d, 0.05);
    expect(chi.tau).to.be.closeTo(15.507313055865453, 1e-9);
    expect(evaluateThreshold(new Uint8Array(20000), testScores, chi).observedFpr).to.be.within(0.035, 0.065);
  });

  it('evaluateThreshold with both classes', () => {
    const ev = evaluateThreshold([0, 0, 0, 1, 1], [0.1, 0.2, 0.9, 0.8, 0.3], 0.5);
    expect([ev.tp, ev.fp, ev.tn, ev.fn]).to.deep.equal([1, 1, 2, 1]);
    expect(ev.observedFpr).to.be.closeTo(1 / 3, 1e-15);
    expect(ev.flaggedRate).to.equal(0.4);
  });
});
