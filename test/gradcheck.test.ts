import { expect } from 'chai';
import * as ag from '../src/autograd/index.ts';
import { Rng, randNormal, zeros, ones, tensor } from '../src/tensor/creation.ts';
import type { Tensor } from '../src/tensor/tensor.ts';

const rng = new Rng('gradcheck');
const r = (...shape: number[]): Tensor => randNormal(shape, 0, 1, rng, 'float64');
/** Values kept away from 0 so kinks (relu, abs, max) are not straddled by the finite difference. */
const rAway = (...shape: number[]): Tensor => {
  const t = r(...shape);
  for (let i = 0; i < t.storage.length; i++) { const v = t.storage[i]!; t.storage[i] = v + Math.sign(v) * 0.1; }
  return t;
};
const positive = (...shape: number[]): Tensor => { const t = r(...shape); for (let i = 0; i < t.storage.length; i++) t.storage[i] = 0.5 + Math.abs(t.storage[i]!); return t; };

function check(name: string, f: (...xs: Tensor[]) => Tensor, inputs: () => Tensor[], tol = 1e-7): void {
  it(name, () => {
    const res = ag.gradCheck(f, inputs());
    expect(res.maxError, `${name}: worst ${JSON.stringify(res.worst)}`).to.be.below(tol);
  });
}

