/**
 * Winograd F(2×2, 5×5) vs F(4×4, 5×5) (SVDD_WINOGRAD_TILE=2 vs 4) on the wasm backend, as a paired,
 * interleaved A/B in one process: the tile switch (setWinogradTile) is flipped between timings,
 * A, B, B, A, … so both see the same background load on a shared machine.
 *   layers: ms per call at batch 200 of the CIFAR-10 LeNet's 5×5 convolutions that take the
 *           forward Winograd path (conv2 / conv3 forward; the decoder's transposed convs, whose
 *           forward is conv2dGradInput) and of their weight gradients, 1 and 2 threads;
 *   nets:   CIFAR-10 encoder inference, Deep SVDD training step and autoencoder training step at
 *           batch 200 (as bench/ab-pair.ts), reported as images/s.
 * Run: `npx tsx bench/winograd-tile.ts [--quick] [--threads=1,2] [--only=layers|nets] [--op=forward|gradInput|gradWeight]`.
 * Writes bench/results/winograd-tile.json (not for --only or --op runs).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { randomOperand } from './timing.ts';
import { backward, mean, noGrad, releaseGraph, reshape, square, sub, sum } from '../src/autograd/index.ts';
import { shutdownBackends, useBackend } from '../src/tensor/backends.ts';
import { Rng, randNormal, randUniform } from '../src/tensor/creation.ts';
import { withTemporaryStorage } from '../src/tensor/tensor.ts';
import type { ConvGeom, KernelSet } from '../src/tensor/kernels/types.ts';
import { createWasmBackend, disposeWasmBackend, wasmFeatures } from '../src/tensor/kernels/wasm/index.ts';
import { type WinogradTile, setWinogradTile, usesWinograd, usesWinogradGradWeight } from '../src/tensor/kernels/wasm/ops.ts';
import { Adam } from '../src/nn/index.ts';
import { buildAutoencoder, buildEncoder } from '../src/svdd/networks.ts';

const quick = process.argv.includes('--quick');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
/** Times only the layer cases of this op (and no networks). */
const opOnly = process.argv.find((a) => a.startsWith('--op='))?.slice('--op='.length);
const threadList = (process.argv.find((a) => a.startsWith('--threads='))?.slice('--threads='.length) ?? '1,2').split(',').map(Number);
const BATCH = 200;
/** Paired timings per layer case (each pair: one call of each tile, order alternating). */
const LAYER_PAIRS = quick ? 8 : 30;
/** Paired steps per network workload. */
const NET_PAIRS: Record<NetWorkload, number> = quick ? { infer: 6, svdd_epoch: 4, ae_epoch: 3 } : { infer: 24, svdd_epoch: 12, ae_epoch: 8 };

/** A 5×5, pad-2 conv [cin → cout] on hw×hw images, timed as its forward, its input gradient or its weight gradient. */
interface LayerCase { name: string; cin: number; cout: number; hw: number; op: 'forward' | 'gradInput' | 'gradWeight' }
const layerCases: LayerCase[] = [
  { name: 'cifar.conv2 32→64 @16', cin: 32, cout: 64, hw: 16, op: 'forward' },
  { name: 'cifar.conv3 64→128 @8', cin: 64, cout: 128, hw: 8, op: 'forward' },
  // The decoder's ConvTranspose2d layers: their forward is conv2dGradInput of the conv [out → in].
  // deconv1 (its forward: the conv 8 → 128 @4) is below the Winograd thresholds (cin 8): listed to say so.
  { name: 'cifar.deconv1 8→128 @4', cin: 128, cout: 8, hw: 4, op: 'gradInput' },
  { name: 'cifar.deconv2 128→64 @8', cin: 64, cout: 128, hw: 8, op: 'gradInput' },
  { name: 'cifar.deconv3 64→32 @16', cin: 32, cout: 64, hw: 16, op: 'gradInput' },
  // Small images at Winograd-sized channel counts: fewer than 4 tiles of 4×4 per row.
  { name: '32→32 @4', cin: 32, cout: 32, hw: 4, op: 'forward' },
  { name: '16→128 @4', cin: 16, cout: 128, hw: 4, op: 'forward' },
  { name: '64→64 @8', cin: 64, cout: 64, hw: 8, op: 'forward' },
  { name: '32→32 @12', cin: 32, cout: 32, hw: 12, op: 'forward' },
  // Weight gradients. A ConvTranspose2d's weight gradient is conv2dGradWeight of its equivalent conv
  // [out → in] (autograd/ops/conv.ts), so the decoder's deconv3 (64 → 32 @16) and deconv2 (128 → 64 @8)
  // take exactly conv2's and conv3's geometries: one row each covers both.
  { name: 'cifar.conv2/deconv3 32→64 @16', cin: 32, cout: 64, hw: 16, op: 'gradWeight' },
  { name: 'cifar.conv3/deconv2 64→128 @8', cin: 64, cout: 128, hw: 8, op: 'gradWeight' },
  // Small images: one or four 4×4 tiles per image.
  { name: '32→32 @4', cin: 32, cout: 32, hw: 4, op: 'gradWeight' },
  { name: '16→128 @4', cin: 16, cout: 128, hw: 4, op: 'gradWeight' },
  { name: '64→64 @8', cin: 64, cout: 64, hw: 8, op: 'gradWeight' },
  { name: '16→16 @8', cin: 16, cout: 16, hw: 8, op: 'gradWeight' },
  { name: '32→32 @12', cin: 32, cout: 32, hw: 12, op: 'gradWeight' },
];

