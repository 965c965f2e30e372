import { expect } from 'chai';
import * as ag from '../src/autograd/index.ts';
import { Rng, randNormal } from '../src/tensor/creation.ts';
import { allocArray, type Tensor } from '../src/tensor/tensor.ts';
import { setBackend } from '../src/tensor/kernels/registry.ts';

/** Sizes above the pool's minimum (2^14 elements), so released arrays really are recycled. */
const N = 64, F = 512;

describe('releaseGraph', () => {
  // The engine's bookkeeping is backend-independent; earlier test files may leave a stopped backend active.
  before(async () => { await setBackend('ts'); });
  it('returns intermediate buffers to the pool and never leaves, views of leaves, grads or kept tensors', () => {
    const rng = new Rng('release');
    const x = randNormal([N, F], 0, 1, rng);                      // input batch (leaf, no grad)
    const w = randNormal([F, F], 0, 0.05, rng).requireGrad();     // parameter
    const b = randNormal([F], 0, 0.1, rng).requireGrad();         // parameter, used through a view
    const bView = ag.reshape(b, [1, F]);                          // non-leaf sharing b's storage
    const h = ag.add(ag.matmul(x, w), bView);                     // intermediate [N, F]
    const a = ag.sigmoid(h);                                      // intermediate [N, F]
    const kept = ag.square(a);                                    // intermediate the caller keeps
    const loss = ag.mean(kept);
    ag.backward(loss);
    const snapshot = (t: Tensor): Float32Array => Float32Array.from(t.storage);
    const [x0, w0, b0, g0, kept0] = [x, w, b, w.grad!, kept].map(snapshot);
    const hStore = h.storage, aStore = a.storage;

    ag.releaseGraph(loss, [kept]);

    // The released intermediates come back from the pool; nothing protected does.
    const got = new Set(Array.from({ length: 8 }, () => allocArray('float32', N * F)));
    expect(got.has(hStore as Float32Array) && got.has(aStore as Float32Array), 'h and sigmoid(h) recycled').to.equal(true);
    for (const t of [x, kept]) expect(got.has(t.storage as Float32Array)).to.equal(false);
    for (const buf of got) buf.fill(123);
    expect(snapshot(x)).to.deep.equal(x0);
    expect(snapshot(w)).to.deep.equal(w0);
    expect(snapshot(b)).to.deep.equal(b0);
    expect(snapshot(w.grad!)).to.deep.equal(g0);
    expect(snapshot(kept)).to.deep.equal(kept0);
    // The graph is cut: it cannot be run backward again.
    expect(() => ag.backward(loss)).to.throw(/does not require grad/);
  });

  it('is a no-op on a tensor without a graph', () => {
    const t = randNormal([N, F], 0, 1, new Rng(1));
    const before = t.storage;
    ag.releaseGraph(t);
    expect(allocArray('float32', N * F)).to.not.equal(before);
  });
});
