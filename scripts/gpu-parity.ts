/**
 * Parity + speed check of the gpujs kernels in every gpu.js mode this machine can run, against
 * the `ts` reference. Run through scripts/gpu-parity.sh (which sets up the software WebGPU
 * adapter and headless-gl); directly: `npx tsx scripts/gpu-parity.ts [modes...]`.
 *
 * Per mode: kernel parity, one tiny training step through the whole engine (forward, backward,
 * Adam; test/gpujs-net-step.ts) against the `ts` backend, and a small benchmark. The engine runs
 * the backend `useBackend` would build: in-process for the synchronous modes (headlessgl,
 * webasm, cpu; through the worker bridge with SVDD_GPUJS_WORKER=1), always through the worker
 * bridge for webgpu, whose kernels return Promises. webgpu additionally checks the kernels
 * awaited in this thread (createGpujsAsyncKernels), to tell a bridge fault from a kernel fault.
 * Env: GPUJS_WEBGPU_DIR = folder whose node_modules holds `webgpu` (>= 0.6; default
 * .software-webgpu/node); GPUJS_BENCH_N = gemm benchmark sizes (default "128,256,512").
 * Exit status 1 if any parity check fails.
 */
import path from 'node:path';
import { tsKernels } from '../src/tensor/kernels/ts/index.ts';
import type { ConvGeom, KernelSet, UnaryName } from '../src/tensor/kernels/types.ts';
import type { AsyncKernels, GpujsBackend, GpujsMode } from '../src/tensor/kernels/gpujs/index.ts';
import { createGpujsAsyncKernels, createGpujsBackend, detectRealGpu } from '../src/tensor/kernels/gpujs/index.ts';
import { loadGpujs } from '../src/tensor/kernels/gpujs/gpu-types.ts';
import { installNavigatorGpu } from '../src/tensor/kernels/gpujs/webgpu-env.ts';
import { registerBackend, setBackend } from '../src/tensor/kernels/registry.ts';
import { convGeom as geom, randomFloats as rand } from '../test/helpers.ts';
import type { NetStep } from '../test/gpujs-net-step.ts';
import { netStep, netStepError } from '../test/gpujs-net-step.ts';

/** Norm-relative error allowed for the training step (float32 sums in a different order). */
const NET_TOL = 1e-4;


/** Largest |got − want| / (tol·(1 + |want|)); ≤ 1 passes. */
function worst(got: Float32Array | Int32Array, want: Float32Array | Int32Array, k: number): number {
  const tol = 1e-5 * Math.max(3, Math.sqrt(Math.max(1, k)));
  let w = 0;
  for (let i = 0; i < want.length; i++) {
    const r = Math.abs(got[i]! - want[i]!) / (tol * (1 + Math.abs(want[i]!)));
    w = Math.max(w, Number.isNaN(r) ? Infinity : r);
  }
  return w;
}

interface Check { name: string; ratio: number }

