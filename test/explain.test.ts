/**
 * Attribution methods and faithfulness curves on tiny float64 networks, each against an
 * independent check: gradient × input against central finite differences, integrated gradients'
 * completeness, occlusion against direct re-scoring, deletion/insertion on a hand-made linear
 * score, Grad-CAM's activation features against a forward pass that holds them as graph nodes.
 */
import { expect } from 'chai';
import { PNG } from 'pngjs';
import * as ag from '../src/autograd/index.ts';
import { grad } from '../src/autograd/engine.ts';
import { BatchNorm, Conv2d, Linear, Module } from '../src/nn/index.ts';
import { Rng } from '../src/tensor/creation.ts';
import { tensorFromArray, type Tensor } from '../src/tensor/tensor.ts';
import { activationFeatures, gradCam, svddScoreFn, blockNorm } from '../src/svdd/gradcam.ts';
import { buildEncoder } from '../src/svdd/networks.ts';
import { customScorer, inputGradients, scoreMany, type ImageScorer } from '../src/svdd/explain/score.ts';
import {
  channelSum, gradCamAttribution, gradientTimesInput, integratedGradients, occlusion, patchStarts,
} from '../src/svdd/explain/methods.ts';
import {
  attributionOrder, curveArea, curveCounts, imageFaithfulness, normalizeCurve, perturbationCurves, perturbedImages, summarizeFaithfulness,
} from '../src/svdd/explain/faithfulness.ts';
import { assignIds, explainWith, evaluateFaithfulness, meanOfImages } from '../src/svdd/explain/explain.ts';
import { renderFigure, attributionRgb } from '../src/svdd/explain/figure.ts';
import { hasGlyph } from '../src/svdd/explain/font.ts';

/** conv(c→3, 3×3) → BN → leaky → pool → conv(3→2) → BN → leaky → pool → fc(→4), no biases, like the LeNets. */
class TinyNet extends Module {
  readonly conv1: Conv2d; readonly bn1: BatchNorm; readonly conv2: Conv2d; readonly bn2: BatchNorm; readonly fc1: Linear;
  constructor(readonly channels: number, readonly size: number, seed = 1) {
    super();
    const rng = new Rng(seed), dtype = 'float64' as const;
    this.conv1 = this.registerModule('conv1', new Conv2d(channels, 3, 3, { padding: 1, bias: false, dtype, rng }));
    this.bn1 = this.registerModule('bn1', new BatchNorm(3, { dtype, eps: 1e-4, affine: false }));
    this.conv2 = this.registerModule('conv2', new Conv2d(3, 2, 3, { padding: 1, bias: false, dtype, rng }));
    this.bn2 = this.registerModule('bn2', new BatchNorm(2, { dtype, eps: 1e-4, affine: false }));
    this.fc1 = this.registerModule('fc1', new Linear(2 * (size / 4) ** 2, 4, { bias: false, dtype, rng }));
    // Running statistics away from (0, 1), so that BN matters.
    for (const bn of [this.bn1, this.bn2]) {
      const m = bn.runningMean.storage, v = bn.runningVar.storage;
      for (let i = 0; i < m.length; i++) { m[i] = rng.uniform() - 0.5; v[i] = 0.5 + rng.uniform(); }
    }
    this.eval();
  }
  forward(x: Tensor): Tensor {
    let h = ag.maxPool2d(ag.leakyRelu(this.bn1.call(this.conv1.call(x)), 0.01), 2);
    h = ag.maxPool2d(ag.leakyRelu(this.bn2.call(this.conv2.call(h)), 0.01), 2);
    return this.fc1.call(ag.flatten(h));
  }
}

function tinyScorer(channels = 1, size = 8, seed = 1): { scorer: ImageScorer; net: TinyNet } {
  const net = new TinyNet(channels, size, seed);
  const center = [0.3, -0.2, 0.1, 0.05];
  const s = svddScoreFn(center);
  return {
    net,
    scorer: customScorer({ net, dtype: 'float64', shape: [channels, size, size], encode: (x) => net.forward(x), score: (x) => s(net.forward(x)) }),
  };
}

