import { expect } from 'chai';
import { tsKernels } from '../src/tensor/kernels/ts/index.ts';
import type { Backend, ConvGeom, KernelSet } from '../src/tensor/kernels/types.ts';
import { createWasmBackend, disposeWasmBackend, wasmFeatures, wasmMemoryBytes } from '../src/tensor/kernels/wasm/index.ts';
import { shutdownBackends, useBackend } from '../src/tensor/backends.ts';
import { setBackend } from '../src/tensor/kernels/registry.ts';
import { describeNetParity } from './net-parity.ts';
import { convGeom as geom, expectKernelClose, randomFloats as rand } from './helpers.ts';

const expectClose = (got: Float32Array, want: Float32Array, k: number, what: string): void => expectKernelClose(got, want, k, what, 1);




const gemmSizes: [number, number, number][] = [
  [1, 1, 1], [1, 7, 3], [3, 1, 13], [7, 13, 65], [13, 65, 7], [4, 8, 16], [5, 9, 257], [65, 33, 300], [128, 96, 300],
];

const convGeoms: [string, ConvGeom][] = [
  ['5x5 pad 2, cin 1 (MNIST conv1)', geom(3, 1, 28, 28, 8, 5, 5, 1, 2)],
  ['5x5 pad 2, cout 1', geom(2, 8, 14, 14, 1, 5, 5, 1, 2)],
  ['5x5 pad 3 (MNIST deconv2 shape)', geom(2, 4, 7, 9, 8, 5, 5, 1, 3)],
  ['3x3 stride 2 pad 1', geom(3, 3, 9, 7, 5, 3, 3, 2, 1)],
  ['3x3 stride 1 pad 1, odd channels', geom(2, 3, 5, 6, 7, 3, 3, 1, 1)],
  ['1x1 no pad', geom(2, 13, 4, 4, 3, 1, 1, 1, 0)],
  ['non-square 3x2 kernel, stride 2, pad 0', geom(2, 2, 8, 7, 3, 3, 2, 2, 0)],
  ['large enough to run on every thread', geom(8, 8, 16, 16, 16, 5, 5, 1, 2)],
];