/** Every provided kernel on odd shapes; returns one ratio per check. */
async function parity(K: AsyncKernels): Promise<Check[]> {
  const out: Check[] = [];
  let seed = 1;
  const dims = [1, 3, 7, 13];
  let g = 0;
  for (const m of dims) for (const n of dims) for (const k of dims) for (const tA of [false, true]) for (const tB of [false, true]) for (const acc of [false, true]) {
    const a = rand(m * k, seed++), b = rand(k * n, seed++), c0 = rand(m * n, seed++);
    const want = c0.slice(), got = c0.slice();
    tsKernels.gemm(a, b, want, m, n, k, tA, tB, acc);
    await K.gemm(a, b, got, m, n, k, tA, tB, acc);
    g = Math.max(g, worst(got, want, k));
  }
  out.push({ name: 'gemm (256 shape/transpose/accumulate combos)', ratio: g });
  {
    const m = 3, n = 5, k = 1500, a = rand(m * k, 7), b = rand(k * n, 8);
    const want = new Float32Array(m * n), got = new Float32Array(m * n);
    tsKernels.gemm(a, b, want, m, n, k, false, true, false); await K.gemm(a, b, got, m, n, k, false, true, false);
    out.push({ name: 'gemm k=1500 (> loopMaxIterations)', ratio: worst(got, want, k) });
  }
  const convs: [string, ConvGeom][] = [
    ['3x3 s2 p1', geom(3, 3, 9, 7, 5, 3, 3, 2, 1)], ['5x5 p2 cin1', geom(2, 1, 12, 11, 4, 5, 5, 1, 2)],
    ['5x5 p3 cout1', geom(2, 4, 7, 9, 1, 5, 5, 1, 3)], ['cin1 cout1 3x3 s2 p1', geom(3, 1, 8, 8, 1, 3, 3, 2, 1)],
    ['MNIST conv1 batch 16', geom(16, 1, 28, 28, 8, 5, 5, 1, 2)],
  ];
  for (const [label, cg] of convs) {
    const x = rand(cg.n * cg.cin * cg.h * cg.w, 11), w = rand(cg.cout * cg.cin * cg.kh * cg.kw, 12);
    const gy = rand(cg.n * cg.cout * cg.oh * cg.ow, 13);
    const y0 = new Float32Array(gy.length), y1 = new Float32Array(gy.length);
    tsKernels.conv2d(x, w, y0, cg); await K.conv2d(x, w, y1, cg);
    out.push({ name: `conv2d ${label}`, ratio: worst(y1, y0, cg.cin * cg.kh * cg.kw) });
    const gx0 = new Float32Array(x.length), gx1 = new Float32Array(x.length);
    tsKernels.conv2dGradInput(gy, w, gx0, cg); await K.conv2dGradInput(gy, w, gx1, cg);
    out.push({ name: `conv2dGradInput ${label}`, ratio: worst(gx1, gx0, cg.cout * cg.kh * cg.kw) });
    const gw0 = new Float32Array(w.length), gw1 = new Float32Array(w.length);
    tsKernels.conv2dGradWeight(x, gy, gw0, cg); await K.conv2dGradWeight(x, gy, gw1, cg);
    out.push({ name: `conv2dGradWeight ${label}`, ratio: worst(gw1, gw0, cg.n * cg.oh * cg.ow) });
  }
  const n = 1 + 13 * 7 * 3;
  const unaries: UnaryName[] = ['leakyRelu', 'elu', 'sigmoid', 'relu', 'exp', 'log', 'neg', 'sqrt', 'abs', 'square'];
  let u = 0, ug = 0;
  for (const name of unaries) {
    const x = rand(n, 21);
    if (name === 'log' || name === 'sqrt') for (let i = 0; i < n; i++) x[i] = Math.abs(x[i]!) + 0.05;
    if (name === 'elu') for (let i = 0; i < 20; i++) x[i] = -1e-4 * (i + 1);
    const y0 = new Float32Array(n), y1 = new Float32Array(n);
    tsKernels.unary(name, x, y0, 0.2); await K.unary(name, x, y1, 0.2);
    u = Math.max(u, worst(y1, y0, 1));
    const gy = rand(n, 22), g0 = new Float32Array(n), g1 = new Float32Array(n);
    tsKernels.unaryGrad(name, x, y0, gy, g0, 0.2); await K.unaryGrad(name, x, y0, gy, g1, 0.2);
    ug = Math.max(ug, worst(g1, g0, 1));
  }
  out.push({ name: 'unary (10 functions)', ratio: u }, { name: 'unaryGrad (10 functions)', ratio: ug });
  {
    const [N, C, H, W, k] = [2, 3, 7, 9, 2];
    const x = rand(N * C * H * W, 31), len = N * C * Math.floor(H / k) * Math.floor(W / k);
    const y0 = new Float32Array(len), y1 = new Float32Array(len), a0 = new Int32Array(len), a1 = new Int32Array(len);
    tsKernels.maxPool2d(x, y0, a0, N, C, H, W, k); await K.maxPool2d(x, y1, a1, N, C, H, W, k);
    out.push({ name: 'maxPool2d values', ratio: worst(y1, y0, 1) }, { name: 'maxPool2d argmax (exact)', ratio: a0.every((v, i) => v === a1[i]) ? 0 : Infinity });
  }
  {
    const [nc, h, w, f] = [3, 5, 7, 2];
    const x = rand(nc * h * w, 41), y0 = new Float32Array(nc * h * w * f * f), y1 = new Float32Array(y0.length);
    tsKernels.upsampleNearest(x, y0, nc, h, w, f); await K.upsampleNearest(x, y1, nc, h, w, f);
    const gy = rand(y0.length, 42), g0 = new Float32Array(x.length), g1 = new Float32Array(x.length);
    tsKernels.upsampleNearestGrad(gy, g0, nc, h, w, f); await K.upsampleNearestGrad(gy, g1, nc, h, w, f);
    out.push({ name: 'upsampleNearest', ratio: worst(y1, y0, 1) }, { name: 'upsampleNearestGrad', ratio: worst(g1, g0, 4) });
  }
  {
    const [outer, c, inner] = [7, 3, 13];
    const x = rand(outer * c * inner, 51);
    const m0 = new Float32Array(c), v0 = new Float32Array(c), m1 = new Float32Array(c), v1 = new Float32Array(c);
    tsKernels.channelMoments(x, m0, v0, outer, c, inner); await K.channelMoments(x, m1, v1, outer, c, inner);
    const invStd = v0.map((v) => 1 / Math.sqrt(v + 1e-5));
    const y0 = new Float32Array(x.length), y1 = new Float32Array(x.length);
    tsKernels.channelNormalize(x, m0, invStd, y0, outer, c, inner); await K.channelNormalize(x, m0, invStd, y1, outer, c, inner);
    const gy = rand(x.length, 52), g0 = new Float32Array(x.length), g1 = new Float32Array(x.length);
    tsKernels.batchNormGrad(gy, y0, invStd, g0, outer, c, inner); await K.batchNormGrad(gy, y0, invStd, g1, outer, c, inner);
    out.push({ name: 'channelMoments', ratio: Math.max(worst(m1, m0, outer * inner), worst(v1, v0, outer * inner)) },
      { name: 'channelNormalize', ratio: worst(y1, y0, 1) }, { name: 'batchNormGrad', ratio: worst(g1, g0, outer * inner) });
  }
  return out;
}