function randomImages(n: number, per: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  return Float64Array.from({ length: n * per }, () => rng.uniform());
}

/** Central finite difference of the scorer's score of one image w.r.t. every input element. */
function finiteDifferenceGradient(scorer: ImageScorer, x: Float64Array, eps = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  const probes = new Float64Array(2 * x.length * x.length);
  for (let p = 0; p < x.length; p++) {
    probes.set(x, 2 * p * x.length); probes[2 * p * x.length + p]! += eps;
    probes.set(x, (2 * p + 1) * x.length); probes[(2 * p + 1) * x.length + p]! -= eps;
  }
  const s = scoreMany(scorer, probes, 2 * x.length);
  for (let p = 0; p < x.length; p++) g[p] = (s[2 * p]! - s[2 * p + 1]!) / (2 * eps);
  return g;
}

describe('attribution methods (tiny float64 nets)', () => {
  it('gradient × input equals x ⊙ finite-difference gradient, per image of a batch', () => {
    for (const channels of [1, 3]) {
      const { scorer } = tinyScorer(channels, 8);
      const per = channels * 64, n = 3;
      const x = randomImages(n, per, 11 + channels);
      const a = gradientTimesInput(scorer, x, n);
      for (let i = 0; i < n; i++) {
        const xi = x.subarray(i * per, (i + 1) * per);
        const fd = finiteDifferenceGradient(scorer, xi);
        let maxErr = 0, scale = 0;
        for (let p = 0; p < per; p++) {
          maxErr = Math.max(maxErr, Math.abs(a.elements![i * per + p]! - fd[p]! * xi[p]!));
          scale = Math.max(scale, Math.abs(fd[p]! * xi[p]!));
        }
        expect(maxErr / scale, `channels ${channels} image ${i}`).to.be.below(1e-6);
      }
      expect(Array.from(a.pixels)).to.deep.equal(Array.from(channelSum(a.elements!, n, channels, 64)));
    }
  });

  it('input gradients match autograd on a single image and leave the parameters untouched', () => {
    const { scorer, net } = tinyScorer(1, 8);
    const x = randomImages(2, 64, 5);
    const { scores, grads } = inputGradients(scorer, x, 2);
    const t = tensorFromArray(x.slice(64), [1, 1, 8, 8]).requireGrad();
    const s = scorer.score(t);
    const [g] = grad(s, [t]);
    expect(scores[1]).to.be.closeTo(s.item(), 1e-14);
    const gv = g!.values();
    for (let p = 0; p < 64; p++) expect(grads[64 + p]).to.be.closeTo(gv[p]!, 1e-14);
    for (const p of net.parameters()) { expect(p.requiresGrad).to.equal(true); expect(p.grad).to.equal(null); }
  });

  it('integrated gradients are complete: Σ attributions = S(x) − S(baseline)', () => {
    // A scorer quadratic in x (a linear encoder): the gradient is linear along the path, so the
    // midpoint rule is exact and completeness holds to rounding error for any number of steps.
    const rng = new Rng(3);
    const fc = new Linear(2 * 36, 5, { bias: false, dtype: 'float64', rng });
    const center = [0.1, 0.2, -0.3, 0.4, 0];
    const s = svddScoreFn(center);
    const lin = customScorer({ net: fc, dtype: 'float64', shape: [2, 6, 6], encode: (x) => fc.call(ag.flatten(x)), score: (x) => s(fc.call(ag.flatten(x))) });
    const x = randomImages(3, 72, 4);
    for (const steps of [1, 7]) {
      const ig = integratedGradients(lin, x, 3, new Float64Array(72).fill(0.25), steps);
      for (let i = 0; i < 3; i++) expect(Math.abs(ig.completeness!.gaps[i]!)).to.be.below(1e-12 * Math.max(1, Math.abs(ig.completeness!.sums[i]!)));
    }
    // The piecewise-linear conv net (leaky ReLU, max pooling): the midpoint rule's error shrinks
    // with the steps; stated tolerance: 0.5% of |S(x) − S(b)| at 256 steps (measured: 4e-4 and 5e-4).
    const { scorer } = tinyScorer(1, 8);
    const xs = randomImages(2, 64, 9);
    const baselines = randomImages(2, 64, 10).map((v) => v * 0.2);
    const ig = integratedGradients(scorer, xs, 2, baselines, 256);
    for (let i = 0; i < 2; i++) {
      const { gaps, sums } = ig.completeness!;
      const diff = ig.scores[i]! - ig.completeness!.baselineScores[i]!;
      expect(sums[i]! - gaps[i]!).to.be.closeTo(diff, 1e-12);
      expect(Math.abs(gaps[i]!)).to.be.below(5e-3 * Math.abs(diff));
    }
  });

  it('occlusion equals direct re-scoring of each occluded image', () => {
    const { scorer } = tinyScorer(3, 8);
    const per = 3 * 64;
    const x = randomImages(2, per, 21);
    const baseline = randomImages(1, per, 22);
    expect(patchStarts(8, 3, 2)).to.deep.equal([0, 2, 4, 5]);
    expect(patchStarts(8, 2, 2)).to.deep.equal([0, 2, 4, 6]);
    const occlude = (xi: Float64Array, y0: number, x0: number, p: number): Float64Array => {
      const img = xi.slice();
      for (let c = 0; c < 3; c++) for (let y = y0; y < y0 + p; y++) for (let xx = x0; xx < x0 + p; xx++) img[c * 64 + y * 8 + xx] = baseline[c * 64 + y * 8 + xx]!;
      return img;
    };
    // Non-overlapping 2×2 patches: each pixel carries its patch's Δ / 4.
    const tiles = occlusion(scorer, x, 2, baseline, 2, 2);
    for (let i = 0; i < 2; i++) {
      const xi = x.slice(i * per, (i + 1) * per);
      const sx = scoreMany(scorer, xi, 1)[0]!;
      for (const y0 of [0, 2, 4, 6]) for (const x0 of [0, 2, 4, 6]) {
        const d = sx - scoreMany(scorer, occlude(xi, y0, x0, 2), 1)[0]!;
        for (let y = y0; y < y0 + 2; y++) for (let xx = x0; xx < x0 + 2; xx++) expect(tiles.pixels[i * 64 + y * 8 + xx]).to.be.closeTo(d / 4, 1e-13);
      }
    }
    // Overlapping 3×3 patches, stride 2: a pixel is the mean of Δ/9 over the patches covering it.
    const over = occlusion(scorer, x, 2, baseline, 3, 2);
    const xi = x.slice(0, per), sx = scoreMany(scorer, xi, 1)[0]!;
    for (const [py, px] of [[0, 0], [2, 2], [5, 3], [7, 7]] as const) {
      const ds: number[] = [];
      for (const y0 of [0, 2, 4, 5]) for (const x0 of [0, 2, 4, 5]) {
        if (py >= y0 && py < y0 + 3 && px >= x0 && px < x0 + 3) ds.push((sx - scoreMany(scorer, occlude(xi, y0, x0, 3), 1)[0]!) / 9);
      }
      expect(over.pixels[py * 8 + px]).to.be.closeTo(ds.reduce((a, b) => a + b, 0) / ds.length, 1e-13);
    }
  });

  it("Grad-CAM at 'act' uses the activation output and its exact gradient", () => {
    const net = buildEncoder('mnist_LeNet', { dtype: 'float64', seed: 3 });
    const rng = new Rng(8);
    for (const bn of [net.getModule('bn1'), net.getModule('bn2')] as BatchNorm[]) {
      const m = bn.runningMean.storage;
      for (let i = 0; i < m.length; i++) m[i] = rng.uniform() - 0.5;
    }
    net.eval();
    const center = Array.from({ length: 32 }, () => rng.uniform() - 0.5);
    const score = svddScoreFn(center);
    const x = tensorFromArray(randomImages(2, 784, 12), [2, 1, 28, 28]);
    const r = gradCam(x, { net, encode: (t) => net.forward(t), score, at: 'act', activation: { name: 'leaky', slope: 0.01 } });
    // The same network written out with Z = leaky(bn2(conv2(...))) as a graph node.
    const c1 = net.getModule('conv1') as Conv2d, c2 = net.getModule('conv2') as Conv2d, fc = net.getModule('fc1') as Linear;
    const b1 = net.getModule('bn1') as BatchNorm, b2 = net.getModule('bn2') as BatchNorm;
    const h1 = ag.maxPool2d(ag.leakyRelu(b1.call(c1.call(x)), 0.01), 2);
    const z = ag.leakyRelu(b2.call(c2.call(h1)), 0.01);
    const s = score(fc.call(ag.flatten(ag.maxPool2d(z, 2))));
    const [gz] = grad(ag.sum(s), [z]);
    const zv = z.values(), gzv = gz!.values(), av = r.activation.values(), agv = r.activationGrad.values();
    for (let i = 0; i < zv.length; i++) {
      expect(av[i]).to.be.closeTo(zv[i]!, 1e-13);
      expect(agv[i]).to.be.closeTo(gzv[i]!, 1e-12 * Math.max(1, Math.abs(gzv[i]!)));
    }
    expect(r.at).to.equal('act');
    for (let i = 0; i < r.cam.length; i++) expect(r.cam[i]).to.equal(Math.max(0, r.camLinear[i]!));
    expect(blockNorm(net, 'conv2').name).to.equal('bn2');
    expect(() => blockNorm(net, 'fc1')).to.throw(/not followed by a BatchNorm/);
    expect(() => gradCam(x, { net, encode: (t) => net.forward(t), score, at: 'act' })).to.throw(/activation/);
  });

  it('ELU features: Z = α·expm1(B), ∂S/∂Z = ∂S/∂B / (Z + α) for B ≤ 0', () => {
    const { z, gz } = activationFeatures([1.5, -0.5, 0], [2, 3, 4], { name: 'elu', alpha: 1 });
    expect(z[0]).to.equal(1.5);
    expect(z[1]).to.be.closeTo(Math.expm1(-0.5), 1e-15);
    expect(gz[1]).to.be.closeTo(3 / Math.exp(-0.5), 1e-12);
    expect(gz[2]).to.equal(4);
  });

  it('Grad-CAM attribution: the CAM upsampled to the image, through the scorer', () => {
    const { scorer } = tinyScorer(1, 8);
    const x = randomImages(2, 64, 30);
    const a = gradCamAttribution(scorer, x, 2, 'conv1', 'bn');
    expect(a.cam!.height).to.equal(8);
    expect(a.pixels.length).to.equal(2 * 64);
    expect(a.signed).to.equal(false);
    for (let i = 0; i < a.pixels.length; i++) expect(a.pixels[i]).to.be.at.least(0);
    expect(Array.from(a.scores)).to.deep.equal(Array.from(scoreMany(scorer, x, 2)));
  });

  it('explainWith runs every method on the same score and gives repeated methods distinct ids', () => {
    const { scorer } = tinyScorer(1, 8);
    const x = randomImages(3, 64, 40);
    const e = explainWith(scorer, x, 3, {
      methods: [{ method: 'gradcam', layer: 'conv1', at: 'act' }, { method: 'gradcam', layer: 'conv2', at: 'conv' }, { method: 'gradxinput' }, { method: 'ig', steps: 16 }, { method: 'occlusion', patch: 2, stride: 2 }],
      meanImage: meanOfImages(x, 3, 64),
    });
    expect(e.attributions.map((a) => a.id)).to.deep.equal(['gradcam-conv1-act', 'gradcam-conv2-conv', 'gradxinput', 'ig', 'occlusion']);
    expect(e.baseline.kind).to.equal('mean');
    for (const a of e.attributions) expect(Array.from(a.scores).map((v) => v.toFixed(10))).to.deep.equal(Array.from(e.attributions[2]!.scores).map((v) => v.toFixed(10)));
    const { perImage, summary } = evaluateFaithfulness(e, x, [0, 2], { steps: 8, randomSeeds: 2 });
    expect(perImage).to.have.length(2);
    expect(summary.rows.map((r) => r.id)).to.deep.equal([...e.attributions.map((a) => a.id), 'random']);
    for (const r of perImage) {
      expect(r.scoreBaseline).to.be.closeTo(scoreMany(scorer, e.baseline.image, 1)[0]!, 1e-12);
      for (const c of Object.values(r.curves)) {
        expect(c.deletion[0]).to.be.closeTo(r.scoreX, 1e-12);
        expect(c.insertion[8]).to.be.closeTo(r.scoreX, 1e-12);
        expect(c.insertion[0]).to.be.closeTo(r.scoreBaseline, 1e-12);
      }
    }
    const ids = [{ spec: { method: 'ig' } }, { spec: { method: 'ig' } }] as Parameters<typeof assignIds>[0];
    assignIds(ids);
    expect(ids.map((a) => a.id)).to.deep.equal(['ig-0', 'ig-1']);
  });
});

