/**
 * Tensor storage in wasm memory: with the wasm backend active, large float32 tensors are carved
 * out of its shared memory and kernels use them in place. These tests pin what that must not
 * change: results (in place, staged, or mixed), the engine's buffer bookkeeping (every heap block
 * shares one SharedArrayBuffer), and bounded memory across training steps.
 */
import { expect } from 'chai';
import * as ag from '../src/autograd/index.ts';
import { Adam } from '../src/nn/index.ts';
import { buildEncoder } from '../src/svdd/networks.ts';
import { shutdownBackends, useBackend } from '../src/tensor/backends.ts';
import { Rng, randNormal, randUniform, scalar } from '../src/tensor/creation.ts';
import { kernels } from '../src/tensor/kernels/registry.ts';
import { tsKernels } from '../src/tensor/kernels/ts/index.ts';
import { wasmFeatures, wasmHeapBytes, wasmMemoryBytes } from '../src/tensor/kernels/wasm/index.ts';
import { allocArray, isWholeStorage, releaseArray, storageKey, tensorFromArray, withTemporaryStorage } from '../src/tensor/tensor.ts';
import { convGeom, expectKernelClose, randomFloats } from './helpers.ts';

const canShare = wasmFeatures().threads;

for (const threads of [1, 2]) {
  describe(`tensor storage in wasm memory (threads ${threads})`, function () {
    this.timeout(60000);
    before(async function () {
      if (!canShare) this.skip();
      await useBackend('wasm', threads);
    });
    after(async () => { await useBackend('ts'); await shutdownBackends(); });

    /** A heap array (allocated while wasm is active) holding `src`. */
    const heap = (src: Float32Array): Float32Array => {
      const a = allocArray('float32', src.length) as Float32Array;
      a.set(src);
      return a;
    };

    it('places large float32 arrays in wasm memory, each its own storage, and small ones outside', () => {
      const a = allocArray('float32', 1 << 16), b = allocArray('float32', 1 << 16), small = allocArray('float32', 100);
      expect(a.buffer).to.be.instanceOf(SharedArrayBuffer);
      expect(small.buffer).to.be.instanceOf(ArrayBuffer);
      expect(b.buffer).to.equal(a.buffer); // one memory, so the engine must not key storage by buffer
      expect(storageKey(a)).to.not.equal(storageKey(b));
      expect(isWholeStorage(a)).to.equal(true);
      expect(isWholeStorage(a.subarray(1))).to.equal(false);
      expect(Array.from(a.subarray(0, 8))).to.deep.equal(new Array(8).fill(0));
      releaseArray(a); releaseArray(b);
    });

    it('recycles released heap arrays as zeroed storage', () => {
      const a = allocArray('float32', 50000);
      a.fill(3);
      releaseArray(a);
      const b = allocArray('float32', 50000);
      expect(b).to.equal(a);
      expect(b.every((v) => v === 0)).to.equal(true);
    });

    it('keeps every released heap block for reuse, beyond the bound on pooled ordinary arrays', () => {
      // 20 × 16 MiB exceeds the 256 MiB pool bound; dropped blocks would only return after a GC.
      const len = 1 << 22;
      const first = Array.from({ length: 20 }, () => allocArray('float32', len));
      const heapBefore = wasmHeapBytes();
      first.forEach(releaseArray);
      const second = Array.from({ length: 20 }, () => allocArray('float32', len));
      expect(wasmHeapBytes()).to.equal(heapBefore);
      const firstSet = new Set(first);
      expect(second.every((a) => firstSet.has(a))).to.equal(true); // the same blocks (compared by identity)
      second.forEach(releaseArray);
    });

    // The memory-bound kernels, with their operands in place, staged, and mixed.
    const n = 6, c = 8, h = 28, w = 28, size = n * c * h * w;
    for (const where of ['heap', 'plain', 'mixed'] as const) {
      it(`pointwise and BatchNorm kernels match the reference with operands ${where === 'mixed' ? 'partly in' : where === 'heap' ? 'in' : 'outside'} wasm memory`, () => {
        const ks = kernels('float32');
        const inp = (src: Float32Array): Float32Array => (where === 'plain' ? src : heap(src));
        const out = (len: number): Float32Array => (where === 'heap' ? heap(new Float32Array(len)) : new Float32Array(len));
        const x = inp(randomFloats(size, 1)), gy = inp(randomFloats(size, 2));

        const y0 = new Float32Array(size), y1 = out(size);
        tsKernels.unary('leakyRelu', x, y0, 0.1); ks.unary('leakyRelu', x, y1, 0.1);
        expectKernelClose(y1, y0, 1, 'leakyRelu', 1);
        tsKernels.unaryGrad('leakyRelu', x, y0, gy, y0, 0.1); ks.unaryGrad('leakyRelu', x, y1, gy, y1, 0.1);
        expectKernelClose(y1, y0, 1, 'leakyRelu grad', 1);
        for (const [fn, len] of [['sigmoid', size], ['elu', size - 3]] as const) {
          const a0 = new Float32Array(len), a1 = out(len);
          tsKernels.unary(fn, x.subarray(0, len), a0, 1); ks.unary(fn, x.subarray(0, len), a1, 1);
          expectKernelClose(a1, a0, 4, fn, 1);
        }

        const mu0 = new Float32Array(c), v0 = new Float32Array(c), mu1 = new Float32Array(c), v1 = new Float32Array(c);
        tsKernels.channelMoments(x, mu0, v0, n, c, h * w); ks.channelMoments(x, mu1, v1, n, c, h * w);
        expectKernelClose(mu1, mu0, 4, 'mean', 1); expectKernelClose(v1, v0, 4, 'variance', 1);
        const inv = Float32Array.from(v0, (v) => 1 / Math.sqrt(v + 1e-5));
        tsKernels.channelNormalize(x, mu0, inv, y0, n, c, h * w); ks.channelNormalize(x, mu0, inv, y1, n, c, h * w);
        expectKernelClose(y1, y0, 4, 'normalize', 1);
        const g0 = new Float32Array(size), g1 = out(size);
        tsKernels.batchNormGrad(gy, y0, inv, g0, n, c, h * w); ks.batchNormGrad(gy, y0, inv, g1, n, c, h * w);
        expectKernelClose(g1, g0, 16, 'batchNorm grad', 1);

        const p0 = new Float32Array(size / 4), p1 = out(size / 4), am0 = new Int32Array(size / 4), am1 = new Int32Array(size / 4);
        tsKernels.maxPool2d(x, p0, am0, n, c, h, w, 2); ks.maxPool2d(x, p1, am1, n, c, h, w, 2);
        expect(Array.from(am1)).to.deep.equal(Array.from(am0));
        expectKernelClose(p1, p0, 1, 'maxPool', 1);
        const gp = inp(randomFloats(size / 4, 3)), gx0 = new Float32Array(size), gx1 = out(size);
        tsKernels.maxPool2dGrad(gp, am0, gx0); ks.maxPool2dGrad(gp, am1, gx1);
        expectKernelClose(gx1, gx0, 1, 'maxPool grad', 1);
        const u0 = new Float32Array(size * 4), u1 = out(size * 4);
        tsKernels.upsampleNearest(x, u0, n * c, h, w, 2); ks.upsampleNearest(x, u1, n * c, h, w, 2);
        expectKernelClose(u1, u0, 1, 'upsample', 1);
      });
    }

    for (const where of ['heap', 'mixed'] as const) {
      it(`convolutions (packed, direct, Winograd) and GEMM match the reference with operands ${where === 'heap' ? 'in' : 'partly in'} wasm memory`, () => {
        const ks = kernels('float32');
        const inp = (src: Float32Array): Float32Array => heap(src);
        const out = (len: number): Float32Array => (where === 'heap' ? heap(new Float32Array(len)) : new Float32Array(len));
        for (const g of [convGeom(4, 1, 28, 28, 8, 5, 5, 1, 2), convGeom(3, 32, 9, 11, 24, 5, 5, 1, 2), convGeom(2, 3, 9, 7, 40, 3, 3, 2, 1)]) {
          const x = inp(randomFloats(g.n * g.cin * g.h * g.w, 11)), w = inp(randomFloats(g.cout * g.cin * g.kh * g.kw, 12));
          const gy = inp(randomFloats(g.n * g.cout * g.oh * g.ow, 13));
          const k = g.cin * g.kh * g.kw;
          const y0 = new Float32Array(gy.length), y1 = out(gy.length);
          tsKernels.conv2d(x, w, y0, g); ks.conv2d(x, w, y1, g);
          expectKernelClose(y1, y0, k, `conv2d ${g.cin}→${g.cout}`, 4);
          const gx0 = new Float32Array(x.length), gx1 = out(x.length);
          tsKernels.conv2dGradInput(gy, w, gx0, g); ks.conv2dGradInput(gy, w, gx1, g);
          expectKernelClose(gx1, gx0, g.cout * g.kh * g.kw, `conv2dGradInput ${g.cin}→${g.cout}`, 4);
          const gw0 = new Float32Array(w.length), gw1 = out(w.length);
          tsKernels.conv2dGradWeight(x, gy, gw0, g); ks.conv2dGradWeight(x, gy, gw1, g);
          expectKernelClose(gw1, gw0, g.n * g.oh * g.ow, `conv2dGradWeight ${g.cin}→${g.cout}`, 16);
        }
        const a = inp(randomFloats(300 * 70, 14)), b = inp(randomFloats(70 * 90, 15));
        const c0 = randomFloats(300 * 90, 16), c1 = out(c0.length);
        c1.set(c0);
        tsKernels.gemm(a, b, c0, 300, 90, 70, false, false, true); ks.gemm(a, b, c1, 300, 90, 70, false, false, true);
        expectKernelClose(c1, c0, 70, 'gemm accumulate', 1);
      });
    }

    it('releaseGraph recycles every intermediate heap array, each once, and never a leaf', () => {
      const len = 1 << 15;
      const x = tensorFromArray(heap(randomFloats(len, 9)), [len]).requireGrad();
      const y = ag.mul(x, scalar(2)), z = ag.add(y, scalar(1));
      const loss = ag.sum(z);
      ag.backward(loss);
      const intermediates = new Set([y.storage, z.storage]);
      ag.releaseGraph(loss, [x]);
      const again = new Set([allocArray('float32', len), allocArray('float32', len)]);
      expect(again.size).to.equal(2);
      expect([...again].every((a) => intermediates.has(a))).to.equal(true);
      expect(again.has(x.storage)).to.equal(false);
    });

    it('withTemporaryStorage recycles an inference loop\'s activations, so the heap stops growing', () => {
      const net = buildEncoder('mnist_LeNet', { seed: 4 });
      net.eval();
      const x = randUniform([100, 1, 28, 28], 0, 1, new Rng('scoped'));
      const heapAfter: number[] = [];
      const codes: number[] = [];
      ag.noGrad(() => {
        for (let b = 0; b < 6; b++) {
          withTemporaryStorage(() => { codes.push(net.forward(x).values()[0]!); });
          heapAfter.push(wasmHeapBytes());
        }
      });
      expect(heapAfter[5]).to.equal(heapAfter[1]);
      expect(new Set(codes).size).to.equal(1);
    });

    it('a training loop reuses its parameter gradients\' storage: the heap stops growing after the first steps', () => {
      // The CIFAR-10 LeNet's large weights (fc1: 262,144) get gradients in wasm memory every step.
      const net = buildEncoder('cifar10_LeNet', { seed: 5 });
      const opt = new Adam(net.parameters(), { lr: 1e-4 });
      const x = randUniform([4, 3, 32, 32], 0, 1, new Rng('cifar-heap'));
      const centerC = randNormal([net.repDim], 0, 1, new Rng('c'));
      const heapAfter: number[] = [];
      for (let step = 0; step < 6; step++) {
        opt.zeroGrad();
        const l = ag.mean(ag.sum(ag.square(ag.sub(net.forward(x), centerC)), 1));
        ag.backward(l);
        opt.step();
        ag.releaseGraph(l);
        heapAfter.push(wasmHeapBytes());
      }
      expect(heapAfter[5]).to.equal(heapAfter[2]);
    });

    it('trains identically with and without releasing each step\'s graph, without growing memory', () => {
      // Released buffers are recycled for the next step's activations and gradients; a mistake in
      // telling heap blocks apart would make two live tensors share memory and change the numbers.
      const train = (release: boolean): { loss: number[]; memory: number[] } => {
        const net = buildEncoder('mnist_LeNet', { seed: 3 });
        const opt = new Adam(net.parameters(), { lr: 1e-3 });
        const rng = new Rng('heap-train');
        const x = randUniform([64, 1, 28, 28], 0, 1, rng), centerC = randNormal([net.repDim], 0, 1, rng);
        const loss: number[] = [], memory: number[] = [];
        for (let step = 0; step < 6; step++) {
          opt.zeroGrad();
          const l = ag.mean(ag.sum(ag.square(ag.sub(net.forward(x), centerC)), 1));
          ag.backward(l);
          opt.step();
          loss.push(l.item());
          if (release) ag.releaseGraph(l);
          memory.push(wasmMemoryBytes());
        }
        return { loss, memory };
      };
      const kept = train(false), released = train(true);
      expect(released.loss).to.deep.equal(kept.loss);
      expect(released.memory[5]).to.equal(released.memory[2]);
    });
  });
}
