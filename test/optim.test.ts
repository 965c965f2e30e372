import { expect } from 'chai';
import { fixture, expectClose } from './helpers.ts';
import { Adam, MultiStepLR } from '../src/nn/index.ts';
import { tensorFromArray } from '../src/tensor/tensor.ts';

describe('optimizers against PyTorch', () => {
  for (const [file, amsgrad, wd] of [['adam_wd0.5e-3', false, 0.5e-3], ['amsgrad_wd1e-6', true, 1e-6]] as const) {
    it(`${file}: four steps match torch.optim.Adam (float64, 1e-9)`, () => {
      const fx = fixture(`optim/${file}`);
      const p = fx.get('p0').requireGrad();
      const grads = fx.get('grads').values();
      const opt = new Adam([p], { lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: wd, amsgrad });
      for (let s = 0; s < 4; s++) {
        p.grad = tensorFromArray(Float64Array.from(grads.subarray(s * p.size, (s + 1) * p.size)), p.shape);
        opt.step();
      }
      expectClose(p, fx.get('p4'), 1e-9, 'p4');
    });
  }
  it('MultiStepLR drops the rate by gamma at each milestone', () => {
    const opt = { lr: 1e-4 };
    const sched = new MultiStepLR(opt, [2, 4], 0.1);
    const rates: number[] = [];
    for (let e = 0; e < 5; e++) { rates.push(opt.lr); sched.step(); }
    expect(rates.map((r) => +r.toExponential(6))).to.deep.equal([1e-4, 1e-4, 1e-5, 1e-5, 1e-6]);
  });
});