describe('deletion and insertion curves (hand-made linear score)', () => {
  // S(x) = Σ_p w_p x_p over 2 channels of 2×2 pixels; baseline 0, x = 1 everywhere.
  const w = [4, 1, 3, 0, /* channel 2 */ 1, 1, 0, 2];
  const pixelWeight = [5, 2, 3, 2]; // summed over channels
  const score = (images: Float64Array, n: number): Float64Array => Float64Array.from({ length: n }, (_, i) => w.reduce((s, wp, p) => s + wp * images[i * 8 + p]!, 0));
  const x = new Float64Array(8).fill(1), b = new Float64Array(8);

  it('builds the perturbed images and the curves', () => {
    expect(Array.from(curveCounts(4, 4))).to.deep.equal([0, 1, 2, 3, 4]);
    expect(Array.from(curveCounts(784, 50)).slice(0, 3)).to.deep.equal([0, 16, 31]);
    const order = [0, 2, 1, 3];
    const del = perturbedImages(x, b, order, 2, 'deletion', 4);
    expect(Array.from(del.subarray(8, 16))).to.deep.equal([0, 1, 1, 1, 0, 1, 1, 1]);
    expect(Array.from(del.subarray(32, 40))).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 0]);
    const [c] = perturbationCurves(score, x, b, [order], 2, 4);
    // S(x) = 12; deleting pixel 0 (−5), pixel 2 (−3), pixel 1 (−2), pixel 3 (−2).
    expect(Array.from(c!.deletion)).to.deep.equal([12, 7, 4, 2, 0]);
    expect(Array.from(c!.insertion)).to.deep.equal([0, 5, 8, 10, 12]);
    // Trapezoid areas on [0, 1] with 4 intervals: (12/2 + 7 + 4 + 2 + 0/2) / 4 = 4.75.
    expect(curveArea(c!.deletion)).to.be.closeTo(4.75, 1e-15);
    expect(curveArea(c!.insertion)).to.be.closeTo((0 + 5 + 8 + 10 + 6) / 4, 1e-15);
    expect(Array.from(normalizeCurve(c!.deletion, 12, 0)!)).to.deep.equal([1, 7 / 12, 4 / 12, 2 / 12, 0]);
    expect(normalizeCurve([1, 2], 3, 3)).to.equal(null);
  });

  it('the true weights beat the reversed order and random orders sit between', () => {
    const best = imageFaithfulness(score, x, b, 2, { exact: pixelWeight, reversed: pixelWeight.map((v) => -v) }, { steps: 4, randomSeeds: 8, seed: 1 });
    const m = best.methods;
    expect(m.exact!.deletion).to.be.closeTo(4.75 / 12, 1e-12);
    expect(m.exact!.deletion!).to.be.below(best.random.deletion!);
    expect(best.random.deletion!).to.be.below(m.reversed!.deletion!);
    expect(m.exact!.insertion!).to.be.above(best.random.insertion!);
    expect(best.random.insertion!).to.be.above(m.reversed!.insertion!);
    const sum = summarizeFaithfulness([best, best], ['exact', 'reversed']);
    expect(sum.rows.map((r) => r.id)).to.deep.equal(['exact', 'reversed', 'random']);
    expect(sum.rows[0]!.deletion.mean).to.be.closeTo(4.75 / 12, 1e-12);
    expect(sum.rows[0]!.deletion.sd).to.equal(0);
    expect(sum.degenerate).to.equal(0);
  });

  it('breaks ties at random (seeded), not by position', () => {
    const flat = new Float64Array(100);
    flat[50] = 1;
    const a = attributionOrder(flat, new Rng(1)), b2 = attributionOrder(flat, new Rng(1)), c = attributionOrder(flat, new Rng(2));
    expect(a[0]).to.equal(50);
    expect(Array.from(a)).to.deep.equal(Array.from(b2));
    expect(Array.from(a)).to.not.deep.equal(Array.from(c));
    expect(Array.from(a.slice(1, 11))).to.not.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

describe('explanation figures', () => {
  it('the font covers printable ASCII', () => {
    for (let c = 32; c < 127; c++) expect(hasGlyph(String.fromCharCode(c)), String.fromCharCode(c)).to.equal(true);
  });

  it('renders a captioned figure with upscaled tiles and a colour bar', () => {
    const img = new Float32Array(28 * 28).fill(0.5);
    const map = Float64Array.from({ length: 784 }, (_, i) => (i % 28) - 14);
    const png = PNG.sync.read(Buffer.from(renderFigure({
      caption: ['Explanations of the SVDD score', 'scale: shared'], channels: 1, height: 28, width: 28, scaling: 'shared',
      columns: [{ header: ['#1', 'class 1', 'S=2.21', 'anomalous'], image: img }, { header: ['#2'], image: img }],
      rows: [{ label: ['IG'], maps: [map, map.map((v) => v / 10)], signed: true, unit: 'score' }],
    })));
    expect(png.width).to.be.greaterThan(2 * 28 * 5);
    expect(png.height).to.be.greaterThan(2 * 28 * 5);
    // Some pure red-ish pixels (positive attributions) and blue-ish (negative) appear.
    let red = 0, blue = 0;
    for (let i = 0; i < png.width * png.height; i++) {
      const [r, g, bl] = [png.data[4 * i]!, png.data[4 * i + 1]!, png.data[4 * i + 2]!];
      if (r > 200 && bl < 60 && g > 150) red++;
      if (bl > 200 && r < 60) blue++;
    }
    expect(red).to.be.greaterThan(100);
    expect(blue).to.be.greaterThan(100);
    // A zero map leaves the dimmed image; v = range is full colour.
    const rgb = attributionRgb([0, 1, -1], 1, [1, 1, 1], 1);
    expect([rgb[0], rgb[3], rgb[6]].map((v) => Number(v!.toFixed(3)))).to.deep.equal([0.45, 0.45, 0.45]);
    expect([rgb[1], rgb[4], rgb[7]].map((v) => Number(v!.toFixed(3)))).to.deep.equal([1, 1, 0.05]);
  });
});
