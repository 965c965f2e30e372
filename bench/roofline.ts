/**
 * The ceiling of the wasm backend on this machine, and what "2× PyTorch's best" asks of it.
 *
 * 1. Peak: the f32x4 multiply-add rate a generated wasm loop reaches with 12 independent
 *    accumulators and no memory traffic (relaxed madd when the engine has it, as the GEMM kernels
 *    use; also separate mul + add), on 1 thread and on every core at once.
 * 2. Native: PyTorch's own float32 matrix product (2048², Debian's /usr/bin/python3 with python3-torch,
 *    as bench/run.ts's peer; its BLAS is OpenBLAS with libopenblas0-pthread), the
 *    rate its convolutions can draw on; skipped with a printed reason when python3-torch is missing.
 * 3. Work per image of the CIFAR-10 workloads of bench/run.ts, counted layer by layer: the direct
 *    convolution's multiply-adds (what PyTorch computes) and the ones the wasm backend actually
 *    computes (Winograd F(2×2, 5×5) GEMMs wherever usesWinograd / usesWinogradGradWeight pick it).
 * 4. With a bench/run.ts result (`--from FILE`, default the newest bench-*.json with epochs): the
 *    rate each side reached, as a share of its peak, and the rate that 2× PyTorch's best would need.
 *
 * Run: `npx tsx bench/roofline.ts [--from bench/results/bench-….json]`. Writes
 * bench/results/roofline-<time>.json. Winograd's transforms, BatchNorm, pooling and the optimiser
 * are not counted, so "needed" figures are lower bounds on the true requirement.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { writeFileAtomic } from '../src/tensor/io/atomic.ts';
import { FnBuilder, T, buildModule } from '../src/tensor/kernels/wasm/emitter.ts';
import { wasmFeatures } from '../src/tensor/kernels/wasm/index.ts';
import { usesWinograd, usesWinogradGradWeight } from '../src/tensor/kernels/wasm/winograd-conv.ts';
import type { ConvGeom } from '../src/tensor/kernels/types.ts';

const here = dirname(fileURLToPath(import.meta.url));
const resultsDir = join(here, 'results');

const { values } = parseArgs({ options: { from: { type: 'string' }, seconds: { type: 'string', default: '1' } } });
const windowSeconds = Number(values.seconds);
if (!(windowSeconds > 0 && windowSeconds <= 10)) throw new Error(`--seconds: expected a number in (0, 10], got '${values.seconds}'`);

// ---------------------------------------------------------------------------------------------
// 1. Peak multiply-add rate of generated wasm.

const ACCUMULATORS = 12;
/** `peak(iterations)`: acc_i = acc_i · a + b on 12 independent f32x4 accumulators, summed to memory at the end. */
function peakModule(relaxed: boolean): Uint8Array<ArrayBuffer> {
  const f = new FnBuilder('peak', [T.i32]);
  const iterations = f.param(0, T.i32);
  const a = f.local(T.v128), b = f.local(T.v128);
  const accs = Array.from({ length: ACCUMULATORS }, () => f.local(T.v128));
  f.set(a, () => f.f32x4Splat(() => f.f32Const(0.999)));
  f.set(b, () => f.f32x4Splat(() => f.f32Const(0.001)));
  accs.forEach((acc, i) => f.set(acc, () => f.f32x4Splat(() => f.f32Const(i / ACCUMULATORS))));
  f.doWhile(() => {
    for (const acc of accs) f.set(acc, () => f.f32x4Madd(acc, a, b, relaxed));
    f.set(iterations, () => f.i32Sub(iterations, 1));
  }, iterations);
  let sum: () => void = () => f.get(accs[0]!);
  for (const acc of accs.slice(1)) { const prev = sum; sum = () => f.f32x4Add(prev, acc); }
  f.v128Store(0, sum);
  return buildModule({ module: 'env', field: 'memory', initialPages: 1, maximumPages: 1, shared: false }, [f]);
}

