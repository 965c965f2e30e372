import { expect } from 'chai';
import { fixture, expectClose } from './helpers.ts';
import { buildAutoencoder, buildEncoder, type Encoder } from '../src/svdd/networks.ts';
import {
  bilinearResize, convLayerNames, gradCam, lastConvLayer, lowerTriangularInverse, mahalanobisScoreFn,
  normalizeByMax, svddScoreFn,
} from '../src/svdd/gradcam.ts';
import { fitGaussian } from '../src/svdd/gaussian.ts';
import { grad } from '../src/autograd/engine.ts';
import * as ag from '../src/autograd/index.ts';
import { Rng } from '../src/tensor/creation.ts';
import { tensorFromArray } from '../src/tensor/tensor.ts';

const FIXTURE = 'explain/gradcam_mnist_lenet_conv2';

/** The fixture's float64 LeNet in eval mode, weights from its param.* / buffer.* tensors. */
function fixtureNet(): { net: Encoder; center: Float64Array; f: ReturnType<typeof fixture> } {
  const f = fixture(FIXTURE);
  const net = buildEncoder('mnist_LeNet', { dtype: 'float64' });
  const values = new Map<string, { shape: readonly number[]; data: ArrayLike<number> }>();
  for (const name of f.names()) {
    const m = /^(?:param|buffer)\.(.+)$/.exec(name);
    if (m) { const t = f.get(name); values.set(m[1]!, { shape: t.shape, data: t.values() }); }
  }
  net.loadStateDict(values);
  net.eval();
  return { net, center: Float64Array.from(f.get('center').values()), f };
}

