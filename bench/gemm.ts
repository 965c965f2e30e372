/**
 * GFLOP/s of the conv and fc GEMMs of the Deep SVDD networks (batch 200) for the ts reference,
 * wasm with 1 thread and wasm with 2 threads. Run: `npx tsx bench/gemm.ts [--quick]`.
 * The ts reference is timed on a smaller batch (its rate does not depend on batch size, and at
 * batch 200 the CIFAR layers take seconds each). Writes bench/results/gemm.json.
 * 5×5 stride-1 convs with at least 8 channels on each side run Winograd F(2×2, 5×5) by default:
 * their rates count a direct convolution's flops. SVDD_WINOGRAD=0 times the direct GEMM instead
 * (bench/winograd.ts compares both).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { bestSecondsPerCall, randomOperand } from './timing.ts';
import { tsKernels } from '../src/tensor/kernels/ts/index.ts';
import type { ConvGeom, KernelSet } from '../src/tensor/kernels/types.ts';
import { createWasmBackend, disposeWasmBackend, wasmFeatures } from '../src/tensor/kernels/wasm/index.ts';

const quick = process.argv.includes('--quick');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
const BATCH = 200;
const TS_BATCH = quick ? 2 : 8;
const MIN_SECONDS = quick ? 0.1 : 0.4;

interface ConvCase { name: string; cin: number; cout: number; hw: number; k: number; pad: number; transposed?: boolean }
const convs: ConvCase[] = [
  { name: 'mnist.conv1', cin: 1, cout: 8, hw: 28, k: 5, pad: 2 },
  { name: 'mnist.conv2', cin: 8, cout: 4, hw: 14, k: 5, pad: 2 },
  { name: 'cifar.conv1', cin: 3, cout: 32, hw: 32, k: 5, pad: 2 },
  { name: 'cifar.conv2', cin: 32, cout: 64, hw: 16, k: 5, pad: 2 },
  { name: 'cifar.conv3', cin: 64, cout: 128, hw: 8, k: 5, pad: 2 },
  // Decoder ConvTranspose2d(a→b) runs as conv2dGradInput of a conv b→a; hw is the deconv's input size.
  { name: 'mnist.deconv1 2→4', cin: 4, cout: 2, hw: 8, k: 5, pad: 2, transposed: true },
  { name: 'mnist.deconv2 4→8', cin: 8, cout: 4, hw: 16, k: 5, pad: 3, transposed: true },
  { name: 'mnist.deconv3 8→1', cin: 1, cout: 8, hw: 28, k: 5, pad: 2, transposed: true },
  { name: 'cifar.deconv1 8→128', cin: 128, cout: 8, hw: 4, k: 5, pad: 2, transposed: true },
  { name: 'cifar.deconv2 128→64', cin: 64, cout: 128, hw: 8, k: 5, pad: 2, transposed: true },
  { name: 'cifar.deconv3 64→32', cin: 32, cout: 64, hw: 16, k: 5, pad: 2, transposed: true },
  { name: 'cifar.deconv4 32→3', cin: 3, cout: 32, hw: 32, k: 5, pad: 2, transposed: true },
];
const fcs = [{ name: 'mnist.fc', inF: 196, outF: 32 }, { name: 'cifar.fc', inF: 2048, outF: 128 }];

/** Seconds per call: the best of 4 windows of MIN_SECONDS / 4. */
function time(fn: () => void): number {
  return bestSecondsPerCall(fn, 4, MIN_SECONDS / 4);
}

function geom(c: ConvCase, n: number): ConvGeom {
  // For a transposed conv, hw is the size of the conv's output (the deconv's input).
  if (c.transposed) {
    const h = c.hw + c.k - 1 - 2 * c.pad;
    return { n, cin: c.cin, h, w: h, cout: c.cout, kh: c.k, kw: c.k, stride: 1, pad: c.pad, oh: c.hw, ow: c.hw };
  }
  const o = c.hw + 2 * c.pad - c.k + 1;
  return { n, cin: c.cin, h: c.hw, w: c.hw, cout: c.cout, kh: c.k, kw: c.k, stride: 1, pad: c.pad, oh: o, ow: o };
}

type Op = 'forward' | 'gradInput' | 'gradWeight';
function convOp(ks: KernelSet, c: ConvCase, n: number, op: Op): { run: () => void; flops: number } {
  const g = geom(c, n);
  const x = randomOperand(n * g.cin * g.h * g.w), w = randomOperand(g.cout * g.cin * g.kh * g.kw), gy = randomOperand(n * g.cout * g.oh * g.ow);
  const y = new Float32Array(gy.length), gx = new Float32Array(x.length), gw = new Float32Array(w.length);
  const flops = 2 * n * g.cout * g.oh * g.ow * g.cin * g.kh * g.kw;
  const run = op === 'forward' ? () => ks.conv2d(x, w, y, g)
    : op === 'gradInput' ? () => ks.conv2dGradInput(gy, w, gx, g)
      : () => ks.conv2dGradWeight(x, gy, gw, g);
  return { run, flops };
}

