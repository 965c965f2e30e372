/**
 * Direct (im2col GEMM) vs Winograd F(2×2, 5×5) times of the CIFAR-10 LeNet's big 5×5 convolutions
 * at batch 200, on 1 and 2 threads. Run: `npx tsx bench/winograd.ts [--quick] [--only=TEXT]`. Each figure is the
 * best of several timing windows (other processes share the cores). Writes bench/results/winograd.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { bestSecondsPerCall, randomOperand } from './timing.ts';
import type { ConvGeom, KernelSet } from '../src/tensor/kernels/types.ts';
import { createWasmBackend, disposeWasmBackend, wasmFeatures } from '../src/tensor/kernels/wasm/index.ts';
import { setWinograd, usesWinograd, usesWinogradGradWeight } from '../src/tensor/kernels/wasm/ops.ts';

const quick = process.argv.includes('--quick');
/** --only=TEXT: just the cases whose name or op contains TEXT (e.g. --only=gradWeight). */
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const BATCH = 200;
const WINDOWS = quick ? 3 : 7;
const WINDOW_SECONDS = quick ? 0.15 : 0.3;

/** A 5×5, pad-2 conv [cin → cout] on hw×hw images, and which of its kernels to time. */
interface Case { name: string; cin: number; cout: number; hw: number; op: 'forward' | 'gradInput' | 'gradWeight' }
const cases: Case[] = [
  { name: 'cifar.conv2 32→64 @16', cin: 32, cout: 64, hw: 16, op: 'forward' },
  { name: 'cifar.conv2 32→64 @16', cin: 32, cout: 64, hw: 16, op: 'gradInput' },
  { name: 'cifar.conv3 64→128 @8', cin: 64, cout: 128, hw: 8, op: 'forward' },
  { name: 'cifar.conv3 64→128 @8', cin: 64, cout: 128, hw: 8, op: 'gradInput' },
  { name: 'cifar.conv2 32→64 @16', cin: 32, cout: 64, hw: 16, op: 'gradWeight' },
  { name: 'cifar.conv3 64→128 @8', cin: 64, cout: 128, hw: 8, op: 'gradWeight' },
  // The decoder's ConvTranspose2d layers (each after a ×2 upsampling, as in bench/run.ts): their
  // forward is conv2dGradInput of the conv [out → in]; their input gradient is that conv's forward.
  { name: 'cifar.deconv1 8→128 @4', cin: 128, cout: 8, hw: 4, op: 'gradInput' },
  { name: 'cifar.deconv1 8→128 @4', cin: 128, cout: 8, hw: 4, op: 'forward' },
  // Their weight gradient is conv2dGradWeight of that conv (deconv2's and deconv3's are conv3's and conv2's shapes).
  { name: 'cifar.deconv1 8→128 @4', cin: 128, cout: 8, hw: 4, op: 'gradWeight' },
  { name: 'cifar.deconv2 128→64 @8', cin: 64, cout: 128, hw: 8, op: 'gradInput' },
  { name: 'cifar.deconv2 128→64 @8', cin: 64, cout: 128, hw: 8, op: 'forward' },
  { name: 'cifar.deconv3 64→32 @16', cin: 32, cout: 64, hw: 16, op: 'gradInput' },
  { name: 'cifar.deconv3 64→32 @16', cin: 32, cout: 64, hw: 16, op: 'forward' },
];

/** Seconds per call: one warm-up call, then the best of WINDOWS windows. */
function time(fn: () => void): number {
  return bestSecondsPerCall(fn, WINDOWS, WINDOW_SECONDS);
}

async function main(): Promise<void> {
  const feat = wasmFeatures();
  const backends: [number, Partial<KernelSet>][] = [];
  for (const threads of [1, 2]) backends.push([threads, (await createWasmBackend({ threads })).kernels.float32!]);
  console.log(`features ${JSON.stringify(feat)}; cores ${os.availableParallelism()}; batch ${BATCH}; ms per call (best of ${WINDOWS})`);
  console.log(`${'case'.padEnd(26)}${'op'.padEnd(11)}${'threads'.padStart(8)}${'direct'.padStart(9)}${'winograd'.padStart(10)}${'speedup'.padStart(9)}`);
  const rows: Record<string, string | number>[] = [];
  for (const c of cases.filter((c) => !only || c.name.includes(only) || c.op.includes(only))) {
    const g: ConvGeom = { n: BATCH, cin: c.cin, h: c.hw, w: c.hw, cout: c.cout, kh: 5, kw: 5, stride: 1, pad: 2, oh: c.hw, ow: c.hw };
    const x = randomOperand(BATCH * c.cin * c.hw * c.hw), w = randomOperand(c.cout * c.cin * 25), gy = randomOperand(BATCH * c.cout * c.hw * c.hw);
    const y = new Float32Array(gy.length), gx = new Float32Array(x.length), gw = new Float32Array(w.length);
    for (const [threads, ks] of backends) {
      const run = c.op === 'forward' ? () => ks.conv2d!(x, w, y, g)
        : c.op === 'gradInput' ? () => ks.conv2dGradInput!(gy, w, gx, g) : () => ks.conv2dGradWeight!(x, gy, gw, g);
      setWinograd(false);
      const direct = time(run);
      setWinograd(true);
      // conv2dGradInput runs as the forward conv [cout → cin]: the thresholds apply to that one.
      const fwd: ConvGeom = c.op === 'forward' ? g : { ...g, cin: g.cout, cout: g.cin };
      const wino = (c.op === 'gradWeight' ? usesWinogradGradWeight(g) : usesWinograd(fwd)) ? time(run) : NaN;
      const row = {
        case: c.name, op: c.op, threads, directMs: +(direct * 1e3).toFixed(1),
        winogradMs: Number.isNaN(wino) ? 'below threshold' : +(wino * 1e3).toFixed(1), speedup: Number.isNaN(wino) ? '' : +(direct / wino).toFixed(2),
      };
      rows.push(row);
      console.log(`${c.name.padEnd(26)}${c.op.padEnd(11)}${String(threads).padStart(8)}${String(row.directMs).padStart(9)}`
        + `${String(Number.isNaN(wino) ? 'direct' : row.winogradMs).padStart(10)}${String(row.speedup).padStart(9)}`);
    }
  }
  await disposeWasmBackend();
  if (only) return; // a partial run does not replace the recorded results
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/winograd.json', import.meta.url), JSON.stringify({
    date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model ?? '', cores: os.availableParallelism(),
    features: feat, batch: BATCH, unit: 'ms', rows,
  }, null, 1));
}

await main();