/** GFLOP/s of gemm NN at n×n×n (best of 3 after a warm-up run, which also compiles). */
async function benchGemm(K: AsyncKernels, n: number): Promise<number> {
  const a = rand(n * n, 1), b = rand(n * n, 2), c = new Float32Array(n * n);
  await K.gemm(a, b, c, n, n, n, false, false, false);
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    await K.gemm(a, b, c, n, n, n, false, false, false);
    best = Math.min(best, performance.now() - t);
  }
  return (2 * n * n * n) / (best * 1e6);
}

/** ms per MNIST-encoder-sized conv forward (batch 64, 1→8 channels, 28×28, 5×5 pad 2). */
async function benchConv(K: AsyncKernels): Promise<number> {
  const g = geom(64, 1, 28, 28, 8, 5, 5, 1, 2);
  const x = rand(g.n * g.cin * g.h * g.w, 3), w = rand(g.cout * 25, 4), y = new Float32Array(g.n * g.cout * g.oh * g.ow);
  await K.conv2d(x, w, y, g);
  const t = performance.now();
  await K.conv2d(x, w, y, g);
  return performance.now() - t;
}

function asAsync(ks: Partial<KernelSet>): AsyncKernels {
  const all = { ...tsKernels, ...ks } as KernelSet;
  const wrap = <F extends (...args: never[]) => void>(f: F) => async (...args: Parameters<F>): Promise<void> => { f(...args); };
  return {
    gemm: wrap(all.gemm), conv2d: wrap(all.conv2d), conv2dGradInput: wrap(all.conv2dGradInput), conv2dGradWeight: wrap(all.conv2dGradWeight),
    unary: wrap(all.unary), unaryGrad: wrap(all.unaryGrad), maxPool2d: wrap(all.maxPool2d), maxPool2dGrad: wrap(all.maxPool2dGrad),
    upsampleNearest: wrap(all.upsampleNearest), upsampleNearestGrad: wrap(all.upsampleNearestGrad),
    channelMoments: wrap(all.channelMoments), channelNormalize: wrap(all.channelNormalize), batchNormGrad: wrap(all.batchNormGrad),
    binary: wrap(all.binary), reduce: wrap(all.reduce),
  };
}

const webgpuDir = path.resolve(process.env['GPUJS_WEBGPU_DIR'] ?? '.software-webgpu/node');