describe('finite-difference gradient checks (float64)', () => {
  describe('element-wise with broadcasting', () => {
    check('add same shape', (a, b) => ag.add(a!, b!), () => [r(3, 4), r(3, 4)]);
    check('add row broadcast', (a, b) => ag.add(a!, b!), () => [r(3, 4), r(4)]);
    check('add both sides broadcast', (a, b) => ag.add(a!, b!), () => [r(3, 1), r(1, 5)]);
    check('sub broadcast scalar', (a, b) => ag.sub(a!, b!), () => [r(2, 3, 2), r()]);
    check('mul channel broadcast', (a, b) => ag.mul(a!, b!), () => [r(2, 3, 2, 2), r(1, 3, 1, 1)]);
    check('div', (a, b) => ag.div(a!, b!), () => [r(3, 5), positive(5)]);
    check('scale / addScalar', (a) => ag.addScalar(ag.scale(a!, -2.5), 3), () => [r(7)]);
    check('broadcastTo', (a) => ag.broadcastTo(a!, [4, 2, 3]), () => [r(2, 1)]);
  });
  describe('unary', () => {
    check('leakyRelu 0.01', (a) => ag.leakyRelu(a!, 0.01), () => [rAway(3, 7)]);
    check('leakyRelu 0.2', (a) => ag.leakyRelu(a!, 0.2), () => [rAway(5)]);
    check('relu', (a) => ag.relu(a!), () => [rAway(11)]);
    check('elu', (a) => ag.elu(a!, 1), () => [rAway(3, 5)]);
    check('elu alpha 0.5', (a) => ag.elu(a!, 0.5), () => [rAway(6)]);
    check('sigmoid', (a) => ag.sigmoid(a!), () => [r(4, 3)]);
    check('exp', (a) => ag.exp(a!), () => [r(6)]);
    check('log', (a) => ag.log(a!), () => [positive(6)]);
    check('neg', (a) => ag.neg(a!), () => [r(6)]);
    check('sqrt', (a) => ag.sqrt(a!), () => [positive(6)]);
    check('abs', (a) => ag.abs(a!), () => [rAway(6)]);
    check('square', (a) => ag.square(a!), () => [r(2, 3)]);
  });
  describe('reductions', () => {
    check('sum all', (a) => ag.sum(a!), () => [r(3, 4)]);
    check('sum axis 1 keepdims', (a) => ag.sum(a!, 1, true), () => [r(3, 4, 2)]);
    check('sum axes [0, 2]', (a) => ag.sum(a!, [0, 2]), () => [r(3, 4, 2)]);
    check('mean axis -1', (a) => ag.mean(a!, -1), () => [r(5, 3)]);
    check('max axis 0', (a) => ag.max(a!, 0), () => [r(4, 3)]);
    check('max all', (a) => ag.max(a!), () => [r(9)]);
    check('variance biased', (a) => ag.variance(a!, 0), () => [r(6, 2)]);
    check('variance unbiased keepdims', (a) => ag.variance(a!, [0, 1], true, true), () => [r(3, 4, 2)]);
  });
  describe('shape', () => {
    check('reshape', (a) => ag.mul(ag.reshape(a!, [4, -1]), ag.reshape(a!, [4, 3])), () => [r(2, 6)]);
    check('permute', (a) => ag.contiguous(ag.permute(a!, [2, 0, 1])), () => [r(2, 3, 4)]);
    check('transpose then matmul', (a, b) => ag.matmul(ag.contiguous(ag.transpose(a!)), b!), () => [r(3, 2), r(3, 4)]);
    check('narrow', (a) => ag.narrow(a!, 1, 1, 2), () => [r(3, 4)]);
    check('flatten', (a) => ag.flatten(a!), () => [r(2, 3, 2, 2)]);
  });
  describe('linear algebra', () => {
    check('matmul odd sizes', (a, b) => ag.matmul(a!, b!), () => [r(3, 5), r(5, 7)]);
    check('matmul 1x1', (a, b) => ag.matmul(a!, b!), () => [r(1, 1), r(1, 1)]);
    check('linear with bias', (x, w, b) => ag.linear(x!, w!, b), () => [r(4, 7), r(3, 7), r(3)]);
    check('linear without bias', (x, w) => ag.linear(x!, w!), () => [r(1, 5), r(2, 5)]);
  });
  describe('convolution', () => {
    check('conv2d k5 p2', (x, w) => ag.conv2d(x!, w!, null, { padding: 2 }), () => [r(2, 2, 7, 6), r(3, 2, 5, 5)]);
    check('conv2d k3 p1 s2 bias, odd input', (x, w, b) => ag.conv2d(x!, w!, b, { padding: 1, stride: 2 }), () => [r(2, 3, 7, 5), r(2, 3, 3, 3), r(2)]);
    check('conv2d k3 no padding, cin=1', (x, w) => ag.conv2d(x!, w!), () => [r(1, 1, 5, 5), r(2, 1, 3, 3)]);
    check('convTranspose2d k5 p2', (x, w) => ag.convTranspose2d(x!, w!, null, { padding: 2 }), () => [r(2, 2, 4, 4), r(2, 3, 5, 5)]);
    check('convTranspose2d k5 p3', (x, w) => ag.convTranspose2d(x!, w!, null, { padding: 3 }), () => [r(1, 2, 7, 7), r(2, 2, 5, 5)]);
    check('convTranspose2d stride 2 bias', (x, w, b) => ag.convTranspose2d(x!, w!, b, { stride: 2, padding: 1 }), () => [r(2, 2, 3, 4), r(2, 1, 3, 3), r(1)]);
  });
  describe('pooling, upsampling, normalisation', () => {
    check('maxPool2d even', (x) => ag.maxPool2d(x!, 2), () => [r(2, 2, 4, 6)]);
    check('maxPool2d odd (last row/col dropped)', (x) => ag.maxPool2d(x!, 2), () => [r(1, 3, 5, 7)]);
    check('upsampleNearest x2', (x) => ag.upsampleNearest(x!, 2), () => [r(2, 3, 3, 2)]);
    check('upsampleNearest x3', (x) => ag.upsampleNearest(x!, 3), () => [r(1, 1, 2, 3)]);
    check('batchNorm 2d train', (x) => ag.batchNorm(x!, { runningMean: zeros([3], 'float64'), runningVar: ones([3], 'float64'), training: true, momentum: 0.1, eps: 1e-4 }), () => [r(3, 3, 2, 3)], 1e-6);
    check('batchNorm 1d train', (x) => ag.batchNorm(x!, { runningMean: zeros([4], 'float64'), runningVar: ones([4], 'float64'), training: true, momentum: 0.1, eps: 1e-4 }), () => [r(5, 4)], 1e-6);
    check('batchNorm eval', (x) => ag.batchNorm(x!, { runningMean: tensor([0.3, -1], [2], 'float64'), runningVar: tensor([2, 0.5], [2], 'float64'), training: false, momentum: 0.1, eps: 1e-4 }), () => [r(2, 2, 3, 3)]);
  });
  describe('composite: a small encoder', () => {
    check('conv → bn → leakyRelu → pool → linear → squared distance', (x, w, fc) => {
      const h = ag.maxPool2d(ag.leakyRelu(ag.batchNorm(ag.conv2d(x!, w!, null, { padding: 2 }), { runningMean: zeros([2], 'float64'), runningVar: ones([2], 'float64'), training: true, momentum: 0.1, eps: 1e-4 })));
      const z = ag.linear(ag.flatten(h), fc!);
      return ag.mean(ag.sum(ag.square(ag.sub(z, tensor([0.1, -0.1, 0.2], [3], 'float64'))), 1));
    }, () => [r(3, 1, 6, 6), r(2, 1, 5, 5), r(3, 18)], 1e-6);
  });

  it('accumulates gradients across backward calls and supports noGrad', () => {
    const x = r(3).requireGrad();
    ag.backward(ag.sum(ag.square(x)));
    ag.backward(ag.sum(ag.square(x)));
    const xv = x.values();
    x.grad!.values().forEach((g, i) => expect(g).to.be.closeTo(4 * xv[i]!, 1e-12));
    const y = ag.noGrad(() => ag.square(x));
    expect(y.requiresGrad).to.equal(false);
    expect(y.gradNode).to.equal(null);
  });

  it('gives gradients w.r.t. intermediate activations', () => {
    const x = r(2, 3).requireGrad();
    const a = ag.leakyRelu(x);
    const s = ag.sum(ag.square(a));
    const [ga] = ag.grad(s, [a]);
    ga!.values().forEach((g, i) => expect(g).to.be.closeTo(2 * a.values()[i]!, 1e-12));
  });
});