type NetWorkload = 'infer' | 'svdd_epoch' | 'ae_epoch';

const median = (xs: readonly number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };

/** Times fa and fb in alternating pairs (A B, B A, …) after two warm-ups each: per-pair ms of each. */
function paired(fa: () => void, fb: () => void, pairs: number): { a: number[]; b: number[] } {
  const tile = (m: WinogradTile, f: () => void): number => {
    setWinogradTile(m);
    const t0 = performance.now();
    f();
    return performance.now() - t0;
  };
  tile(2, fa); tile(4, fb); tile(2, fa); tile(4, fb);
  const a: number[] = [], b: number[] = [];
  for (let i = 0; i < pairs; i++) {
    if (i % 2 === 0) { a.push(tile(2, fa)); b.push(tile(4, fb)); } else { b.push(tile(4, fb)); a.push(tile(2, fa)); }
  }
  return { a, b };
}

/** min and median of each side and the median of the per-pair ratios F(2×2) / F(4×4) (> 1: F(4×4) faster). */
function summary(a: readonly number[], b: readonly number[]): { minMs2: number; medMs2: number; minMs4: number; medMs4: number; speedup: number } {
  return {
    minMs2: +Math.min(...a).toFixed(2), medMs2: +median(a).toFixed(2), minMs4: +Math.min(...b).toFixed(2), medMs4: +median(b).toFixed(2),
    speedup: +median(a.map((x, i) => x / b[i]!)).toFixed(3),
  };
}

async function layers(): Promise<Record<string, string | number>[]> {
  const rows: Record<string, string | number>[] = [];
  console.log(`layers: batch ${BATCH}, ms per call (min / median of ${LAYER_PAIRS} interleaved pairs), speedup = median of per-pair F2/F4`);
  for (const threads of threadList) {
    const ks: Partial<KernelSet> = (await createWasmBackend({ threads })).kernels.float32!;
    for (const c of layerCases.filter((l) => opOnly === undefined || l.op === opOnly)) {
      const g: ConvGeom = { n: BATCH, cin: c.cin, h: c.hw, w: c.hw, cout: c.cout, kh: 5, kw: 5, stride: 1, pad: 2, oh: c.hw, ow: c.hw };
      // conv2dGradInput runs as the forward conv [cout → cin]: the Winograd thresholds apply to that one.
      const fwd: ConvGeom = c.op === 'forward' ? g : { ...g, cin: g.cout, cout: g.cin };
      // The weight gradient takes Winograd for the same geometries as the forward (usesWinogradGradWeight).
      if (!(c.op === 'gradWeight' ? usesWinogradGradWeight(g) : usesWinograd(fwd))) {
        console.log(`${c.name} ${c.op}: below the Winograd thresholds, skipped`);
        continue;
      }
      const x = randomOperand(BATCH * c.cin * c.hw * c.hw), w = randomOperand(c.cout * c.cin * 25), gy = randomOperand(BATCH * c.cout * c.hw * c.hw);
      const y = new Float32Array(gy.length), gx = new Float32Array(x.length), gw = new Float32Array(w.length);
      const run = c.op === 'forward' ? () => ks.conv2d!(x, w, y, g)
        : c.op === 'gradInput' ? () => ks.conv2dGradInput!(gy, w, gx, g) : () => ks.conv2dGradWeight!(x, gy, gw, g);
      const { a, b } = paired(run, run, LAYER_PAIRS);
      const row = { case: c.name, op: c.op, threads, ...summary(a, b) };
      rows.push(row);
      console.log(`${c.name.padEnd(31)}${c.op.padEnd(11)}${threads}T  F2 ${row.minMs2} / ${row.medMs2} ms  F4 ${row.minMs4} / ${row.medMs4} ms  speedup ${row.speedup}`);
    }
    await disposeWasmBackend();
  }
  return rows;
}

