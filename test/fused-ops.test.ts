import { expect } from 'chai';
import * as ag from '../src/autograd/index.ts';
import { shutdownBackends, useBackend } from '../src/tensor/backends.ts';
import { kernelProvider } from '../src/tensor/kernels/registry.ts';
import { ones, zeros } from '../src/tensor/creation.ts';
import { type Tensor, tensorFromArray } from '../src/tensor/tensor.ts';
import { randomFloats as rand } from './helpers.ts';

/** Bit patterns, so that signed zeros and NaN payloads count too. */
const bits = (a: ArrayLike<number>): number[] => Array.from(new Uint32Array(Float32Array.from(a).buffer));

/** The fused op's output and input gradient, and the composition's, on the active backend. */
function both(shape: [number, number, number, number], slope: number): { fused: number[][]; composed: number[][] } {
  const size = shape.reduce((a, b) => a * b, 1);
  const xv = rand(size, 51).map((v) => Math.round(v * 8) / 8);
  xv[3] = -0;
  const run = (f: (x: Tensor) => Tensor): number[][] => {
    const x = tensorFromArray(Float32Array.from(xv), shape).requireGrad();
    const y = f(x);
    const gy = tensorFromArray(rand(y.size, 52), y.shape);
    ag.backward(y, gy);
    return [bits(y.values()), bits(x.grad!.values())];
  };
  return {
    fused: run((x) => ag.leakyReluMaxPool2d(x, slope, 2)),
    composed: run((x) => ag.maxPool2d(ag.leakyRelu(x, slope), 2)),
  };
}

describe('leakyReluMaxPool2d (fused leaky ReLU + max pooling)', function () {
  this.timeout(60000);
  after(async () => { await useBackend('ts'); await shutdownBackends(); });
  for (const [backend, threads] of [['ts', null], ['wasm', 1], ['wasm', 2]] as const) {
    for (const shape of [[2, 3, 8, 8], [3, 2, 7, 9], [64, 16, 16, 16]] as [number, number, number, number][]) {
      it(`is bit for bit the composition on ${backend}${threads ? ` (${threads} thread${threads > 1 ? 's' : ''})` : ''}: [${shape.join(', ')}]`, async () => {
        await useBackend(backend, threads);
        expect(kernelProvider('leakyMaxPool2d', 'float32')).to.equal(backend);
        for (const slope of [0.01, 0.3]) {
          const { fused, composed } = both(shape, slope);
          expect(fused[0], 'output').to.deep.equal(composed[0]);
          expect(fused[1], 'input gradient').to.deep.equal(composed[1]);
        }
      });
    }
  }
});

describe('batchNormLeakyReluMaxPool2d (fused eval BatchNorm + leaky ReLU + max pooling, inference)', function () {
  this.timeout(60000);
  after(async () => { await useBackend('ts'); await shutdownBackends(); });
  for (const [backend, threads] of [['ts', null], ['wasm', 1], ['wasm', 2]] as const) {
    for (const shape of [[2, 3, 8, 8], [3, 2, 7, 9], [2, 4, 2, 2], [64, 16, 16, 16]] as [number, number, number, number][]) {
      it(`is bit for bit the composition on ${backend}${threads ? ` (${threads} thread${threads > 1 ? 's' : ''})` : ''}: [${shape.join(', ')}]`, async () => {
        await useBackend(backend, threads);
        const c = shape[1], size = shape.reduce((a, b) => a * b, 1);
        const runningMean = zeros([c]), runningVar = ones([c]);
        runningMean.storage.set(rand(c, 53)); runningVar.storage.set(rand(c, 54).map((v) => 0.2 + Math.abs(v)));
        const state = { runningMean, runningVar, momentum: 0.1, eps: 1e-4 };
        const x = tensorFromArray(rand(size, 55).map((v) => Math.round(v * 8) / 8), shape);
        const fused = ag.noGrad(() => ag.batchNormLeakyReluMaxPool2d(x, state, 0.01, 2));
        const composed = ag.noGrad(() => ag.maxPool2d(ag.leakyRelu(ag.batchNorm(x, { ...state, training: false }), 0.01), 2));
        expect(bits(fused.values())).to.deep.equal(bits(composed.values()));
      });
    }
  }
});
