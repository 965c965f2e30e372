/**
 * Every threaded wasm kernel under the two extreme schedules of its parallel phases: each phase's
 * per-thread command lists run one after another on the main thread, in thread order and in reverse
 * (WasmRuntime.serialSchedule), over an arena filled with NaN beforehand. A plan in which one thread
 * reads what another writes in the same phase, or that depends on scratch left over from an earlier
 * call, gives different bits under one of these schedules; a correct one gives exactly the bits of
 * the parallel run. Deterministic: unlike a stress run, it needs no luck with the OS scheduler.
 */
import { expect } from 'chai';
import type { ConvGeom } from '../src/tensor/kernels/types.ts';
import { buildKernelModule } from '../src/tensor/kernels/wasm/kernels.ts';
import { wasmFeatures } from '../src/tensor/kernels/wasm/index.ts';
import {
  type WinogradTile, conv2dGradInputWasm, conv2dGradWeightWasm, conv2dWasm, gemmWasm, setWinograd, setWinogradTile, usesWinograd,
  usesWinogradGradWeight,
} from '../src/tensor/kernels/wasm/ops.ts';
import {
  activationWasm, batchNormGradWasm, channelMomentsWasm, channelNormalizeWasm, leakyWasm, maxPool2Wasm, upsample2Wasm,
} from '../src/tensor/kernels/wasm/pointwise-ops.ts';
import { WasmRuntime } from '../src/tensor/kernels/wasm/runtime.ts';
import { convGeom as geom, randomFloats as rand } from './helpers.ts';

/** The arena starts after the workers' control blocks (runtime.ts ARENA_BASE). */
const ARENA_BASE = 4096;

/** A kernel call on fixed inputs, returning its outputs (fresh arrays, filled with NaN before the call). */
type Case = [label: string, run: (rt: WasmRuntime) => ArrayLike<number>[]];

const out = (n: number): Float32Array => new Float32Array(n).fill(NaN);

function convCases(label: string, g: ConvGeom, seed: number): Case[] {
  const x = rand(g.n * g.cin * g.h * g.w, seed), w = rand(g.cout * g.cin * g.kh * g.kw, seed + 1);
  const gy = rand(g.n * g.cout * g.oh * g.ow, seed + 2);
  return [
    [`${label}: conv2d`, (rt) => { const y = out(gy.length); conv2dWasm(rt, x, w, y, g); return [y]; }],
    [`${label}: conv2dGradInput`, (rt) => { const gx = out(x.length); conv2dGradInputWasm(rt, gy, w, gx, g); return [gx]; }],
    [`${label}: conv2dGradWeight`, (rt) => { const gw = out(w.length); conv2dGradWeightWasm(rt, x, gy, gw, g); return [gw]; }],
  ];
}

/** The same cases under Winograd tile 4 (F(4×4, 5×5): its own plans in all three directions). */
function tile4(cases: Case[]): Case[] {
  return cases.map(([label, run]) => [`${label} (tile 4)`, (rt) => {
    const prior = setWinogradTile(4);
    try { return run(rt); } finally { setWinogradTile(prior); }
  }]);
}

function gemmCases(): Case[] {
  const cases: Case[] = [];
  let seed = 100;
  for (const [m, n, k] of [[65, 97, 300], [128, 96, 300], [33, 260, 517]] as const) {
    for (const transA of [false, true]) for (const transB of [false, true]) for (const acc of [false, true]) {
      const a = rand(m * k, seed++), b = rand(k * n, seed++), c0 = rand(m * n, seed++);
      cases.push([`gemm ${m}x${n}x${k} tA=${transA} tB=${transB} acc=${acc}`, (rt) => {
        const c = acc ? c0.slice() : out(m * n);
        gemmWasm(rt, a, b, c, m, n, k, transA, transB, acc);
        return [c];
      }]);
    }
  }
  return cases;
}

function pointwiseCases(): Case[] {
  const n = (1 << 17) + 3, x = rand(n, 50), gy = rand(n, 51), yy = rand(n, 52);
  const [outer, c, inner] = [8, 32, 16 * 16], bn = outer * c * inner;
  const bx = rand(bn, 53), bgy = rand(bn, 54), mean = rand(c, 55), invStd = Float32Array.from(rand(c, 56), (v) => 1 + Math.abs(v));
  const [planes, h, w] = [8 * 32, 16, 16], px = rand(planes * h * w, 57), ugy = rand(4 * planes * h * w, 58);
  return [
    ['leaky ReLU', (rt) => { const y = out(n); leakyWasm(rt, x, null, y, n, 0.01); return [y]; }],
    ['leaky ReLU gradient', (rt) => { const g = out(n); leakyWasm(rt, x, gy, g, n, 0.01); return [g]; }],
    ['sigmoid', (rt) => { const y = out(n); activationWasm(rt, 'sigmoid', [x], y, n, 0); return [y]; }],
    ['sigmoid gradient', (rt) => { const g = out(n); activationWasm(rt, 'sigmoidGrad', [yy, gy], g, n, 0); return [g]; }],
    ['ELU', (rt) => { const y = out(n); activationWasm(rt, 'elu', [x], y, n, 1); return [y]; }],
    ['ELU gradient', (rt) => { const g = out(n); activationWasm(rt, 'eluGrad', [x, yy, gy], g, n, 1); return [g]; }],
    ['BatchNorm moments', (rt) => {
      const m = out(c), v = out(c);
      channelMomentsWasm(rt, bx, m, v, outer, c, inner);
      return [m, v];
    }],
    ['BatchNorm normalisation', (rt) => { const y = out(bn); channelNormalizeWasm(rt, bx, mean, invStd, y, outer, c, inner); return [y]; }],
    ['BatchNorm gradient', (rt) => { const g = out(bn); batchNormGradWasm(rt, bgy, bx, invStd, g, outer, c, inner); return [g]; }],
    ['2x2 max pooling', (rt) => {
      const y = out(planes * 64), am = new Int32Array(planes * 64).fill(-7);
      maxPool2Wasm(rt, px, y, am, planes, h, w);
      return [y, am];
    }],
    ['x2 upsampling', (rt) => { const y = out(4 * px.length); upsample2Wasm(rt, px, y, planes, h, w, false); return [y]; }],
    ['x2 upsampling gradient', (rt) => { const g = out(px.length); upsample2Wasm(rt, ugy, g, planes, h, w, true); return [g]; }],
  ];
}

