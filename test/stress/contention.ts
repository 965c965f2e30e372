/**
 * The contention stress suite: the wasm backend's threaded kernels, repeated many times while
 * busy-loop processes compete with its threads for the cores, as on a shared machine. A hand-off
 * or barrier bug between the main thread and a worker (a job run twice, a phase started before
 * another thread finished the last one, scratch reused too early) shows up only when a thread is
 * descheduled at the wrong moment, which an idle machine almost never does: hence the busy loops.
 *
 * Every case (GEMM, packed / direct / Winograd convolutions in all three directions, BatchNorm,
 * pooling, upsampling, leaky ReLU, Adam) runs `repeats` times, interleaved with the others as in a
 * training step (so each call starts over an arena the previous kernels wrote). Each result is
 * compared bitwise with the case's first result and, for the first, within a tolerance with the
 * `ts` reference kernels in float64. Then a few CIFAR-10 training steps (LeNet encoder with the
 * Deep SVDD loss, and the autoencoder; the weight gradients of conv2 / conv3 take the Winograd
 * path) run twice from the same seed: losses and parameters must be byte-identical.
 *
 * test/stress.test.ts runs a short fixed version in `npm test`; `npm run stress` (test/stress/main.ts)
 * a longer one with flags.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import * as ag from '../../src/autograd/index.ts';
import { Adam } from '../../src/nn/index.ts';
import { buildAutoencoder, buildEncoder } from '../../src/svdd/networks.ts';
import { reconstructionError } from '../../src/svdd/trainer.ts';
import { useBackend } from '../../src/tensor/backends.ts';
import { Rng, randNormal, randUniform } from '../../src/tensor/creation.ts';
import { kernels } from '../../src/tensor/kernels/registry.ts';
import { tsKernels } from '../../src/tensor/kernels/ts/index.ts';
import type { ConvGeom, KernelSet } from '../../src/tensor/kernels/types.ts';
import { setWinograd, usesWinograd, usesWinogradGradWeight } from '../../src/tensor/kernels/wasm/ops.ts';
import { WasmRuntime } from '../../src/tensor/kernels/wasm/runtime.ts';
import { allocArray, tensorFromArray, type Tensor } from '../../src/tensor/tensor.ts';
import { convGeom as geom, randomFloats } from '../helpers.ts';

export interface StressOptions {
  /** Runs of every kernel case (the first one is the reference for the others). */
  repeats: number;
  /** Batch of the CIFAR-shaped kernel cases (MNIST-shaped ones use at least 16, so they use every thread). */
  batch: number;
  /** wasm threads (the backend is activated with this many; 2 on this project's machine). */
  threads: number;
  /** Busy-loop child processes competing for the cores. */
  busy: number;
  /**
   * Probability with which the main thread stalls (sleeps up to `stallMs`) at the runtime's
   * scheduling points (WasmRuntime.schedulingHook: between publishing a job and waking its worker,
   * before running its own share, after the barrier; see installStalls): what being descheduled
   * there does, made frequent instead of left to luck. 0: busy loops only.
   */
  stall: number;
  stallMs: number;
  /** Training steps per determinism run (0: no training runs). */
  trainSteps: number;
  /** Batch of the training runs. */
  trainBatch: number;
  /** Only cases whose name matches. */
  filter?: RegExp;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface KernelReport {
  name: string;
  repeats: number;
  /** Repeats whose result differs in any bit from the first. */
  mismatches: number;
  /** Largest error (relative to the largest reference value) of a differing repeat against the reference. */
  worstMismatchError: number;
  /** Error of the first result against the float64 `ts` reference, and its tolerance. */
  referenceError: number;
  tolerance: number;
  /** Whether some call of this case gave a worker thread work (false for single-threaded kernels). */
  usedWorkers: boolean;
  /** Expected to use the workers (every kernel here except the max-pooling gradient and Adam). */
  threaded: boolean;
}

export interface TrainReport {
  name: string;
  steps: number;
  losses: [number[], number[]];
  identical: boolean;
  /** What differed first, when not identical. */
  difference?: string;
}

export interface StressReport {
  kernels: KernelReport[];
  training: TrainReport[];
  /** Stalls injected at the runtime's scheduling points. */
  stalls: number;
  seconds: number;
  /** Cases with mismatches or a reference error over tolerance, training runs that differ, threaded cases that ran on one thread. */
  failures: string[];
}