/** One CIFAR-10 LeNet step at batch 200, as bench/ab-pair.ts builds it. */
function netStep(workload: NetWorkload): () => void {
  const rng = new Rng('bench-epoch');
  const x = randUniform([BATCH, 3, 32, 32], 0, 1, rng);
  if (workload === 'infer') {
    const enc = buildEncoder('cifar10_LeNet');
    enc.eval();
    return () => { withTemporaryStorage(() => noGrad(() => enc.forward(x))); };
  }
  const model = workload === 'ae_epoch' ? buildAutoencoder('cifar10_LeNet') : buildEncoder('cifar10_LeNet');
  const opt = new Adam(model.parameters(), { lr: 1e-4, weightDecay: 0.5e-6 });
  const center = randNormal([model.repDim], 0, 0.5, rng);
  return () => {
    opt.zeroGrad();
    const out = model.forward(x);
    const loss = workload === 'ae_epoch' ? mean(sum(reshape(square(sub(out, x)), [BATCH, -1]), 1)) : mean(sum(square(sub(out, center)), 1));
    backward(loss);
    opt.step();
    releaseGraph(loss);
  };
}

async function nets(): Promise<Record<string, string | number>[]> {
  const rows: Record<string, string | number>[] = [];
  console.log('nets: CIFAR-10 LeNet, batch 200, images/s from the median step of interleaved pairs; speedup = median of per-pair F2/F4');
  for (const threads of threadList) {
    await useBackend('wasm', threads);
    for (const workload of ['infer', 'svdd_epoch', 'ae_epoch'] as const) {
      // Separate models for the two sides, so neither sees the other's parameter updates.
      const { a, b } = paired(netStep(workload), netStep(workload), NET_PAIRS[workload]);
      const s = summary(a, b);
      const row = { workload, threads, imagesPerSec2: Math.round(BATCH / (s.medMs2 / 1e3)), imagesPerSec4: Math.round(BATCH / (s.medMs4 / 1e3)), ...s };
      rows.push(row);
      console.log(`cifar/${workload.padEnd(11)}${threads}T  F2 ${row.imagesPerSec2} img/s (median ${s.medMs2} ms)  F4 ${row.imagesPerSec4} img/s (median ${s.medMs4} ms)  speedup ${s.speedup}`);
    }
    await shutdownBackends();
  }
  return rows;
}

async function main(): Promise<void> {
  const feat = wasmFeatures();
  console.log(`features ${JSON.stringify(feat)}; cores ${os.availableParallelism()}; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const layerRows = only === 'nets' ? [] : await layers();
  const netRows = only === 'layers' || opOnly !== undefined ? [] : await nets();
  setWinogradTile(2);
  if (only || opOnly) return; // a partial run does not replace the recorded results
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/winograd-tile.json', import.meta.url), JSON.stringify({
    date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model ?? '', cores: os.availableParallelism(),
    loadAverage: os.loadavg(), features: feat, batch: BATCH, quick, unit: 'ms', layers: layerRows, nets: netRows,
  }, null, 1));
}

await main();
