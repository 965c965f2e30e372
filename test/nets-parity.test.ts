import { expect } from 'chai';
import { fixture, expectClose } from './helpers.ts';
import * as ag from '../src/autograd/index.ts';
import type { Module } from '../src/nn/index.ts';
import { buildAutoencoder, buildEncoder, type NetName } from '../src/svdd/networks.ts';
import type { DType } from '../src/tensor/kernels/types.ts';
import type { Tensor } from '../src/tensor/tensor.ts';

/** Loads `param.*` from the fixture into the network by PyTorch name (strict: every name must match). */
function loadParams(net: Module, fx: ReturnType<typeof fixture>, dtype: DType): void {
  const values = new Map<string, { shape: readonly number[]; data: ArrayLike<number> }>();
  for (const name of fx.names()) if (name.startsWith('param.')) { const t = fx.get(name, dtype); values.set(name.slice(6), { shape: t.shape, data: t.values() }); }
  for (const [name, t] of net.namedBuffers()) values.set(name, { shape: t.shape, data: t.values() });
  net.loadStateDict(values);
}

function checkNet(file: string, net: NetName, kind: 'svdd' | 'ae', dtype: DType, tol: number): void {
  it(`${file}: train output, loss, every gradient, running stats, eval output (${dtype}, ${tol})`, () => {
    const fx = fixture(`nets/${file}`);
    const model = kind === 'svdd' ? buildEncoder(net, { dtype }) : buildAutoencoder(net, { dtype });
    loadParams(model, fx, dtype);
    model.train();
    const x = fx.get('input', dtype);
    const out = model.forward(x);
    expectClose(out, fx.get('output_train', dtype), tol, 'output_train');
    let loss: Tensor;
    if (kind === 'svdd') loss = ag.mean(ag.sum(ag.square(ag.sub(out, fx.get('center', dtype))), 1));
    else loss = ag.mean(ag.sum(ag.reshape(ag.square(ag.sub(out, x)), [x.shape[0]!, -1]), 1));
    expectClose([loss.item()], [fx.get('loss').item()], tol, 'loss');
    ag.backward(loss);
    const params = new Map(model.namedParameters());
    let checked = 0;
    for (const name of fx.names()) {
      if (!name.startsWith('grad.')) continue;
      const p = params.get(name.slice(5));
      expect(p, name).to.not.equal(undefined);
      expectClose(p!.grad!, fx.get(name, dtype), tol, name);
      checked++;
    }
    expect(checked).to.equal(params.size);
    const buffers = new Map(model.namedBuffers());
    for (const name of fx.names()) {
      if (!name.startsWith('buffer_after_train.')) continue;
      expectClose(buffers.get(name.slice('buffer_after_train.'.length))!, fx.get(name, dtype), tol, name);
    }
    model.eval();
    const outEval = ag.noGrad(() => model.forward(x));
    expectClose(outEval, fx.get('output_eval', dtype), tol, 'output_eval');
  });
}

describe('whole networks against PyTorch', () => {
  checkNet('mnist_lenet', 'mnist_LeNet', 'svdd', 'float64', 1e-9);
  checkNet('mnist_lenet_ae', 'mnist_LeNet', 'ae', 'float64', 1e-9);
  // Stored in float32 (computed in float64 by PyTorch): we compute in float64 from the rounded
  // inputs, and once in float32, the dtype training uses.
  checkNet('cifar10_lenet', 'cifar10_LeNet', 'svdd', 'float64', 1e-4);
  checkNet('cifar10_lenet_ae', 'cifar10_LeNet', 'ae', 'float64', 1e-4);
  checkNet('cifar10_lenet', 'cifar10_LeNet', 'svdd', 'float32', 1e-4);
  checkNet('cifar10_lenet_ae', 'cifar10_LeNet', 'ae', 'float32', 1e-4);
});
