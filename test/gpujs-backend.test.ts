/**
 * Parity of the gpujs backend with the `ts` reference, in gpu.js's `cpu` mode (runs anywhere,
 * no GPU) and its `webasm` mode (also GPU-free), both in-process and through the worker bridge
 * (the path WebGPU takes), plus the bridge's own behaviour (errors, buffer growth, shutdown) and
 * GPU detection. The same kernel sources run on GL and WebGPU: scripts/gpu-parity.sh checks
 * those on software renderers.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { tsKernels } from '../src/tensor/kernels/ts/index.ts';
import type { ConvGeom, UnaryName } from '../src/tensor/kernels/types.ts';
import type { GpujsBackend } from '../src/tensor/kernels/gpujs/index.ts';
import { createGpujsBackend, detectRealGpu, disposeGpujsBackend, gpujsDetail, gpujsOptionsFromEnv } from '../src/tensor/kernels/gpujs/index.ts';
import { GpujsWorkerBridge } from '../src/tensor/kernels/gpujs/bridge.ts';
import { isRealAdapter, probeWebGpu } from '../src/tensor/kernels/gpujs/webgpu-env.ts';
import { kernelProvider, registerBackend, setBackend } from '../src/tensor/kernels/registry.ts';
import { convGeom as geom, expectKernelClose, randomFloats as rand } from './helpers.ts';
import { netStep, netStepError } from './gpujs-net-step.ts';
import { describeNetParity } from './net-parity.ts';

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
// worker: the same cases through the worker bridge (gpu.js in a worker thread, awaited).
const configs: { mode: 'cpu' | 'webasm'; worker?: boolean; maxChunkElements?: number; rowWidth?: number }[] = [
  { mode: 'cpu' },
  { mode: 'cpu', maxChunkElements: 64, rowWidth: 16 },
  { mode: 'webasm' },
  { mode: 'cpu', worker: true, maxChunkElements: 64, rowWidth: 16 },
  { mode: 'webasm', worker: true },
];

for (const cfg of configs) {
  const label = `${cfg.mode}${cfg.worker ? ' in the worker bridge' : ''}${cfg.maxChunkElements ? `, chunks of ${cfg.maxChunkElements}` : ''}`;
  describe(`gpujs backend (${label})`, function () {
    let be: GpujsBackend;
    before(async function () {
      be = await createGpujsBackend(cfg);
      expect(be.name).to.equal('gpujs');
      expect(be.mode).to.equal(cfg.mode);
      expect(be.worker).to.equal(cfg.worker ?? false);
    });
    after(async function () { await be.dispose(); });
    const K = () => be.kernels.float32!;

    // Through the bridge the kernels are the in-process ones: fewer shapes keep the suite fast.
    const gemmDims = cfg.worker ? [1, 7] : dims;
    it(`gemm: every transpose/accumulate combination, m,n,k ∈ {${gemmDims.join(',')}}`, function () {
      let seed = 1;
      for (const m of gemmDims) for (const n of gemmDims) for (const k of gemmDims) {
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

describe('gpujs worker bridge', function () {
  let be: GpujsBackend;
  before(async function () {
    // A small initial buffer, so the growth test needs only a modest operand.
    be = await createGpujsBackend({ mode: 'cpu', worker: true, initialSharedBytes: 4096 });
  });
  after(async function () { await setBackend('ts'); await be.dispose(); });
  const K = () => be.kernels.float32!;

  it('a kernel error in the worker is thrown on the calling thread, and the bridge still works after it', function () {
    const a = rand(12, 1), b = rand(20, 2), c = new Float32Array(15);
    // k < 0: gpu.js refuses the operand shapes inside the worker.
    expect(() => K().gemm!(a, b, c, 3, 5, -4, false, false, false)).to.throw(Error, /gpujs worker \(cpu\).*Input size/s);
    const want = new Float32Array(15);
    tsKernels.gemm(a, b, want, 3, 5, 4, false, false, false);
    K().gemm!(a, b, c, 3, 5, 4, false, false, false);
    expectClose(c, want, 4, 'gemm after an error');
  });

  it('grows the shared buffer for an operand larger than it, and the result is right', function () {
    const before = be.sharedBufferBytes();
    const n = 20000, x = rand(n, 3), y0 = new Float32Array(n), y1 = new Float32Array(n);
    expect(2 * n * 4).to.be.greaterThan(before);
    tsKernels.unary('sigmoid', x, y0, 0); K().unary!('sigmoid', x, y1, 0);
    expect(be.sharedBufferBytes()).to.be.at.least(2 * n * 4);
    expectClose(y1, y0, 1, 'sigmoid on a grown buffer');
    // The worker now reads the new buffer; small calls keep working on it.
    const s0 = new Float32Array(3), s1 = new Float32Array(3);
    tsKernels.unary('abs', x.subarray(0, 3), s0, 0); K().unary!('abs', x.subarray(0, 3), s1, 0);
    expectClose(s1, s0, 1, 'abs after growth');
  });

  it('copies back only into the outputs, leaving the tail of an oversized output as it was', function () {
    const a = rand(6, 4), b = rand(6, 5), c = rand(20, 6), want = c.slice();
    tsKernels.gemm(a, b, want, 2, 3, 2, false, false, false);
    K().gemm!(a, b, c, 2, 3, 2, false, false, false);
    expectClose(c, want, 2, 'gemm into an oversized output');
  });

  it('runs float64 work on the reference without the worker, and counts compiled kernels in the worker', function () {
    const before = be.compiledKernels();
    const a = Float64Array.from(rand(6, 7)), b = Float64Array.from(rand(6, 8)), c = new Float64Array(4), want = new Float64Array(4);
    tsKernels.gemm(a, b, want, 2, 2, 3, false, true, false);
    K().gemm!(a, b, c, 2, 2, 3, false, true, false);
    expect([...c]).to.deep.equal([...want]);
    expect(be.compiledKernels()).to.equal(before);
    K().unary!('square', rand(7, 9), new Float32Array(7), 0);
    expect(be.compiledKernels()).to.be.greaterThan(before);
  });

  it('a tiny network: forward, loss, backward and an Adam step match the ts backend', async function () {
    const want = await netStep('ts');
    registerBackend(be);
    const got = await netStep('gpujs');
    const { worst, where } = netStepError(got, want);
    expect(worst, `worst at ${where}`).to.be.below(1e-4);
  });

  it('a worker that dies during a request fails it instead of hanging; later calls throw', async function () {
    const bridge = await GpujsWorkerBridge.start({ mode: 'cpu' });
    expect(() => bridge.simulateWorkerExit()).to.throw(/worker thread ended/);
    expect(() => bridge.call('unary', ['neg', new Float32Array(2), new Float32Array(2), 0])).to.throw(/worker is gone/);
    await bridge.dispose();
  });

  it('refuses calls after dispose instead of hanging (runs last: it disposes the shared backend)', async function () {
    await be.dispose();
    expect(() => K().unary!('neg', new Float32Array(2), new Float32Array(2), 0)).to.throw(/worker is gone/);
  });
});

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
    // A run's log must not let "backend gpujs" read as a GPU when gpu.js runs on the CPU.
    expect(be.detail).to.equal(`gpu.js ${be.mode} mode, on the CPU: no GPU was used`);
  });

  it('webgpu runs through the worker bridge, or rejects with the reason when it cannot (never hangs)', async function () {
    let be: GpujsBackend | undefined, err: unknown;
    try { be = await createGpujsBackend({ mode: 'webgpu' }); } catch (e) { err = e; }
    if (be) {
      // A machine with a usable `webgpu` package (GPUJS_WEBGPU_DIR): the bridge must compute.
      expect(be.worker).to.equal(true);
      const x = rand(5, 61), y0 = new Float32Array(5), y1 = new Float32Array(5);
      tsKernels.unary('exp', x, y0, 0); be.kernels.float32!.unary!('exp', x, y1, 0);
      expectClose(y1, y0, 1, 'webgpu exp');
      await be.dispose();
    } else {
      expect(err).to.be.instanceOf(Error);
      expect(String(err)).to.match(/webgpu|WebGPU|adapter/);
    }
  });

  it('the WebGPU probe answers without a usable `webgpu` package, quickly and without throwing', async function () {
    const t0 = performance.now();
    const p = await probeWebGpu({ dir: '/nonexistent-webgpu-dir', timeoutMs: 5000 });
    expect(p).to.include.keys(['available', 'fallback', 'renderer']);
    if (!p.available) expect(p.reason).to.be.a('string');
    else expect(p.fallback || process.env['GPUJS_EXPECT_REAL_GPU'] !== undefined).to.equal(true);
    expect(performance.now() - t0).to.be.below(5000);
  });

  it('a non-fallback WebGPU adapter counts as real; one that cannot run a kernel fails the start with a reason', async function () {
    // A stand-in `webgpu` package whose adapter claims to be hardware but cannot create a device.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fake-webgpu-'));
    try {
      mkdirSync(path.join(dir, 'node_modules', 'webgpu'), { recursive: true });
      writeFileSync(path.join(dir, 'node_modules', 'webgpu', 'package.json'), '{"name":"webgpu","version":"0.0.0","main":"index.js"}');
      writeFileSync(path.join(dir, 'node_modules', 'webgpu', 'index.js'), `module.exports = { globals: {}, create: () => ({
        requestAdapter: async () => ({ isFallbackAdapter: false, info: { vendor: 'acme', architecture: 'rdna9', description: 'Acme GPU' } }) }) };`);
      const p = await probeWebGpu({ dir, timeoutMs: 5000 });
      expect(p).to.deep.include({ available: true, fallback: false });
      expect(isRealAdapter(p)).to.equal(true);
      expect(isRealAdapter({ ...p, renderer: 'llvmpipe' })).to.equal(false);
      let err: unknown;
      try { await (await createGpujsBackend({ mode: 'webgpu', webgpuDir: dir })).dispose(); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(Error);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('describes its mode for the log: CPU modes say so, GPU modes and the worker are named', function () {
    expect(gpujsDetail('webasm', false)).to.equal('gpu.js webasm mode, on the CPU: no GPU was used');
    expect(gpujsDetail('headlessgl', false)).to.equal('gpu.js headlessgl mode');
    expect(gpujsDetail('webgpu', true)).to.equal('gpu.js webgpu mode, in a worker thread');
  });

  it('reads SVDD_GPUJS_MODE / SVDD_GPUJS_WORKER; webgpu always uses the worker', function () {
    expect(gpujsOptionsFromEnv(null, {})).to.deep.equal({ mode: 'gpu', worker: false });
    expect(gpujsOptionsFromEnv('webgpu', {})).to.deep.equal({ mode: 'webgpu', worker: true });
    expect(gpujsOptionsFromEnv('webgpu', { SVDD_GPUJS_MODE: 'cpu' })).to.deep.equal({ mode: 'cpu', worker: false });
    expect(gpujsOptionsFromEnv(null, { SVDD_GPUJS_MODE: 'webasm', SVDD_GPUJS_WORKER: '1' })).to.deep.equal({ mode: 'webasm', worker: true });
    expect(gpujsOptionsFromEnv(null, { SVDD_GPUJS_MODE: 'webgpu', SVDD_GPUJS_WORKER: '0' })).to.deep.equal({ mode: 'webgpu', worker: true });
    expect(() => gpujsOptionsFromEnv(null, { SVDD_GPUJS_MODE: 'vulkan' })).to.throw(/not a gpu.js mode/);
  });

  it('detectRealGpu reports no real GPU without one (never throws)', async function () {
    const info = await detectRealGpu();
    expect(info).to.have.keys(['real', 'mode', 'renderer']);
    if (!process.env['GPUJS_EXPECT_REAL_GPU']) expect(info.real).to.equal(false);
  });
});

// The whole-network PyTorch parity every backend passes (test/net-parity.ts), here on gpu.js's
// webasm mode, in-process and through the worker bridge. gpu.js sums each dot product sequentially
// in float32, so the CIFAR autoencoder's conv1 weight gradient lands at 1.27e-4: tolerance 2e-4.
for (const worker of [false, true]) {
  let be: GpujsBackend;
  describeNetParity(`whole networks on the gpujs backend (webasm${worker ? ', worker bridge' : ''}) against PyTorch (float32)`,
    async () => { be = await createGpujsBackend({ mode: 'webasm', worker }); registerBackend(be); await setBackend('gpujs'); },
    async () => { await setBackend('ts'); await be.dispose(); }, 2e-4);
}