export const CI_OPTIONS: StressOptions = { repeats: 50, batch: 8, threads: 2, busy: 2, stall: 0.5, stallMs: 2, trainSteps: 3, trainBatch: 32 };
export const DEFAULT_OPTIONS: StressOptions = { repeats: 200, batch: 8, threads: 2, busy: 2, stall: 0.5, stallMs: 2, trainSteps: 6, trainBatch: 64 };

// ---------------------------------------------------------------------------------------------
// Busy loops

/**
 * `for (;;) {}`, except that it exits once its parent (argv[1]) is gone, so that not even a parent
 * killed by SIGKILL (no exit hook runs) leaves a core spinning. Checked every 2^24 turns (~10 ms).
 */
const BUSY_LOOP = `const parent = Number(process.argv[1]);
for (let i = 1; ; i++) if ((i & 0xffffff) === 0) { try { process.kill(parent, 0); } catch { process.exit(0); } }`;

const liveChildren = new Set<ChildProcess>();
/** However the process ends, no busy loop outlives it. */
function killLiveChildren(): void { for (const c of liveChildren) c.kill('SIGKILL'); }
let exitHookInstalled = false;

/** Starts `count` processes that spin forever; the returned function kills them and waits for them to exit. */
export async function startBusyLoops(count: number): Promise<() => Promise<void>> {
  if (!exitHookInstalled) { process.on('exit', killLiveChildren); exitHookInstalled = true; }
  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(async (c) => {
      if (c.exitCode === null && c.signalCode === null) {
        const exited = once(c, 'exit');
        c.kill('SIGKILL');
        await exited;
      }
      liveChildren.delete(c);
    }));
  };
  try {
    for (let i = 0; i < count; i++) {
      const c = spawn(process.execPath, ['-e', BUSY_LOOP, String(process.pid)], { stdio: 'ignore' });
      children.push(c);
      liveChildren.add(c);
      await once(c, 'spawn');
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return stop;
}

/** Runs fn with `count` busy loops running, killing them afterwards whatever happens. */
export async function withBusyLoops<T>(count: number, fn: () => Promise<T> | T): Promise<T> {
  const stop = await startBusyLoops(count);
  try {
    return await fn();
  } finally {
    await stop();
  }
}

/**
 * Stalls the main thread at the runtime's scheduling points (a seeded sequence, so a run's stalls
 * repeat): between publishing a job and waking its worker with probability p, for maxMs/4 to maxMs;
 * before its own share with probability p/2; and after the barrier of any run that stalled before a
 * wake-up (else with probability p/4), so that what a worker still does after reporting done lands
 * in the results before they are checked. Returns the uninstaller and a stall counter.
 */
function installStalls(p: number, maxMs: number): { count: () => number; restore: () => void } {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  let s = 0x9e3779b9, n = 0, wokeLate = false;
  const rand = (): number => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
  const stall = (ms: number): void => { n++; Atomics.wait(sleeper, 0, 0, ms); };
  if (p > 0) {
    WasmRuntime.schedulingHook = (point) => {
      if (point === 'notify') {
        if (rand() < p) { stall(maxMs * (0.25 + 0.75 * rand())); wokeLate = true; }
      } else if (point === 'own') {
        if (rand() < p / 2) stall(maxMs * rand());
      } else if (wokeLate || rand() < p / 4) {
        wokeLate = false;
        stall(maxMs / 2);
      }
    };
  }
  return { count: () => n, restore: () => { WasmRuntime.schedulingHook = null; } };
}

// ---------------------------------------------------------------------------------------------
// Kernel cases

/** One kernel call on fixed operands. `run` writes its outputs (returned, the same arrays every call). */
interface Case {
  name: string;
  /** Outputs of one call (arrays owned by the case, overwritten by each call). */
  run(ks: KernelSet): ArrayLike<number>[];
  /** The same outputs from the float64 reference. */
  reference(): ArrayLike<number>[];
  tolerance: number;
  threaded: boolean;
}

/** A float32 array of n values, allocated as the engine does (large ones in wasm memory when wasm is active). */
function engineArray(n: number, seed?: number): Float32Array {
  const a = allocArray('float32', n) as Float32Array;
  if (seed !== undefined) a.set(randomFloats(n, seed));
  return a;
}
const f64 = (a: Float32Array): Float64Array => Float64Array.from(a);

function gemmCase(label: string, m: number, n: number, k: number, transA: boolean, transB: boolean, acc: boolean, seed: number): Case {
  const a = engineArray(m * k, seed), b = engineArray(k * n, seed + 1), c0 = randomFloats(m * n, seed + 2);
  const c = engineArray(m * n);
  return {
    name: `gemm ${label} (${m}x${n}x${k}${transA ? ', Aᵀ' : ''}${transB ? ', Bᵀ' : ''}${acc ? ', accumulate' : ''})`,
    tolerance: 1e-5, threaded: true,
    run(ks) {
      if (acc) c.set(c0); else c.fill(NaN);
      ks.gemm(a, b, c, m, n, k, transA, transB, acc);
      return [c];
    },
    reference() {
      const want = Float64Array.from(c0);
      tsKernels.gemm(f64(a), f64(b), want, m, n, k, transA, transB, acc);
      return [want];
    },
  };
}

function convCases(label: string, g: ConvGeom, seed: number): Case[] {
  const x = engineArray(g.n * g.cin * g.h * g.w, seed), w = engineArray(g.cout * g.cin * g.kh * g.kw, seed + 1);
  const gy = engineArray(g.n * g.cout * g.oh * g.ow, seed + 2);
  const y = engineArray(gy.length), gx = engineArray(x.length), gw = engineArray(w.length);
  const tolerance = 1e-4;
  return [
    {
      name: `${label}: forward`, tolerance, threaded: true,
      run(ks) { y.fill(NaN); ks.conv2d(x, w, y, g); return [y]; },
      reference() { const want = new Float64Array(y.length); tsKernels.conv2d(f64(x), f64(w), want, g); return [want]; },
    },
    {
      name: `${label}: input gradient`, tolerance, threaded: true,
      run(ks) { gx.fill(NaN); ks.conv2dGradInput(gy, w, gx, g); return [gx]; },
      reference() { const want = new Float64Array(gx.length); tsKernels.conv2dGradInput(f64(gy), f64(w), want, g); return [want]; },
    },
    {
      name: `${label}: weight gradient`, tolerance, threaded: true,
      run(ks) { gw.fill(NaN); ks.conv2dGradWeight(x, gy, gw, g); return [gw]; },
      reference() { const want = new Float64Array(gw.length); tsKernels.conv2dGradWeight(f64(x), f64(gy), want, g); return [want]; },
    },
  ];
}

function pointwiseCases(batch: number): Case[] {
  const cases: Case[] = [];
  // BatchNorm after CIFAR conv2: [batch, 64, 16·16].
  {
    const [outer, c, inner] = [batch, 64, 256], n = outer * c * inner;
    const x = engineArray(n, 501), gy = engineArray(n, 502), y = engineArray(n), gx = engineArray(n);
    const mean = new Float32Array(c), varB = new Float32Array(c);
    const mu = Float32Array.from(randomFloats(c, 503), (v) => v / 10), invStd = Float32Array.from(randomFloats(c, 504), (v) => 1 + Math.abs(v));
    cases.push({
      name: `BatchNorm moments [${outer}, ${c}, ${inner}]`, tolerance: 1e-5, threaded: true,
      run(ks) { mean.fill(NaN); varB.fill(NaN); ks.channelMoments(x, mean, varB, outer, c, inner); return [mean, varB]; },
      reference() {
        const m = new Float64Array(c), v = new Float64Array(c);
        tsKernels.channelMoments(f64(x), m, v, outer, c, inner);
        return [m, v];
      },
    }, {
      name: `BatchNorm normalisation [${outer}, ${c}, ${inner}]`, tolerance: 1e-6, threaded: true,
      run(ks) { y.fill(NaN); ks.channelNormalize(x, mu, invStd, y, outer, c, inner); return [y]; },
      reference() { const want = new Float64Array(n); tsKernels.channelNormalize(f64(x), f64(mu), f64(invStd), want, outer, c, inner); return [want]; },
    }, {
      name: `BatchNorm gradient [${outer}, ${c}, ${inner}]`, tolerance: 1e-5, threaded: true,
      run(ks) { gx.fill(NaN); ks.batchNormGrad(gy, x, invStd, gx, outer, c, inner); return [gx]; },
      reference() { const want = new Float64Array(n); tsKernels.batchNormGrad(f64(gy), f64(x), f64(invStd), want, outer, c, inner); return [want]; },
    });
  }
  // Max pooling after CIFAR conv1 ([batch, 32, 32, 32]) and its gradient.
  {
    const [n, c, h, w] = [batch, 32, 32, 32], size = n * c * h * w, osize = size / 4;
    const x = engineArray(size, 511), gy = engineArray(osize, 512), y = engineArray(osize), gx = engineArray(size);
    const argmax = new Int32Array(osize), fixedArgmax = new Int32Array(osize);
    tsKernels.maxPool2d(f64(x), new Float64Array(osize), fixedArgmax, n, c, h, w, 2);
    cases.push({
      name: `2x2 max pooling [${n}, ${c}, ${h}, ${w}]`, tolerance: 0, threaded: true,
      run(ks) { y.fill(NaN); argmax.fill(-1); ks.maxPool2d(x, y, argmax, n, c, h, w, 2); return [y, argmax]; },
      reference() {
        const want = new Float64Array(osize), am = new Int32Array(osize);
        tsKernels.maxPool2d(f64(x), want, am, n, c, h, w, 2);
        return [want, am];
      },
    }, {
      name: `2x2 max pooling gradient [${n}, ${c}, ${h}, ${w}]`, tolerance: 0, threaded: false,
      run(ks) { gx.fill(0); ks.maxPool2dGrad(gy, fixedArgmax, gx); return [gx]; },
      reference() { const want = new Float64Array(size); tsKernels.maxPool2dGrad(f64(gy), fixedArgmax, want); return [want]; },
    });
  }
  // x2 upsampling in the CIFAR decoder ([batch, 32, 16, 16] → 32x32) and its gradient.
  {
    const [nc, h, w] = [batch * 32, 16, 16], small = nc * h * w;
    const x = engineArray(small, 521), gy = engineArray(4 * small, 522), y = engineArray(4 * small), gx = engineArray(small);
    cases.push({
      name: `x2 upsampling [${batch}, 32, ${h}, ${w}]`, tolerance: 0, threaded: true,
      run(ks) { y.fill(NaN); ks.upsampleNearest(x, y, nc, h, w, 2); return [y]; },
      reference() { const want = new Float64Array(4 * small); tsKernels.upsampleNearest(f64(x), want, nc, h, w, 2); return [want]; },
    }, {
      name: `x2 upsampling gradient [${batch}, 32, ${h}, ${w}]`, tolerance: 1e-6, threaded: true,
      run(ks) { gx.fill(NaN); ks.upsampleNearestGrad(gy, gx, nc, h, w, 2); return [gx]; },
      reference() { const want = new Float64Array(small); tsKernels.upsampleNearestGrad(f64(gy), want, nc, h, w, 2); return [want]; },
    });
  }
  // Leaky ReLU after CIFAR conv1 and its gradient.
  {
    const n = batch * 32 * 32 * 32, slope = 0.01;
    const x = engineArray(n, 531), gy = engineArray(n, 532), y = engineArray(n), gx = engineArray(n);
    cases.push({
      name: `leaky ReLU (${n})`, tolerance: 1e-6, threaded: true,
      run(ks) { y.fill(NaN); ks.unary('leakyRelu', x, y, slope); return [y]; },
      reference() { const want = new Float64Array(n); tsKernels.unary('leakyRelu', f64(x), want, slope); return [want]; },
    }, {
      name: `leaky ReLU gradient (${n})`, tolerance: 1e-6, threaded: true,
      run(ks) { gx.fill(NaN); ks.unaryGrad('leakyRelu', x, y, gy, gx, slope); return [gx]; },
      reference() {
        const want = new Float64Array(n);
        tsKernels.unaryGrad('leakyRelu', f64(x), new Float64Array(n), f64(gy), want, slope);
        return [want];
      },
    });
  }
  return cases;
}

/** Three Adam steps on the CIFAR-10 LeNet's parameter shapes (plain TypeScript on wasm-memory storage). */
function adamCase(): Case {
  const shapes = [[32, 3, 5, 5], [64, 32, 5, 5], [128, 64, 5, 5], [128, 2048]];
  const inits = shapes.map((s, i) => randomFloats(s.reduce((a, b) => a * b, 1), 541 + i));
  const grads = shapes.map((s, i) => [0, 1, 2].map((step) => randomFloats(s.reduce((a, b) => a * b, 1), 551 + 10 * i + step)));
  const steps = (alloc: (n: number) => Float32Array): Float32Array[] => {
    const params: Tensor[] = shapes.map((s, i) => { const a = alloc(inits[i]!.length); a.set(inits[i]!); return tensorFromArray(a, s); });
    const opt = new Adam(params, { lr: 1e-3, weightDecay: 0.5e-6 });
    for (let step = 0; step < 3; step++) {
      params.forEach((p, i) => { const g = alloc(p.size); g.set(grads[i]![step]!); p.grad = tensorFromArray(g, p.shape); });
      opt.step();
    }
    return params.map((p) => p.storage as Float32Array);
  };
  return {
    name: 'Adam, 3 steps on the CIFAR-10 LeNet\'s parameter shapes', tolerance: 0, threaded: false,
    run() { return steps((n) => engineArray(n)); },
    reference() { return steps((n) => new Float32Array(n)).map(f64); },
  };
}

/** The kernel cases at a batch (CIFAR-10 shapes; MNIST shapes at a batch of at least 16). */
export function kernelCases(batch: number): Case[] {
  const mnistBatch = Math.max(16, batch);
  const winograd: [string, ConvGeom][] = [
    ['Winograd CIFAR conv2 32→64 @16x16', geom(batch, 32, 16, 16, 64, 5, 5, 1, 2)],
    ['Winograd CIFAR conv3 64→128 @8x8', geom(batch, 64, 8, 8, 128, 5, 5, 1, 2)],
  ];
  for (const [label, g] of winograd) {
    if (!usesWinograd(g) || !usesWinogradGradWeight(g)) throw new Error(`${label} does not take the Winograd path`);
  }
  return [
    gemmCase('square', 256, 256, 256, false, false, false, 1),
    gemmCase('fc1 forward', batch, 128, 2048, false, true, false, 11),
    gemmCase('fc1 weight gradient', 128, 2048, batch, true, false, false, 21),
    gemmCase('fc1 input gradient', batch, 2048, 128, false, false, false, 31),
    gemmCase('ragged', 65, 97, 300, true, true, true, 41),
    gemmCase('ragged', 200, 130, 129, false, true, true, 51),
    // cout 32: packed im2col forward and weight gradient; the input gradient (3 channels) runs direct.
    ...convCases('packed conv CIFAR conv1 3→32 @32x32', geom(batch, 3, 32, 32, 32, 5, 5, 1, 2), 101),
    // Stride 2: the input gradient is one GEMM per image plus col2im.
    ...convCases('packed conv 3x3 stride 2, 32→64 @32x32', geom(batch, 32, 32, 32, 64, 3, 3, 2, 1), 111),
    // MNIST conv1 / conv2: direct forward, direct (dotNT) weight gradient.
    ...convCases('direct conv MNIST conv1 1→8 @28x28', geom(mnistBatch, 1, 28, 28, 8, 5, 5, 1, 2), 121),
    ...convCases('direct conv MNIST conv2 8→4 @14x14', geom(mnistBatch, 8, 14, 14, 4, 5, 5, 1, 2), 131),
    ...winograd.flatMap(([label, g], i) => convCases(label, g, 141 + 10 * i)),
    ...pointwiseCases(batch),
    adamCase(),
  ];
}

/** max|got − want| / max|want| (0 when both are 0); Infinity when got has a NaN where want does not. */
function relToMax(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let diff = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
    if (diff === Infinity) break;
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return diff === 0 ? 0 : diff / scale;
}

const bytes = (a: ArrayLike<number>): Buffer => {
  const v = a as Float32Array;
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
};

/** Counts, while installed, the runtime calls that handed a worker thread some work. */
function countWorkerRuns(): { count: () => number; restore: () => void } {
  const proto = WasmRuntime.prototype as unknown as { run(lists: number[][]): void };
  const original = proto.run;
  let n = 0;
  proto.run = function (this: WasmRuntime, lists: number[][]) {
    if (lists.some((l, t) => t > 0 && l.length > 0)) n++;
    original.call(this, lists);
  };
  return { count: () => n, restore: () => { proto.run = original; } };
}

// ---------------------------------------------------------------------------------------------
// Training determinism

interface TrainRun { losses: number[]; params: Buffer }

function trainOnce(kind: 'svdd' | 'autoencoder', steps: number, batch: number, seed: number): TrainRun {
  const rng = new Rng(`stress-${kind}-${seed}`);
  const batches = Array.from({ length: steps }, () => randUniform([batch, 3, 32, 32], 0, 1, rng));
  const losses: number[] = [];
  if (kind === 'svdd') {
    const net = buildEncoder('cifar10_LeNet', { seed });
    const centerC = randNormal([net.repDim], 0, 0.1, rng);
    const opt = new Adam(net.parameters(), { lr: 1e-4, weightDecay: 0.5e-6 });
    for (const x of batches) {
      opt.zeroGrad();
      const loss = ag.mean(ag.sum(ag.square(ag.sub(net.forward(x), centerC)), 1));
      ag.backward(loss);
      opt.step();
      losses.push(loss.item());
      ag.releaseGraph(loss);
    }
    return { losses, params: Buffer.concat(net.parameters().map((p) => Buffer.from(Float32Array.from(p.values()).buffer))) };
  }
  const ae = buildAutoencoder('cifar10_LeNet', { seed });
  const opt = new Adam(ae.parameters(), { lr: 1e-4, weightDecay: 0.5e-3 });
  for (const x of batches) {
    opt.zeroGrad();
    const loss = ag.mean(reconstructionError(ae.forward(x), x));
    ag.backward(loss);
    opt.step();
    losses.push(loss.item());
    ag.releaseGraph(loss);
  }
  return { losses, params: Buffer.concat(ae.parameters().map((p) => Buffer.from(Float32Array.from(p.values()).buffer))) };
}

function compareRuns(a: TrainRun, b: TrainRun): string | undefined {
  const step = a.losses.findIndex((l, i) => !Object.is(l, b.losses[i]));
  if (step >= 0) return `loss of step ${step}: ${a.losses[step]} vs ${b.losses[step]}`;
  if (!a.params.equals(b.params)) {
    const x = new Float32Array(a.params.buffer, a.params.byteOffset, a.params.byteLength / 4);
    const y = new Float32Array(b.params.buffer, b.params.byteOffset, b.params.byteLength / 4);
    const i = x.findIndex((v, j) => !Object.is(v, y[j]));
    return `parameter value ${i}: ${x[i]} vs ${y[i]}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The suite

/**
 * Runs the suite under busy loops (killed at the end, whatever happens). The wasm backend stays
 * active afterwards; callers switch back (useBackend('ts')) and shut backends down as they need.
 */
export async function runStress(opts: StressOptions): Promise<StressReport> {
  const log = opts.log ?? ((): void => undefined);
  const t0 = performance.now();
  // On even under SVDD_WINOGRAD=0: the Winograd kernels are the ones this suite was written for.
  const priorWinograd = setWinograd(true);
  try {
    await useBackend('wasm', opts.threads);
    const ks = kernels('float32');
    const cases = kernelCases(opts.batch).filter((c) => !opts.filter || opts.filter.test(c.name));
    log(`${cases.length} kernel cases × ${opts.repeats} repeats, batch ${opts.batch}, ${opts.threads} threads, ${opts.busy} busy loops, `
      + `stalls ${opts.stall > 0 ? `p = ${opts.stall}, ≤ ${opts.stallMs} ms` : 'off'}`);
    const reports: KernelReport[] = cases.map((c) => ({
      name: c.name, repeats: 0, mismatches: 0, worstMismatchError: 0, referenceError: 0, tolerance: c.tolerance,
      usedWorkers: false, threaded: c.threaded,
    }));
    const first: ArrayLike<number>[][] = [];
    const references: ArrayLike<number>[][] = [];
    const training: TrainReport[] = [];
    let stalls = 0;

    await withBusyLoops(opts.busy, async () => {
      const counter = countWorkerRuns();
      const staller = installStalls(opts.stall, opts.stallMs);
      try {
        for (let r = 0; r < opts.repeats; r++) {
          cases.forEach((c, i) => {
            const report = reports[i]!;
            const before = counter.count();
            const outs = c.run(ks);
            if (counter.count() > before) report.usedWorkers = true;
            report.repeats++;
            if (r === 0) {
              first[i] = outs.map((o) => (o as Float32Array).slice());
              return;
            }
            if (outs.every((o, j) => bytes(o).equals(bytes(first[i]![j]!)))) return;
            report.mismatches++;
            references[i] ??= c.reference();
            const err = Math.max(...outs.map((o, j) => relToMax(o, references[i]![j]!)));
            report.worstMismatchError = Math.max(report.worstMismatchError, err);
            log(`MISMATCH ${c.name}, repeat ${r}: error ${err.toExponential(2)} against the reference`);
          });
          // Back to the event loop between repeats, so that signals (Ctrl-C) are handled and the busy loops killed.
          await new Promise<void>((resolve) => setImmediate(resolve));
          if ((r + 1) % Math.max(1, Math.round(opts.repeats / 10)) === 0) {
            log(`repeat ${r + 1}/${opts.repeats}: ${reports.reduce((s, k) => s + k.mismatches, 0)} mismatches so far (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
          }
        }
      } finally {
        counter.restore();
      }

      try {
        for (const kind of ['svdd', 'autoencoder'] as const) {
          if (opts.trainSteps <= 0 || (opts.filter && !opts.filter.test(`training ${kind}`))) continue;
          const a = trainOnce(kind, opts.trainSteps, opts.trainBatch, 7), b = trainOnce(kind, opts.trainSteps, opts.trainBatch, 7);
          const difference = compareRuns(a, b);
          training.push({ name: `CIFAR-10 LeNet ${kind === 'svdd' ? 'encoder, Deep SVDD loss' : 'autoencoder'}, batch ${opts.trainBatch}`,
            steps: opts.trainSteps, losses: [a.losses, b.losses], identical: difference === undefined, ...(difference ? { difference } : {}) });
          log(`training ${kind}: ${difference ? `DIFFERS (${difference})` : 'identical'}`);
        }
      } finally {
        stalls = staller.count();
        staller.restore();
      }
    });

    // Each case's first result against the reference (computed after the busy loops are gone).
    cases.forEach((c, i) => {
      if (!first[i]) return;
      const want = references[i] ?? c.reference();
      reports[i]!.referenceError = Math.max(...first[i]!.map((o, j) => relToMax(o, want[j]!)));
    });

    const failures: string[] = [];
    for (const k of reports) {
      if (k.mismatches > 0) failures.push(`${k.name}: ${k.mismatches} of ${k.repeats} results differ from the first (worst error ${k.worstMismatchError.toExponential(2)})`);
      if (!(k.referenceError <= k.tolerance)) failures.push(`${k.name}: error ${k.referenceError.toExponential(2)} against the reference exceeds ${k.tolerance}`);
      if (k.threaded && !k.usedWorkers && opts.threads > 1) failures.push(`${k.name}: ran on one thread (shape too small to split?)`);
    }
    for (const t of training) if (!t.identical) failures.push(`${t.name}: two runs from the same seed differ (${t.difference})`);
    return { kernels: reports, training, stalls, seconds: (performance.now() - t0) / 1000, failures };
  } finally {
    setWinograd(priorWinograd);
  }
}

/** The report as a table. */
export function formatReport(r: StressReport): string {
  const lines = ['case | repeats | differ from first | error vs reference (tolerance)', '---|---|---|---'];
  for (const k of r.kernels) {
    lines.push(`${k.name} | ${k.repeats} | ${k.mismatches}${k.mismatches ? ` (worst ${k.worstMismatchError.toExponential(2)})` : ''} | `
      + `${k.referenceError.toExponential(2)} (${k.tolerance})${k.threaded && !k.usedWorkers ? ' ONE THREAD' : ''}`);
  }
  for (const t of r.training) {
    lines.push(`${t.name}: ${t.steps} steps twice, ${t.identical ? 'byte-identical' : `DIFFERENT: ${t.difference}`}; losses ${t.losses[0].map((l) => l.toPrecision(7)).join(', ')}`);
  }
  lines.push(`${r.failures.length === 0 ? 'PASS' : `FAIL (${r.failures.length})`} in ${r.seconds.toFixed(1)} s (${r.stalls} stalls injected)`);
  return lines.join('\n');
}