/** Installs navigator.gpu in this thread (for the awaited in-thread kernels and detection); the bridge's worker installs its own. */
function installWebGpu(): string | undefined {
  try {
    installNavigatorGpu(webgpuDir);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

function report(name: string, checks: Check[], seconds: number): boolean {
  for (const c of checks) console.log(`  ${c.ratio <= 1 ? 'ok  ' : 'FAIL'} ${c.name.padEnd(48)} err/tol ${c.ratio.toFixed(3)}`);
  const ok = checks.every((c) => c.ratio <= 1);
  console.log(`  ${name}: ${ok ? 'PASS' : 'FAIL'} in ${seconds.toFixed(1)} s`);
  return ok;
}

/** One training step on `be` against the ts backend; the reference is computed once. */
let reference: NetStep | undefined;
async function trainingStep(be: GpujsBackend): Promise<boolean> {
  reference ??= await netStep('ts');
  registerBackend(be);
  const first = await netStep('gpujs');
  // Again, now that every kernel is compiled: the time a training step takes.
  const again = await netStep('gpujs');
  await setBackend('ts');
  const { worst, where } = netStepError(first, reference);
  const ok = worst <= NET_TOL && netStepError(again, first).worst === 0;
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} training step (LeNet AE, batch 4: forward, backward, Adam) rel. err ${worst.toExponential(2)} `
    + `(worst: ${where}; tol ${NET_TOL}) | ${first.ms.toFixed(0)} ms with compilation, ${again.ms.toFixed(0)} ms compiled, ts ${reference.ms.toFixed(0)} ms`);
  return ok;
}

async function bench(K: AsyncKernels, sizes: number[], label: string): Promise<void> {
  for (const n of sizes) console.log(`  gemm ${n}x${n}x${n}${label}: ${(await benchGemm(K, n)).toFixed(3)} GFLOP/s`);
  console.log(`  conv2d MNIST conv1 (64x1x28x28 -> 8, 5x5)${label}: ${(await benchConv(K)).toFixed(1)} ms`);
}

async function main(): Promise<void> {
  const requested = process.argv.slice(2) as GpujsMode[];
  const webgpuProblem = installWebGpu();
  const { GPU } = loadGpujs();
  const modes: GpujsMode[] = requested.length ? requested
    : [...(GPU.isWebGPUSupported ? ['webgpu' as const] : []), ...(GPU.isHeadlessGLSupported ? ['headlessgl' as const] : []), 'webasm', 'cpu'];
  if (webgpuProblem) console.log(`(${webgpuProblem})`);
  if (!GPU.isHeadlessGLSupported) console.log('(headless-gl not available: no `gl` module or no X display; see scripts/gpu-parity.sh)');
  const real = await detectRealGpu();
  console.log(`detectRealGpu: real=${real.real} mode=${real.mode} renderer="${real.renderer}"`);
  const sizes = (process.env['GPUJS_BENCH_N'] ?? '128,256,512').split(',').map(Number).filter((v) => v > 0);
  const workerForSync = process.env['SVDD_GPUJS_WORKER'] === '1';
  let failed = false;
  for (const mode of modes) {
    console.log(`\n== gpu.js mode '${mode}' ==`);
    try {
      if (mode === 'webgpu') {
        // The kernels awaited in this thread: the reference point for the bridge below.
        let ak;
        try { ak = await createGpujsAsyncKernels({ mode: 'webgpu' }); } catch (e) { console.log(`  awaited in-thread kernels unavailable: ${(e as Error).message}`); }
        if (ak) {
          try {
            const t0 = performance.now();
            if (!report(`kernel parity, awaited in this thread (${ak.mode})`, await parity(ak.kernels), (performance.now() - t0) / 1000)) failed = true;
            await bench(ak.kernels, sizes, ' awaited in-thread');
          } finally { await ak.dispose(); }
        }
      }
      let be: GpujsBackend;
      const t0 = performance.now();
      try {
        be = await createGpujsBackend({ mode, worker: workerForSync || mode === 'webgpu', webgpuDir });
      } catch (e) {
        console.log(`  unavailable: ${(e as Error).message}`);
        if (mode === 'webgpu' && !webgpuProblem) failed = true;
        continue;
      }
      const how = be.worker ? 'worker bridge' : 'in-process';
      console.log(`  backend started (${be.mode}, ${how}) in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
      try {
        const K = asAsync(be.kernels.float32 ?? {});
        const t1 = performance.now();
        if (!report(`kernel parity, ${how} (${be.mode})`, await parity(K), (performance.now() - t1) / 1000)) failed = true;
        if (!(await trainingStep(be))) failed = true;
        await bench(K, sizes, be.worker ? ' via worker bridge' : '');
      } finally {
        await be.dispose();
      }
    } catch (e) {
      failed = true;
      console.log(`  ERROR: ${(e as Error).stack}`);
    }
  }
  console.log(`\n${failed ? 'FAILED' : 'all parity checks passed'}`);
  // Dawn's device and GL contexts can keep the event loop alive.
  process.exit(failed ? 1 : 0);
}

void main();