/** Runs in each worker: instantiate, warm up, then report the best rate over 3 windows once all workers start together. */
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { bytes, windowSeconds, flopsPerIteration, gate } = workerData;
const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
const { peak } = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
peak(1e6);
const flag = new Int32Array(gate);
Atomics.add(flag, 1, 1);
Atomics.wait(flag, 0, 0);
let best = 0;
for (let w = 0; w < 3; w++) {
  let iterations = 0; const t0 = performance.now();
  do { peak(1e6); iterations += 1e6; } while (performance.now() - t0 < windowSeconds * 1000);
  best = Math.max(best, iterations * flopsPerIteration / ((performance.now() - t0) / 1000));
}
parentPort.postMessage(best);
`;

async function peakGflops(bytes: Uint8Array, threads: number): Promise<number> {
  const gate = new SharedArrayBuffer(8);
  const flag = new Int32Array(gate);
  const flopsPerIteration = ACCUMULATORS * 4 * 2;
  const workers = Array.from({ length: threads }, () => new Worker(workerSource, { eval: true, workerData: { bytes, windowSeconds, flopsPerIteration, gate } }));
  const rates = workers.map((w) => new Promise<number>((resolve, reject) => { w.once('message', resolve); w.once('error', reject); }));
  while (Atomics.load(flag, 1) < threads) await new Promise((r) => setTimeout(r, 5));
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
  const each = await Promise.all(rates);
  await Promise.all(workers.map((w) => w.terminate()));
  return each.reduce((s, r) => s + r, 0) / 1e9;
}

// ---------------------------------------------------------------------------------------------
// 2. PyTorch's native matrix product.

interface NativeRate { threads: number; gflops: number }
function nativeGflops(threads: number): NativeRate | string {
  const script = [
    'import time, torch',
    `torch.set_num_threads(${threads})`,
    'a = torch.randn(2048, 2048); b = torch.randn(2048, 2048)',
    'a @ b',
    'best = 0.0',
    'for _ in range(3):',
    '    t0 = time.perf_counter(); n = 0',
    `    while time.perf_counter() - t0 < ${windowSeconds}:`,
    '        a @ b; n += 1',
    '    best = max(best, n * 2 * 2048 ** 3 / (time.perf_counter() - t0))',
    'print(best / 1e9)',
  ].join('\n');
  // torch.set_num_threads does not reach OpenBLAS's own pool, which would otherwise use every core.
  const env = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  const r = spawnSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8', timeout: 120_000, env });
  if (r.error) return `/usr/bin/python3 did not run (${r.error.message})`;
  if (r.status !== 0) return `/usr/bin/python3 -c 'import torch' failed: ${(r.stderr || '').trim().split('\n').pop()}`;
  const gflops = Number(r.stdout.trim());
  return Number.isFinite(gflops) ? { threads, gflops } : `unexpected output ${JSON.stringify(r.stdout)}`;
}

// ---------------------------------------------------------------------------------------------
// 3. Multiply-adds per image.

interface Layer { name: string; cin: number; cout: number; hw: number; transposed?: boolean; fc?: boolean }
/** CIFAR-10 LeNet (src/svdd/networks.ts): 5×5 kernels, padding 2, stride 1; hw is the layer's input size. */
const encoder: Layer[] = [
  { name: 'conv1', cin: 3, cout: 32, hw: 32 }, { name: 'conv2', cin: 32, cout: 64, hw: 16 },
  { name: 'conv3', cin: 64, cout: 128, hw: 8 }, { name: 'fc1', cin: 2048, cout: 128, hw: 1, fc: true },
];
const decoder: Layer[] = [
  { name: 'deconv1', cin: 8, cout: 128, hw: 4, transposed: true }, { name: 'deconv2', cin: 128, cout: 64, hw: 8, transposed: true },
  { name: 'deconv3', cin: 64, cout: 32, hw: 16, transposed: true }, { name: 'deconv4', cin: 32, cout: 3, hw: 32, transposed: true },
];

const geom = (cin: number, cout: number, hw: number): ConvGeom => ({ n: 1, cin, h: hw, w: hw, cout, kh: 5, kw: 5, stride: 1, pad: 2, oh: hw, ow: hw });
/** Multiply-adds of one 5×5 "same" convolution per image: [direct, as the wasm backend runs it]. */
function convMacs(g: ConvGeom, winograd: boolean): [number, number] {
  const direct = g.oh * g.ow * g.cin * g.cout * 25;
  return [direct, winograd ? 36 * Math.ceil(g.oh / 2) * Math.ceil(g.ow / 2) * g.cin * g.cout : direct];
}

type Pass = 'forward' | 'gradInput' | 'gradWeight';
/**
 * The multiply-adds of one layer's pass. A Conv2d's input gradient is a forward conv of the flipped
 * kernel (channels swapped); a ConvTranspose2d(a→b) runs forward as that input gradient of a conv
 * b→a, its input gradient as the conv b→a itself, its weight gradient as the conv b→a's.
 */
function layerMacs(l: Layer, pass: Pass): [number, number] {
  if (l.fc) return [l.cin * l.cout, l.cin * l.cout];
  const g = l.transposed ? geom(l.cout, l.cin, l.hw) : geom(l.cin, l.cout, l.hw);
  const flipped = geom(g.cout, g.cin, g.h);
  const asForward = (l.transposed ? pass === 'gradInput' : pass === 'forward');
  if (pass === 'gradWeight') return convMacs(g, usesWinogradGradWeight(g));
  return asForward ? convMacs(g, usesWinograd(g)) : convMacs(flipped, usesWinograd(flipped));
}

interface Work { workload: string; directMacs: number; runMacs: number }
function workOf(workload: string, layers: Layer[], passes: (l: Layer, i: number) => Pass[]): Work {
  let directMacs = 0, runMacs = 0;
  layers.forEach((l, i) => {
    for (const p of passes(l, i)) { const [d, r] = layerMacs(l, p); directMacs += d; runMacs += r; }
  });
  return { workload, directMacs, runMacs };
}
// The input images need no gradient, so the first conv computes no input gradient.
const training = (_l: Layer, i: number): Pass[] => (i === 0 ? ['forward', 'gradWeight'] : ['forward', 'gradInput', 'gradWeight']);
const works: Work[] = [
  workOf('infer', encoder, () => ['forward']),
  workOf('svdd_epoch', encoder, training),
  workOf('ae_epoch', [...encoder, ...decoder], training),
];

// ---------------------------------------------------------------------------------------------
// 4. Against a bench/run.ts result.

interface BestRatio { net: string; workload: string; ours: number; oursThreads: number; torch: number; torchThreads: number; ratio: number }
function newestBench(): string | undefined {
  let files: string[];
  try { files = readdirSync(resultsDir).filter((f) => /^bench-\d{4}-\d\d-\d\dT[\d-]+\.json$/.test(f)).sort(); } catch { return undefined; }
  for (const f of files.reverse()) {
    const d = JSON.parse(readFileSync(join(resultsDir, f), 'utf8')) as { bestRatios?: unknown[] };
    if (Array.isArray(d.bestRatios) && d.bestRatios.length > 0) return join(resultsDir, f);
  }
  return undefined;
}

const feat = wasmFeatures();
const threads = availableParallelism();
console.log(`${cpus()[0]?.model ?? 'cpu'}, ${threads} cores; wasm relaxed SIMD: ${feat.relaxedSimd ? 'yes (madd may fuse)' : 'no'}`);
const peaks = {
  madd1: await peakGflops(peakModule(feat.relaxedSimd), 1),
  maddAll: await peakGflops(peakModule(feat.relaxedSimd), threads),
  mulAdd1: await peakGflops(peakModule(false), 1),
  mulAddAll: await peakGflops(peakModule(false), threads),
};
console.log(`wasm f32x4 peak, GFLOP/s: ${feat.relaxedSimd ? 'relaxed madd' : 'mul + add'} ${peaks.madd1.toFixed(1)} (1 thread), ${peaks.maddAll.toFixed(1)} (${threads} threads); mul + add ${peaks.mulAdd1.toFixed(1)} / ${peaks.mulAddAll.toFixed(1)}`);
const native = [1, threads].map(nativeGflops);
for (const n of native) console.log(typeof n === 'string' ? `native: skipped, ${n}` : `native sgemm 2048² (PyTorch), ${n.threads} thread(s): ${n.gflops.toFixed(1)} GFLOP/s`);
const nativeBest = Math.max(0, ...native.map((n) => (typeof n === 'string' ? 0 : n.gflops)));

console.log('\nCIFAR-10 work per image (MFLOP = 2 × multiply-adds; convolutions and fc only):');
for (const w of works) console.log(`  ${w.workload.padEnd(11)} direct ${(2 * w.directMacs / 1e6).toFixed(1).padStart(6)}  as the wasm backend runs it ${(2 * w.runMacs / 1e6).toFixed(1).padStart(6)}`);

const from = values.from ?? newestBench();
interface Row extends Work { ours: number; torch: number; ratio: number; oursGflops: number; oursShareOfPeak: number; torchGflops: number; torchShareOfNative: number | null; needGflopsFor2x: number; needShareOfPeak: number }
const rows: Row[] = [];
if (from === undefined) console.log('\nno bench/run.ts result with best ratios in bench/results: run `npx tsx bench/run.ts --nets cifar` first, or pass --from');
else {
  const bench = JSON.parse(readFileSync(from, 'utf8')) as { bestRatios: BestRatio[] };
  console.log(`\nagainst ${from}:`);
  console.log('workload    ours img/s  GFLOP/s run  % wasm peak | PyTorch img/s  GFLOP/s direct  % native | ratio | 2× PyTorch needs GFLOP/s run  = × wasm peak');
  for (const w of works) {
    const b = bench.bestRatios.find((r) => r.net === 'cifar' && r.workload === w.workload);
    if (!b) continue;
    const oursGflops = 2 * w.runMacs * b.ours / 1e9, torchGflops = 2 * w.directMacs * b.torch / 1e9;
    const needGflopsFor2x = 2 * w.runMacs * 2 * b.torch / 1e9;
    const row: Row = {
      ...w, ours: b.ours, torch: b.torch, ratio: b.ratio, oursGflops, oursShareOfPeak: oursGflops / peaks.maddAll,
      torchGflops, torchShareOfNative: nativeBest > 0 ? torchGflops / nativeBest : null, needGflopsFor2x, needShareOfPeak: needGflopsFor2x / peaks.maddAll,
    };
    rows.push(row);
    console.log(`${w.workload.padEnd(11)} ${b.ours.toFixed(0).padStart(10)}  ${oursGflops.toFixed(1).padStart(11)}  ${(100 * row.oursShareOfPeak).toFixed(0).padStart(10)}% | ${b.torch.toFixed(0).padStart(13)}  ${torchGflops.toFixed(1).padStart(14)}  ${row.torchShareOfNative === null ? '     n/a' : `${(100 * row.torchShareOfNative).toFixed(0).padStart(7)}%`} | ${b.ratio.toFixed(2).padStart(5)} | ${needGflopsFor2x.toFixed(1).padStart(28)}  = ${row.needShareOfPeak.toFixed(2)}×`);
  }
}

mkdirSync(resultsDir, { recursive: true });
const file = join(resultsDir, `roofline-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.json`);
writeFileAtomic(file, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, threads, relaxedSimd: feat.relaxedSimd, peaksGflops: peaks, native, works, from: from ?? null, rows }, null, 2)}\n`);
console.log(`\nwrote ${file}`);
