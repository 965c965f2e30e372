import { expect } from 'chai';
import { fixture, expectClose } from './helpers.ts';
import * as ag from '../src/autograd/index.ts';
import { Tensor } from '../src/tensor/tensor.ts';
import { zeros, ones } from '../src/tensor/creation.ts';

/** Forward y and gradients of sum(y · gy) w.r.t. each named input, against PyTorch in float64. */
function checkOp(name: string, inputs: string[], f: (...xs: Tensor[]) => Tensor): void {
  it(`${name}: forward and input gradients match PyTorch (float64, 1e-9)`, () => {
    const fx = fixture(`ops/${name}`);
    const xs = inputs.map((n) => fx.get(n).requireGrad());
    const y = f(...xs);
    expectClose(y, fx.get('y'), 1e-9, `${name} y`);
    const grads = ag.grad(y, xs, fx.get('gy'));
    inputs.forEach((n, i) => expectClose(grads[i]!, fx.get(`g${n}`), 1e-9, `${name} g${n}`));
  });
}

describe('op parity with PyTorch fixtures', () => {
  checkOp('conv2d_k5_p2', ['x', 'w'], (x, w) => ag.conv2d(x!, w!, null, { padding: 2 }));
  checkOp('conv2d_k3_p1_s2_bias', ['x', 'w', 'b'], (x, w, b) => ag.conv2d(x!, w!, b, { padding: 1, stride: 2 }));
  checkOp('conv_transpose2d_k5_p2', ['x', 'w'], (x, w) => ag.convTranspose2d(x!, w!, null, { padding: 2 }));
  checkOp('conv_transpose2d_k5_p3', ['x', 'w'], (x, w) => ag.convTranspose2d(x!, w!, null, { padding: 3 }));
  checkOp('linear_bias', ['x', 'w', 'b'], (x, w, b) => ag.linear(x!, w!, b));
  checkOp('linear_nobias', ['x', 'w'], (x, w) => ag.linear(x!, w!));
  checkOp('leaky_relu_0.01', ['x'], (x) => ag.leakyRelu(x!, 0.01));
  checkOp('elu_1', ['x'], (x) => ag.elu(x!, 1));
  checkOp('sigmoid', ['x'], (x) => ag.sigmoid(x!));
  checkOp('max_pool2d_2x2', ['x'], (x) => ag.maxPool2d(x!, 2));
  checkOp('max_pool2d_2x2_odd', ['x'], (x) => ag.maxPool2d(x!, 2));
  checkOp('upsample_nearest_x2', ['x'], (x) => ag.upsampleNearest(x!, 2));

  for (const name of ['batch_norm2d_train_eval', 'batch_norm1d_train_eval']) {
    it(`${name}: train output, gradient, running stats and eval output match PyTorch`, () => {
      const fx = fixture(`ops/${name}`);
      const x = fx.get('x').requireGrad();
      const c = x.shape[1]!;
      const state = { runningMean: zeros([c], 'float64'), runningVar: ones([c], 'float64'), training: true, momentum: 0.1, eps: 1e-4 };
      const y = ag.batchNorm(x, state);
      expectClose(y, fx.get('y'), 1e-9, 'y');
      expectClose(ag.grad(y, [x], fx.get('gy'))[0]!, fx.get('gx'), 1e-9, 'gx');
      expectClose(state.runningMean, fx.get('running_mean'), 1e-9, 'running_mean');
      expectClose(state.runningVar, fx.get('running_var'), 1e-9, 'running_var');
      const yEval = ag.batchNorm(fx.get('x_eval'), { ...state, training: false });
      expectClose(yEval, fx.get('y_eval'), 1e-9, 'y_eval');
    });
  }

  it('shape errors name the op and both shapes', () => {
    const a = zeros([2, 3]), b = zeros([4, 3]);
    expect(() => ag.add(a, b)).to.throw(/add: shapes \[2, 3\] and \[4, 3\]/);
    expect(() => ag.matmul(a, b)).to.throw(/matmul: shapes \[2, 3\] and \[4, 3\]/);
  });
});
