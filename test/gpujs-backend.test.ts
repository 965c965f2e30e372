/**
 * Parity of the gpujs backend with the `ts` reference, in gpu.js's `cpu` mode (runs anywhere,
 * no GPU) and its `webasm` mode (also GPU-free). The same kernel sources run on GL and WebGPU:
 * scripts/gpu-parity.sh checks those on software renderers.
 */
import { expect } from 'chai';
import { tsKernels } from '../src/tensor/kernels/ts/index.ts';
import type { ConvGeom, UnaryName } from '../src/tensor/kernels/types.ts';
import type { GpujsBackend } from '../src/tensor/kernels/gpujs/index.ts';
import { createGpujsBackend, detectRealGpu, disposeGpujsBackend } from '../src/tensor/kernels/gpujs/index.ts';
import { kernelProvider, registerBackend, setBackend } from '../src/tensor/kernels/registry.ts';
import { convGeom as geom, expectKernelClose, randomFloats as rand } from './helpers.ts';

const expectClose = (got: Float32Array, want: Float32Array, k: number, what: string): void => expectKernelClose(got, want, k, what, 3);




const dims = [1, 3, 7, 13];
const convGeoms: [string, ConvGeom][] = [
  ['3x3 stride 2 pad 1', geom(3, 3, 9, 7, 5, 3, 3, 2, 1)],
  ['5x5 pad 2, cin 1', geom(2, 1, 12, 11, 4, 5, 5, 1, 2)],
  ['5x5 pad 3, cout 1', geom(2, 4, 7, 9, 1, 5, 5, 1, 3)],
  ['cin 1 cout 1, 3x3 stride 2 pad 1', geom(3, 1, 8, 8, 1, 3, 3, 2, 1)],
  ['non-square 3x2, stride 2, pad 0', geom(2, 2, 8, 7, 3, 3, 2, 2, 0)],
  ['1x1', geom(1, 7, 3, 3, 3, 1, 1, 1, 0)],
];
const unaries: UnaryName[] = ['leakyRelu', 'elu', 'sigmoid', 'relu', 'exp', 'log', 'neg', 'sqrt', 'abs', 'square'];

// maxChunkElements 64 forces every op through several chunks (gemm rows, conv batches, planes).
const configs: { mode: 'cpu' | 'webasm'; maxChunkElements?: number; rowWidth?: number }[] = [
  { mode: 'cpu' },
  { mode: 'cpu', maxChunkElements: 64, rowWidth: 16 },
  { mode: 'webasm' },
];