function fcOp(ks: KernelSet, f: { inF: number; outF: number }, n: number, op: Op): { run: () => void; flops: number } {
  const x = randomOperand(n * f.inF), w = randomOperand(f.outF * f.inF), gy = randomOperand(n * f.outF);
  const y = new Float32Array(n * f.outF), gx = new Float32Array(n * f.inF), gw = new Float32Array(f.outF * f.inF);
  const flops = 2 * n * f.inF * f.outF;
  const run = op === 'forward' ? () => ks.gemm(x, w, y, n, f.outF, f.inF, false, true, false)
    : op === 'gradInput' ? () => ks.gemm(gy, w, gx, n, f.inF, f.outF, false, false, false)
      : () => ks.gemm(gy, x, gw, f.outF, f.inF, n, true, false, false);
  return { run, flops };
}

async function main(): Promise<void> {
  const feat = wasmFeatures();
  const merge = (own: Partial<KernelSet>): KernelSet => ({ ...tsKernels, ...own });
  const wasm1 = merge((await createWasmBackend({ threads: 1 })).kernels.float32!);
  const wasm2 = merge((await createWasmBackend({ threads: 2 })).kernels.float32!);
  const rows: Record<string, string | number>[] = [];
  const gf = (flops: number, s: number): number => Math.round((flops / s / 1e9) * 10) / 10;
  console.log(`features ${JSON.stringify(feat)}; cores ${os.availableParallelism()}; batch ${BATCH} (ts: ${TS_BATCH})`);
  console.log(['case', 'op', 'ts', 'wasm1', 'wasm2', 'speedup2/1', 'ms(wasm2)'].map((s, i) => (i < 2 ? s.padEnd(i ? 11 : 22) : s.padStart(9))).join(''));
  const cases: { name: string; make: (ks: KernelSet, n: number, op: Op) => { run: () => void; flops: number } }[] = [
    ...convs.map((c) => ({ name: c.name, make: (ks: KernelSet, n: number, op: Op) => convOp(ks, c, n, op) })),
    ...fcs.map((f) => ({ name: f.name, make: (ks: KernelSet, n: number, op: Op) => fcOp(ks, f, n, op) })),
  ];
  for (const c of cases) {
    if (only && !c.name.includes(only)) continue;
    const isDeconv = c.name.includes('deconv');
    // A deconv layer's forward is conv2dGradInput; its backward runs conv2d and conv2dGradWeight.
    const ops: Op[] = isDeconv ? ['gradInput', 'forward', 'gradWeight'] : ['forward', 'gradInput', 'gradWeight'];
    for (const op of ops) {
      const tsRun = c.make(tsKernels, TS_BATCH, op);
      const w1 = c.make(wasm1, BATCH, op), w2 = c.make(wasm2, BATCH, op);
      const tTs = time(tsRun.run), t1 = time(w1.run), t2 = time(w2.run);
      const row = {
        case: c.name, op, ts: gf(tsRun.flops, tTs), wasm1: gf(w1.flops, t1), wasm2: gf(w2.flops, t2),
        speedup: Math.round((t1 / t2) * 100) / 100, msWasm1: Math.round(t1 * 1e4) / 10, msWasm2: Math.round(t2 * 1e4) / 10,
      };
      rows.push(row);
      console.log(`${c.name.padEnd(22)}${op.padEnd(11)}${String(row.ts).padStart(9)}${String(row.wasm1).padStart(9)}${String(row.wasm2).padStart(9)}${String(row.speedup).padStart(9)}${String(row.msWasm2).padStart(9)}`);
    }
  }
  // Sustained micro-kernel rate on a large, square-ish GEMM.
  for (const s of [256, 512]) {
    const a = randomOperand(s * s), b = randomOperand(s * s), c = new Float32Array(s * s), flops = 2 * s * s * s;
    const r1 = gf(flops, time(() => wasm1.gemm(a, b, c, s, s, s, false, false, false)));
    const r2 = gf(flops, time(() => wasm2.gemm(a, b, c, s, s, s, false, false, false)));
    console.log(`gemm ${s}³ NN: wasm1 ${r1} GFLOP/s, wasm2 ${r2} GFLOP/s`);
    rows.push({ case: `gemm${s}`, op: 'NN', wasm1: r1, wasm2: r2 });
  }
  await disposeWasmBackend();
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/gemm.json', import.meta.url), JSON.stringify({
    date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model ?? '', cores: os.availableParallelism(),
    features: feat, batch: BATCH, tsBatch: TS_BATCH, unit: 'GFLOP/s', rows,
  }, null, 1));
}

await main();
