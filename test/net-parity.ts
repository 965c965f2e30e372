/**
 * The whole-network parity test shared by every backend: the four networks, loaded with the
 * PyTorch fixture's weights (test/fixtures/nets), must reproduce PyTorch's train-mode output,
 * loss, every parameter gradient, the running statistics after the step and the eval output,
 * float32, within `tol` relative (1e-4; a backend whose float32 sums run in a plain sequential
 * order may need more, since the CIFAR autoencoder's batch-2 BatchNorm magnifies rounding about
 * 100×). `setup` activates the backend under test.
 */
import { expect } from 'chai';
import * as ag from '../src/autograd/index.ts';
import type { Module } from '../src/nn/index.ts';
import { buildAutoencoder, buildEncoder, type NetName } from '../src/svdd/networks.ts';
import type { Tensor } from '../src/tensor/tensor.ts';
import { expectClose as expectRelClose, fixture } from './helpers.ts';

/** Loads `param.*` from a fixture into the network by PyTorch name (as test/nets-parity.test.ts). */
function loadParams(net: Module, fx: ReturnType<typeof fixture>): void {
  const values = new Map<string, { shape: readonly number[]; data: ArrayLike<number> }>();
  for (const name of fx.names()) if (name.startsWith('param.')) { const t = fx.get(name, 'float32'); values.set(name.slice(6), { shape: t.shape, data: t.values() }); }
  for (const [name, t] of net.namedBuffers()) values.set(name, { shape: t.shape, data: t.values() });
  net.loadStateDict(values);
}

const nets: [string, NetName, 'svdd' | 'ae'][] = [
  ['mnist_lenet', 'mnist_LeNet', 'svdd'], ['mnist_lenet_ae', 'mnist_LeNet', 'ae'],
  ['cifar10_lenet', 'cifar10_LeNet', 'svdd'], ['cifar10_lenet_ae', 'cifar10_LeNet', 'ae'],
];

export function describeNetParity(title: string, setup: () => Promise<void>, teardown: () => Promise<void>, tol = 1e-4): void {
  describe(title, function () {
    this.timeout(120000);
    before(setup);
    after(teardown);
    for (const [file, net, kind] of nets) {
      it(`${file}: train output, loss, every gradient, running stats, eval output`, () => {
        const fx = fixture(`nets/${file}`);
        const model = kind === 'svdd' ? buildEncoder(net, { dtype: 'float32' }) : buildAutoencoder(net, { dtype: 'float32' });
        loadParams(model, fx);
        model.train();
        const x = fx.get('input', 'float32');
        const out = model.forward(x);
        expectRelClose(out, fx.get('output_train', 'float32'), tol, 'output_train');
        const loss: Tensor = kind === 'svdd'
          ? ag.mean(ag.sum(ag.square(ag.sub(out, fx.get('center', 'float32'))), 1))
          : ag.mean(ag.sum(ag.reshape(ag.square(ag.sub(out, x)), [x.shape[0]!, -1]), 1));
        expectRelClose([loss.item()], [fx.get('loss').item()], tol, 'loss');
        ag.backward(loss);
        const params = new Map(model.namedParameters());
        let checked = 0;
        for (const name of fx.names()) {
          if (!name.startsWith('grad.')) continue;
          expectRelClose(params.get(name.slice(5))!.grad!, fx.get(name, 'float32'), tol, name);
          checked++;
        }
        expect(checked).to.equal(params.size);
        const buffers = new Map(model.namedBuffers());
        for (const name of fx.names()) {
          if (!name.startsWith('buffer_after_train.')) continue;
          expectRelClose(buffers.get(name.slice('buffer_after_train.'.length))!, fx.get(name, 'float32'), tol, name);
        }
        model.eval();
        expectRelClose(ag.noGrad(() => model.forward(x)), fx.get('output_eval', 'float32'), tol, 'output_eval');
      });
    }
  });
}