for (const cfg of configs) {
  describe(`gpujs backend (${cfg.mode}${cfg.maxChunkElements ? `, chunks of ${cfg.maxChunkElements}` : ''})`, function () {
    let be: GpujsBackend;
    before(async function () {
      be = await createGpujsBackend(cfg);
      expect(be.name).to.equal('gpujs');
      expect(be.mode).to.equal(cfg.mode);
    });
    after(async function () { await be.dispose(); });
    const K = () => be.kernels.float32!;

    it('gemm: every transpose/accumulate combination, m,n,k ∈ {1,3,7,13}', function () {
      let seed = 1;
      for (const m of dims) for (const n of dims) for (const k of dims) {
        for (const tA of [false, true]) for (const tB of [false, true]) for (const acc of [false, true]) {
          const a = rand(m * k, seed++), b = rand(k * n, seed++), c0 = rand(m * n, seed++);
          const want = c0.slice(), got = c0.slice();
          tsKernels.gemm(a, b, want, m, n, k, tA, tB, acc);
          K().gemm!(a, b, got, m, n, k, tA, tB, acc);
          expectClose(got, want, k, `gemm m${m} n${n} k${k} tA${tA} tB${tB} acc${acc}`);
        }
      }
    });

    it('gemm: a reduction longer than loopMaxIterations (k = 1500)', function () {
      const m = 3, n = 5, k = 1500;
      const a = rand(m * k, 7), b = rand(k * n, 8);
      const want = new Float32Array(m * n), got = new Float32Array(m * n);
      tsKernels.gemm(a, b, want, m, n, k, false, true, false);
      K().gemm!(a, b, got, m, n, k, false, true, false);
      expectClose(got, want, k, 'gemm k1500');
    });

    for (const [label, g] of convGeoms) {
      it(`conv2d / grad input / grad weight: ${label}`, function () {
        const x = rand(g.n * g.cin * g.h * g.w, 11), w = rand(g.cout * g.cin * g.kh * g.kw, 12);
        const gy = rand(g.n * g.cout * g.oh * g.ow, 13);
        const K2 = g.cin * g.kh * g.kw;
        const y0 = new Float32Array(gy.length), y1 = new Float32Array(gy.length);
        tsKernels.conv2d(x, w, y0, g); K().conv2d!(x, w, y1, g);
        expectClose(y1, y0, K2, `conv2d ${label}`);
        const gx0 = new Float32Array(x.length), gx1 = rand(x.length, 99);
        tsKernels.conv2dGradInput(gy, w, gx0, g); K().conv2dGradInput!(gy, w, gx1, g);
        expectClose(gx1, gx0, g.cout * g.kh * g.kw, `conv2dGradInput ${label}`);
        const gw0 = new Float32Array(w.length), gw1 = rand(w.length, 98);
        tsKernels.conv2dGradWeight(x, gy, gw0, g); K().conv2dGradWeight!(x, gy, gw1, g);
        expectClose(gw1, gw0, g.n * g.oh * g.ow, `conv2dGradWeight ${label}`);
      });
    }

    it('unary and unaryGrad, every function, odd length', function () {
      const n = 1 + 13 * 7 * 3;
      for (const name of unaries) {
        const x = rand(n, 21);
        // Away from 0 for log/sqrt; include tiny values for elu's expm1 branch.
        if (name === 'log' || name === 'sqrt') for (let i = 0; i < n; i++) x[i] = Math.abs(x[i]!) + 0.05;
        if (name === 'elu') for (let i = 0; i < 20; i++) x[i] = -1e-4 * (i + 1);
        const y0 = new Float32Array(n), y1 = new Float32Array(n);
        tsKernels.unary(name, x, y0, 0.2); K().unary!(name, x, y1, 0.2);
        expectClose(y1, y0, 1, `unary ${name}`);
        const gy = rand(n, 22), g0 = new Float32Array(n), g1 = new Float32Array(n);
        tsKernels.unaryGrad(name, x, y0, gy, g0, 0.2); K().unaryGrad!(name, x, y0, gy, g1, 0.2);
        expectClose(g1, g0, 1, `unaryGrad ${name}`);
      }
    });

    it('maxPool2d (values and argmax), odd sizes, k 2 and 3', function () {
      for (const [n, c, h, w, k] of [[2, 3, 7, 9, 2], [1, 1, 13, 7, 3], [3, 2, 4, 4, 2]] as const) {
        const x = rand(n * c * h * w, 31);
        const oh = Math.floor(h / k), ow = Math.floor(w / k);
        const y0 = new Float32Array(n * c * oh * ow), y1 = new Float32Array(y0.length);
        const a0 = new Int32Array(y0.length), a1 = new Int32Array(y0.length);
        tsKernels.maxPool2d(x, y0, a0, n, c, h, w, k); K().maxPool2d!(x, y1, a1, n, c, h, w, k);
        expect([...y1]).to.deep.equal([...y0]);
        expect([...a1]).to.deep.equal([...a0]);
      }
    });

    it('upsampleNearest and its gradient', function () {
      for (const [nc, h, w, f] of [[3, 5, 7, 2], [1, 1, 3, 3], [2, 13, 1, 2]] as const) {
        const x = rand(nc * h * w, 41);
        const y0 = new Float32Array(nc * h * w * f * f), y1 = new Float32Array(y0.length);
        tsKernels.upsampleNearest(x, y0, nc, h, w, f); K().upsampleNearest!(x, y1, nc, h, w, f);
        expectClose(y1, y0, 1, 'upsampleNearest');
        const gy = rand(y0.length, 42), g0 = new Float32Array(x.length), g1 = new Float32Array(x.length);
        tsKernels.upsampleNearestGrad(gy, g0, nc, h, w, f); K().upsampleNearestGrad!(gy, g1, nc, h, w, f);
        expectClose(g1, g0, f * f, 'upsampleNearestGrad');
      }
    });

    it('channelMoments, channelNormalize, batchNormGrad', function () {
      for (const [outer, c, inner] of [[7, 3, 13], [13, 1, 1], [1, 7, 3], [5, 13, 1]] as const) {
        const x = rand(outer * c * inner, 51);
        const m0 = new Float32Array(c), v0 = new Float32Array(c), m1 = new Float32Array(c), v1 = new Float32Array(c);
        tsKernels.channelMoments(x, m0, v0, outer, c, inner); K().channelMoments!(x, m1, v1, outer, c, inner);
        expectClose(m1, m0, outer * inner, 'channelMoments mean');
        expectClose(v1, v0, outer * inner, 'channelMoments var');
        const invStd = new Float32Array(c).map((_, i) => 1 / Math.sqrt(v0[i]! + 1e-5));
        const y0 = new Float32Array(x.length), y1 = new Float32Array(x.length);
        tsKernels.channelNormalize(x, m0, invStd, y0, outer, c, inner); K().channelNormalize!(x, m0, invStd, y1, outer, c, inner);
        expectClose(y1, y0, 1, 'channelNormalize');
        const gy = rand(x.length, 52), g0 = new Float32Array(x.length), g1 = new Float32Array(x.length);
        tsKernels.batchNormGrad(gy, y0, invStd, g0, outer, c, inner); K().batchNormGrad!(gy, y0, invStd, g1, outer, c, inner);
        expectClose(g1, g0, outer * inner, 'batchNormGrad');
      }
    });
  });
}

describe('gpujs backend: registry and detection', function () {
  after(async function () { await setBackend('ts'); await disposeGpujsBackend(); });

  it('registers as "gpujs" and provides float32 kernels, float64 falls back to ts', async function () {
    const be = await createGpujsBackend({ mode: 'cpu' });
    registerBackend(be);
    await setBackend('gpujs');
    expect(kernelProvider('gemm', 'float32')).to.equal('gpujs');
    expect(kernelProvider('conv2d', 'float32')).to.equal('gpujs');
    expect(kernelProvider('gemm', 'float64')).to.equal('ts');
    expect(kernelProvider('binary', 'float32')).to.equal('ts');
  });

  it('refuses webgpu for the synchronous backend', async function () {
    let err: unknown;
    try { await createGpujsBackend({ mode: 'webgpu' }); } catch (e) { err = e; }
    expect(String(err)).to.match(/asynchronous/);
  });

  it('detectRealGpu reports no real GPU without one (never throws)', async function () {
    const info = await detectRealGpu();
    expect(info).to.have.keys(['real', 'mode', 'renderer']);
    if (!process.env['GPUJS_EXPECT_REAL_GPU']) expect(info.real).to.equal(false);
  });
});