/** Bytes of two arrays are equal; else the first differing element. */
function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): string | null {
  const ab = Buffer.from((a as Float32Array).buffer, (a as Float32Array).byteOffset, (a as Float32Array).byteLength);
  const bb = Buffer.from((b as Float32Array).buffer, (b as Float32Array).byteOffset, (b as Float32Array).byteLength);
  if (ab.equals(bb)) return null;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return `element ${i}: ${a[i]} instead of ${b[i]}`;
  return 'lengths differ';
}

describe('wasm kernels under serial schedules (threads 2): the same bits as in parallel', function () {
  this.timeout(120000);
  let rt: WasmRuntime;
  let prior = true, priorTile: WinogradTile = 2;
  before(async function () {
    if (!wasmFeatures().threads) this.skip();
    prior = setWinograd(true);
    // F(2×2) unless a case asks for tile 4 (tile4), whatever the run's SVDD_WINOGRAD_TILE says.
    priorTile = setWinogradTile(2);
    const module = new WebAssembly.Module(buildKernelModule({ relaxedSimd: wasmFeatures().relaxedSimd, shared: true, maximumPages: 32768 }));
    rt = await WasmRuntime.create(module, 2, 32768, true);
  });
  after(async () => { setWinograd(prior); setWinogradTile(priorTile); if (rt) { rt.serialSchedule = null; await rt.dispose(); } });

  const convs: [string, ConvGeom][] = [
    // cout 32: packed im2col forward and weight gradient; the input gradient (cout 3) takes the direct path.
    ['packed 5x5 3 → 32 @16', geom(4, 3, 16, 16, 32, 5, 5, 1, 2)],
    // Stride 2: the input gradient is a GEMM per image plus col2im.
    ['packed 3x3 stride 2, 16 → 32 @32', geom(8, 16, 32, 32, 32, 3, 3, 2, 1)],
    // MNIST conv1 / conv2: direct forward and direct (dotNT) weight gradient.
    ['direct 1 → 8 @28 (MNIST conv1)', geom(16, 1, 28, 28, 8, 5, 5, 1, 2)],
    ['direct 8 → 4 @14 (MNIST conv2)', geom(16, 8, 14, 14, 4, 5, 5, 1, 2)],
    ['direct 4 → 8 @7, pad 3 (MNIST deconv2)', geom(32, 4, 7, 7, 8, 5, 5, 1, 3)],
    // Winograd in all three directions (CIFAR conv2 and conv3).
    ['Winograd 32 → 64 @16 (CIFAR conv2)', geom(4, 32, 16, 16, 64, 5, 5, 1, 2)],
    ['Winograd 64 → 128 @8 (CIFAR conv3)', geom(4, 64, 8, 8, 128, 5, 5, 1, 2)],
    ['Winograd 16 → 12 @8x12, image slots reused', geom(21, 16, 8, 12, 12, 5, 5, 1, 2)],
  ];
  // F(4×4) plans: the CIFAR layers, image slots reused by the weight gradient, and a thread's partial last
  // group of 4 tiles in the forward (9x6 outputs, batch 21).
  const convs4: [string, ConvGeom][] = [
    ['Winograd 32 → 64 @16 (CIFAR conv2)', geom(4, 32, 16, 16, 64, 5, 5, 1, 2)],
    ['Winograd 64 → 128 @8 (CIFAR conv3)', geom(4, 64, 8, 8, 128, 5, 5, 1, 2)],
    ['Winograd 16 → 12 @8x12, image slots reused', geom(21, 16, 8, 12, 12, 5, 5, 1, 2)],
    ['Winograd 64 → 64 @9x6, batch 21, partial groups', geom(21, 64, 9, 6, 64, 5, 5, 1, 2)],
  ];
  const cases: Case[] = [
    ...gemmCases(), ...convs.flatMap(([label, g], i) => convCases(label, g, 10 * i + 1)),
    ...convs4.flatMap(([label, g], i) => tile4(convCases(label, g, 200 + 10 * i))), ...pointwiseCases(),
  ];

  it('the Winograd cases take the Winograd path in every direction', () => {
    for (const [label, g] of [...convs.filter(([label]) => label.startsWith('Winograd')), ...convs4]) {
      expect(usesWinograd(g) && usesWinogradGradWeight(g), label).to.equal(true);
    }
  });

  for (const [label, run] of cases) {
    it(label, () => {
      rt.serialSchedule = null;
      const want = run(rt);
      for (const schedule of ['forward', 'reverse', null] as const) {
        // Whatever an earlier call left in the arena must not matter: NaN everywhere past the control blocks.
        rt.f32.fill(NaN, ARENA_BASE >> 2, rt.memoryBytes >> 2);
        rt.serialSchedule = schedule;
        const got = run(rt);
        rt.serialSchedule = null;
        got.forEach((g, i) => {
          const diff = firstDifference(g, want[i]!);
          if (diff) expect.fail(`${label}, output ${i}, ${schedule ?? 'parallel'} schedule over a poisoned arena: ${diff}`);
        });
      }
    });
  }
});