describe('Grad-CAM of the anomaly score', () => {
  it('matches the PyTorch fixture (mnist_LeNet, conv2, eval mode) to 1e-9', () => {
    const { net, center, f } = fixtureNet();
    const r = gradCam(f.get('input'), { net, encode: (x) => net.forward(x), score: svddScoreFn(center) });
    expect(r.layer).to.equal('conv2');
    expect(r.scores[0]).to.be.closeTo(f.get('score').values()[0]!, 1e-9);
    expectClose(r.activation, f.get('activation'), 1e-9, 'activation');
    expectClose(r.activationGrad, f.get('activation_grad'), 1e-9, 'activation_grad');
    expectClose(r.cam, f.get('cam').values(), 1e-9, 'cam');
    expectClose(r.camNormalized, f.get('cam_normalized').values(), 1e-9, 'cam_normalized');
    expectClose(r.camUpsampled, f.get('cam_upsampled_bilinear').values(), 1e-9, 'cam_upsampled_bilinear');
    expect([r.height, r.width]).to.deep.equal([28, 28]);
    const up = f.get('cam_upsampled_bilinear').values();
    expectClose(r.heatmap, normalizeByMax(up, 1, up.length), 1e-9, 'heatmap');
    expect(Math.max(...r.heatmap)).to.be.closeTo(1, 1e-12);
    expect(net.training).to.equal(false);
  });

  it('a batch gives each image its own CAM (eval-mode images are independent)', () => {
    const { net, center, f } = fixtureNet();
    const rng = new Rng(7);
    const n = 4, per = 28 * 28;
    const data = new Float64Array(n * per);
    data.set(f.get('input').values());
    for (let i = per; i < data.length; i++) data[i] = rng.uniform();
    const opts = { net, encode: (x: import('../src/tensor/tensor.ts').Tensor) => net.forward(x), score: svddScoreFn(center, 0.25), layer: 'conv1' };
    const batch = gradCam(tensorFromArray(data, [n, 1, 28, 28]), opts);
    expect(batch.camHeight).to.equal(28);
    for (let i = 0; i < n; i++) {
      const one = gradCam(tensorFromArray(data.slice(i * per, (i + 1) * per), [1, 1, 28, 28]), opts);
      expect(batch.scores[i]).to.be.closeTo(one.scores[0]!, 1e-12);
      expectClose(batch.cam.subarray(i * per, (i + 1) * per), one.cam, 1e-12, `cam ${i}`);
      expectClose(batch.heatmap.subarray(i * per, (i + 1) * per), one.heatmap, 1e-12, `heatmap ${i}`);
    }
  });

  it('keeps the network in training mode if it was, and computes the CAM in eval mode', () => {
    const { net, center, f } = fixtureNet();
    const evalCam = gradCam(f.get('input'), { net, encode: (x) => net.forward(x), score: svddScoreFn(center) }).cam;
    net.train();
    const r = gradCam(f.get('input'), { net, encode: (x) => net.forward(x), score: svddScoreFn(center) });
    expect(net.training).to.equal(true);
    expectClose(r.cam, evalCam, 1e-12, 'cam');
  });

  it("the raw conv output's CAM is the BatchNorm output's CAM plus the offset Σ_k w_k·running_mean_k (the edge-blob cause)", () => {
    const { net, center, f } = fixtureNet();
    const bn2 = net.getModule('bn2') as import('../src/nn/index.ts').BatchNorm;
    // Running means away from zero, as a trained net has them (the README's short MNIST-0 run: 0.33, −0.72, −1.22, −1.13).
    bn2.runningMean.storage.set([0.33, -0.72, -1.22, -1.13]);
    const opts = { net, encode: (x: import('../src/tensor/tensor.ts').Tensor) => net.forward(x), score: svddScoreFn(center) };
    const raw = gradCam(f.get('input'), { ...opts, at: 'conv' });
    const bn = gradCam(f.get('input'), { ...opts, at: 'bn' });
    expect(raw.scores[0]).to.be.closeTo(bn.scores[0]!, 1e-12);
    const mu = bn2.runningMean.values();
    let offset = 0;
    for (let k = 0; k < 4; k++) offset += raw.weights[k]! * mu[k]!;
    for (let p = 0; p < raw.camLinear.length; p++) expect(raw.camLinear[p]! - bn.camLinear[p]!).to.be.closeTo(offset, 1e-10);
    // The BatchNorm's scale only moves the weights: w_k(conv) = w_k(bn) / sqrt(var_k + eps).
    const v = bn2.runningVar.values();
    for (let k = 0; k < 4; k++) expect(raw.weights[k]).to.be.closeTo(bn.weights[k]! / Math.sqrt(v[k]! + 1e-4), 1e-12);
  });

  it('finds conv layers by type and rejects other layers', () => {
    expect(convLayerNames(buildEncoder('mnist_LeNet'))).to.deep.equal(['conv1', 'conv2']);
    expect(lastConvLayer(buildEncoder('cifar10_LeNet'))).to.equal('conv3');
    expect(lastConvLayer(buildAutoencoder('mnist_LeNet'))).to.equal('conv2');
    const { net, center, f } = fixtureNet();
    expect(() => gradCam(f.get('input'), { net, encode: (x) => net.forward(x), score: svddScoreFn(center), layer: 'bn1' })).to.throw(/not a conv layer/);
    expect(() => gradCam(f.get('input'), { net, encode: (x) => net.forward(x), score: svddScoreFn(center), layer: 'conv9' })).to.throw(/no layer 'conv9'/);
  });

  it('bilinear upsampling follows F.interpolate(align_corners=False)', () => {
    // torch.nn.functional.interpolate(torch.tensor([[[[1., 2.], [3., 4.]]]]), size=4, mode='bilinear', align_corners=False)
    expect(Array.from(bilinearResize([1, 2, 3, 4], 1, 2, 2, 4, 4))).to.deep.equal([
      1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4,
    ]);
    const src = [0.1, 0.7, 0.3, 0.9, 0.2, 0.5];
    expect(Array.from(bilinearResize(src, 1, 2, 3, 2, 3))).to.deep.equal(src);
  });

  it('normalises by the max and leaves an all-zero CAM at zero', () => {
    expect(Array.from(normalizeByMax([0, 2, 4, 0, 0, 0], 2, 3))).to.deep.equal([0, 0.5, 1, 0, 0, 0]);
  });

  it('the Mahalanobis score matches Gaussian.mahalanobisSq and has gradient 2Σ⁻¹(q − μ)', () => {
    const rng = new Rng(3);
    const n = 50, d = 5;
    const latents = Float64Array.from({ length: n * d }, () => rng.uniform() * 2 - 1 + 0.1);
    const g = fitGaussian(latents, n, d, { shrinkage: 0.1 });
    const q = tensorFromArray(Float64Array.from({ length: 3 * d }, () => rng.uniform()), [3, d]).requireGrad();
    const s = mahalanobisScoreFn(g)(q);
    expectClose(s, g.mahalanobisSqBatch(q.values()), 1e-12, 'scores');
    const [gq] = grad(ag.sum(s), [q]);
    // Σ · (∂S/∂q)/2 must give back q − μ.
    const gv = gq!.values(), qv = q.values();
    for (let i = 0; i < 3; i++) {
      for (let a = 0; a < d; a++) {
        let v = 0;
        for (let b = 0; b < d; b++) v += g.covariance[a * d + b]! * gv[i * d + b]! / 2;
        expect(v).to.be.closeTo(qv[i * d + a]! - g.mean[a]!, 1e-10);
      }
    }
  });

  it('inverts lower-triangular matrices', () => {
    const l = [2, 0, 0, 1, 3, 0, -1, 0.5, 4];
    const inv = lowerTriangularInverse(l, 3);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
      let v = 0;
      for (let k = 0; k < 3; k++) v += l[i * 3 + k]! * inv[k * 3 + j]!;
      expect(v).to.be.closeTo(i === j ? 1 : 0, 1e-15);
    }
  });
});