for (const threads of [1, 2]) {
  describe(`wasm backend (threads ${threads})`, function () {
    this.timeout(60000);
    let backend: Backend;
    let ks: Partial<KernelSet>;

    before(async () => {
      backend = await createWasmBackend({ threads });
      ks = backend.kernels.float32!;
    });
    after(async () => { await disposeWasmBackend(); });

    it('reports its features and leaves float64 to the reference', () => {
      const f = wasmFeatures();
      expect(f.simd).to.equal(true);
      expect(typeof f.relaxedSimd).to.equal('boolean');
      expect(backend.name).to.equal('wasm');
      expect(backend.kernels.float64).to.equal(undefined);
    });

    it('gemm matches the reference for every transpose and accumulate combination', () => {
      let seed = 1;
      for (const [m, n, k] of gemmSizes) {
        for (const transA of [false, true]) for (const transB of [false, true]) for (const accumulate of [false, true]) {
          const a = rand(m * k, seed++), b = rand(k * n, seed++), c0 = rand(m * n, seed++);
          const want = c0.slice(), got = c0.slice();
          tsKernels.gemm(a, b, want, m, n, k, transA, transB, accumulate);
          ks.gemm!(a, b, got, m, n, k, transA, transB, accumulate);
          expectClose(got, want, k, `gemm m=${m} n=${n} k=${k} tA=${transA} tB=${transB} acc=${accumulate}`);
        }
      }
    });

    it('gemm handles k = 0 and reads only the leading part of longer arrays', () => {
      const c = rand(6, 9);
      ks.gemm!(new Float32Array(0), new Float32Array(0), c, 2, 3, 0, false, false, false);
      expect([...c]).to.deep.equal([0, 0, 0, 0, 0, 0]);
      const a = rand(40, 3), b = rand(40, 4), want = new Float32Array(9), got = new Float32Array(9);
      tsKernels.gemm(a, b, want, 3, 3, 5, false, false, false);
      ks.gemm!(a, b, got, 3, 3, 5, false, false, false);
      expectClose(got, want, 5, 'gemm with oversized operands');
    });

    for (const [label, g] of convGeoms) {
      it(`conv2d, conv2dGradInput and conv2dGradWeight match the reference: ${label}`, () => {
        const K = g.cin * g.kh * g.kw;
        const x = rand(g.n * g.cin * g.h * g.w, 11), w = rand(g.cout * K, 12), gy = rand(g.n * g.cout * g.oh * g.ow, 13);
        const y0 = new Float32Array(gy.length), y1 = new Float32Array(gy.length);
        tsKernels.conv2d(x, w, y0, g); ks.conv2d!(x, w, y1, g);
        expectClose(y1, y0, K, 'conv2d');
        // Poisoned outputs check that the kernels overwrite rather than accumulate.
        const gx0 = new Float32Array(x.length), gx1 = new Float32Array(x.length).fill(7);
        tsKernels.conv2dGradInput(gy, w, gx0, g); ks.conv2dGradInput!(gy, w, gx1, g);
        expectClose(gx1, gx0, g.cout * g.kh * g.kw, 'conv2dGradInput');
        const gw0 = new Float32Array(w.length), gw1 = new Float32Array(w.length).fill(7);
        tsKernels.conv2dGradWeight(x, gy, gw0, g); ks.conv2dGradWeight!(x, gy, gw1, g);
        expectClose(gw1, gw0, g.n * g.oh * g.ow, 'conv2dGradWeight');
      });
    }

    // Arena layouts, gather tables and command lists are cached per shape and replayed: interleave
    // every shape twice, with fresh data, so a replay follows other shapes' use of the arena.
    it('replays cached conv and gemm setups correctly when shapes interleave', () => {
      for (let round = 0; round < 2; round++) {
        for (const [label, g] of convGeoms) {
          const K = g.cin * g.kh * g.kw, seed = 100 * round;
          const x = rand(g.n * g.cin * g.h * g.w, seed + 1), w = rand(g.cout * K, seed + 2), gy = rand(g.n * g.cout * g.oh * g.ow, seed + 3);
          const y0 = new Float32Array(gy.length), y1 = new Float32Array(gy.length).fill(7);
          tsKernels.conv2d(x, w, y0, g); ks.conv2d!(x, w, y1, g);
          expectClose(y1, y0, K, `conv2d replay ${round}: ${label}`);
          const gx0 = new Float32Array(x.length), gx1 = new Float32Array(x.length).fill(7);
          tsKernels.conv2dGradInput(gy, w, gx0, g); ks.conv2dGradInput!(gy, w, gx1, g);
          expectClose(gx1, gx0, g.cout * g.kh * g.kw, `conv2dGradInput replay ${round}: ${label}`);
          const gw0 = new Float32Array(w.length), gw1 = new Float32Array(w.length).fill(7);
          tsKernels.conv2dGradWeight(x, gy, gw0, g); ks.conv2dGradWeight!(x, gy, gw1, g);
          expectClose(gw1, gw0, g.n * g.oh * g.ow, `conv2dGradWeight replay ${round}: ${label}`);
        }
        for (const [m, n, k] of gemmSizes) {
          const a = rand(m * k, round + 5), b = rand(k * n, round + 6), c0 = rand(m * n, round + 7), c1 = c0.slice();
          tsKernels.gemm(a, b, c0, m, n, k, false, true, true); ks.gemm!(a, b, c1, m, n, k, false, true, true);
          expectClose(c1, c0, k, `gemm replay ${round}: ${m}x${n}x${k}`);
        }
      }
    });

    /** Equality up to `rel` relative error; NaN matches NaN (exact when rel = 0). */
    const expectSame = (got: ArrayLike<number>, want: ArrayLike<number>, what: string, rel = 0): void => {
      expect(got.length, what).to.equal(want.length);
      for (let i = 0; i < want.length; i++) {
        const g = got[i]!, w = want[i]!;
        if (Number.isNaN(w) ? !Number.isNaN(g) : !(Math.abs(g - w) <= rel * Math.abs(w))) expect.fail(`${what}: element ${i} is ${g}, reference ${w}`);
      }
    };

    for (const n of [1, 3, 4, 7, 1000, 200 * 8 * 28 + 3]) {
      // The reference multiplies by the slope in float64; wasm in float32 (as PyTorch): 1 ulp apart at most.
      it(`leaky ReLU and its gradient match the reference (n = ${n})`, () => {
        const x = rand(n, 21), gy = rand(n, 22);
        if (n > 3) { x[1] = 0; x[2] = -0; x[3] = NaN; }
        const y0 = new Float32Array(n), y1 = new Float32Array(n).fill(7);
        tsKernels.unary('leakyRelu', x, y0, 0.01); ks.unary!('leakyRelu', x, y1, 0.01);
        expectSame(y1, y0, 'leakyRelu', 2.5e-7);
        const g0 = new Float32Array(n), g1 = new Float32Array(n).fill(7);
        tsKernels.unaryGrad('leakyRelu', x, y0, gy, g0, 0.01); ks.unaryGrad!('leakyRelu', x, y0, gy, g1, 0.01);
        expectSame(g1, g0, 'leakyRelu grad', 2.5e-7);
      });
    }

    for (const n of [1, 3, 5, 8, 1001, 200 * 784 + 3]) {
      // exp in float32 (range reduction + Taylor series) against float64 Math.exp/expm1: a few ulp,
      // plus an absolute 1e-37 for the clamp at e^−87 (sigmoid of x < −87 is below 2e-38 either way).
      it(`sigmoid, ELU and their gradients match the reference (n = ${n})`, () => {
        const x = rand(n, 31).map((v, i) => v * [1, 8, 100, 1e-3][i % 4]!), gy = rand(n, 32);
        if (n > 7) { x[0] = 0; x[1] = -0; x[2] = -90; x[3] = 90; x[4] = -1e-30; x[5] = 1e-30; x[6] = -200; x[7] = NaN; }
        const near = (got: Float32Array, want: Float32Array, what: string): void => {
          for (let i = 0; i < want.length; i++) {
            const g = got[i]!, w = want[i]!;
            if (Number.isNaN(w) ? !Number.isNaN(g) : !(Math.abs(g - w) <= 5e-7 * Math.abs(w) + 1e-37)) {
              expect.fail(`${what}: element ${i} (x = ${x[i]}) is ${g}, reference ${w}`);
            }
          }
        };
        for (const [name, p] of [['sigmoid', 0], ['elu', 1], ['elu', 0.5]] as const) {
          const y0 = new Float32Array(n), y1 = new Float32Array(n).fill(7);
          tsKernels.unary(name, x, y0, p); ks.unary!(name, x, y1, p);
          near(y1, y0, `${name}(α = ${p})`);
          const g0 = new Float32Array(n), g1 = new Float32Array(n).fill(7);
          tsKernels.unaryGrad(name, x, y0, gy, g0, p); ks.unaryGrad!(name, x, y0, gy, g1, p);
          near(g1, g0, `${name}(α = ${p}) grad`);
        }
      });
    }

    for (const [outer, c, inner] of [[3, 2, 4], [5, 3, 7], [200, 8, 784], [7, 4, 49], [2, 3, 1]] as const) {
      it(`BatchNorm moments, normalisation and gradient match the reference: [${outer}, ${c}, ${inner}]`, () => {
        const n = outer * c * inner;
        const x = rand(n, 31).map((v) => 3 * v + 1), gy = rand(n, 32);
        const m0 = new Float32Array(c), v0 = new Float32Array(c), m1 = new Float32Array(c), v1 = new Float32Array(c);
        tsKernels.channelMoments(x, m0, v0, outer, c, inner); ks.channelMoments!(x, m1, v1, outer, c, inner);
        expectClose(m1, m0, 16, 'mean'); expectClose(v1, v0, 16, 'variance');
        const invStd = v0.map((v) => 1 / Math.sqrt(v + 1e-4));
        const y0 = new Float32Array(n), y1 = new Float32Array(n).fill(7);
        tsKernels.channelNormalize(x, m0, invStd, y0, outer, c, inner); ks.channelNormalize!(x, m0, invStd, y1, outer, c, inner);
        expectClose(y1, y0, 1, 'normalize');
        const g0 = new Float32Array(n), g1 = new Float32Array(n).fill(7);
        tsKernels.batchNormGrad(gy, y0, invStd, g0, outer, c, inner); ks.batchNormGrad!(gy, y0, invStd, g1, outer, c, inner);
        // Gradients are differences of O(1) terms: compare relative to the largest.
        const scale = g0.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
        for (let i = 0; i < n; i++) if (Math.abs(g1[i]! - g0[i]!) > 1e-5 * scale) expect.fail(`batchNormGrad element ${i}: ${g1[i]} vs ${g0[i]}`);
      });
    }

    for (const [n, c, h, w] of [[2, 3, 28, 28], [3, 2, 14, 14], [1, 2, 7, 9], [2, 1, 5, 3], [200, 8, 28, 28]] as const) {
      it(`2x2 max pooling, its gradient, x2 upsampling and its gradient match the reference: [${n}, ${c}, ${h}, ${w}]`, () => {
        const size = n * c * h * w, oh = h >> 1, ow = w >> 1;
        // Ties (rounded values) and a NaN exercise the first-maximum rule.
        const x = rand(size, 41).map((v) => Math.round(v * 4) / 4);
        x[5] = NaN;
        const y0 = new Float32Array(n * c * oh * ow), y1 = y0.slice().fill(7);
        const a0 = new Int32Array(y0.length), a1 = new Int32Array(y0.length);
        tsKernels.maxPool2d(x, y0, a0, n, c, h, w, 2); ks.maxPool2d!(x, y1, a1, n, c, h, w, 2);
        expectSame(y1, y0, 'maxPool2d'); expectSame(a1, a0, 'argmax');
        const gy = rand(y0.length, 42);
        const g0 = new Float32Array(size), g1 = new Float32Array(size);
        tsKernels.maxPool2dGrad(gy, a0, g0); ks.maxPool2dGrad!(gy, a0, g1);
        expectSame(g1, g0, 'maxPool2dGrad');
        const u0 = new Float32Array(size * 4), u1 = u0.slice().fill(7);
        tsKernels.upsampleNearest(x, u0, n * c, h, w, 2); ks.upsampleNearest!(x, u1, n * c, h, w, 2);
        expectSame(u1, u0, 'upsampleNearest');
        const gu = rand(size * 4, 43), gx0 = new Float32Array(size), gx1 = new Float32Array(size).fill(7);
        tsKernels.upsampleNearestGrad(gu, gx0, n * c, h, w, 2); ks.upsampleNearestGrad!(gu, gx1, n * c, h, w, 2);
        expectClose(gx1, gx0, 4, 'upsampleNearestGrad');
      });
    }

    // The fused kernels must give bit for bit what this backend's own kernels give in turn (the
    // networks' results may not change when the autograd op fuses them).
    for (const [n, c, h, w] of [[2, 3, 28, 28], [3, 2, 14, 14], [1, 2, 7, 9], [2, 1, 6, 10], [200, 8, 16, 16]] as const) {
      it(`leaky ReLU + 2x2 max pooling fused, and its gradient, are bit for bit the kernels in turn: [${n}, ${c}, ${h}, ${w}]`, () => {
        const size = n * c * h * w, no = n * c * (h >> 1) * (w >> 1);
        const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);
        // Ties, signed zeros, NaNs and a subnormal exercise the first-maximum rule and the sign of each product.
        const x = rand(size, 44).map((v) => Math.round(v * 4) / 4);
        x[5] = NaN; x[6] = -0; x[9] = -1e-40;
        const gy = rand(no, 45);
        gy[1] = -0; gy[3] = NaN;
        for (const slope of [0.01, -0.5]) {
          const act = new Float32Array(size), y0 = new Float32Array(no), a0 = new Int32Array(no), g = new Float32Array(size), gx0 = new Float32Array(size);
          ks.unary!('leakyRelu', x, act, slope); ks.maxPool2d!(act, y0, a0, n, c, h, w, 2);
          ks.maxPool2dGrad!(gy, a0, g); ks.unaryGrad!('leakyRelu', x, act, g, gx0, slope);
          const y1 = new Float32Array(no).fill(7), a1 = new Int32Array(no), gx1 = new Float32Array(size).fill(7);
          ks.leakyMaxPool2d!(x, y1, a1, n, c, h, w, 2, slope);
          ks.leakyMaxPool2dGrad!(gy, a1, x, gx1, n, c, h, w, 2, slope);
          expectSame(bits(y1), bits(y0), 'leakyMaxPool2d'); expectSame(a1, a0, 'argmax'); expectSame(bits(gx1), bits(gx0), 'leakyMaxPool2dGrad');
          // With eval-mode BatchNorm's normalisation in front (channelNormalize, then the above).
          const mean = rand(c, 46), invStd = rand(c, 47).map((v) => 0.5 + Math.abs(v));
          const xhat = new Float32Array(size), y2 = new Float32Array(no), a2 = new Int32Array(no);
          ks.channelNormalize!(x, mean, invStd, xhat, n, c, h * w); ks.leakyMaxPool2d!(xhat, y2, a2, n, c, h, w, 2, slope);
          const y3 = new Float32Array(no).fill(7), a3 = new Int32Array(no);
          ks.normLeakyMaxPool2d!(x, mean, invStd, y3, a3, n, c, h, w, 2, slope);
          expectSame(bits(y3), bits(y2), 'normLeakyMaxPool2d'); expectSame(a3, a2, 'argmax after normalisation');
        }
      });
    }

    it('does not grow wasm memory when the same shapes repeat', () => {
      const g = geom(6, 4, 12, 12, 8, 5, 5, 1, 2);
      const x = rand(g.n * g.cin * g.h * g.w, 5), w = rand(g.cout * g.cin * 25, 6), gy = rand(g.n * g.cout * g.oh * g.ow, 7);
      const run = (): void => {
        ks.conv2d!(x, w, new Float32Array(gy.length), g);
        ks.conv2dGradInput!(gy, w, new Float32Array(x.length), g);
        ks.conv2dGradWeight!(x, gy, new Float32Array(w.length), g);
        ks.gemm!(x, w, new Float32Array(64 * 8), 64, 8, 100, false, true, false);
      };
      run();
      const before = wasmMemoryBytes();
      for (let i = 0; i < 3; i++) run();
      expect(wasmMemoryBytes()).to.equal(before);
    });
  });
}

for (const threads of [1, 2]) {
  describeNetParity(`whole networks on the wasm backend against PyTorch (float32, threads ${threads})`,
    async () => { await useBackend('wasm', threads); },
    async () => { await setBackend('ts'); await shutdownBackends(); });
}
