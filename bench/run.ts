/**
 * svdd-ts benchmark: per-layer forward/backward times and GFLOP/s, and images/s for one epoch of
 * autoencoder pretraining, of Deep SVDD training and of inference, for the MNIST and CIFAR-10
 * networks at batch 200, per backend and thread count. PyTorch's figures for the same workloads
 * (../shared/peers/torch_bench.py, Debian python3-torch with libopenblas0-pthread: on the reference
 * BLAS its transposed convolutions and matrix products are far slower) are printed beside ours when available.
 * Prints a table, then per workload our best thread count against PyTorch's best (same run), with
 * a warning for any peer figure more than 3× off its recorded history (bench/peer-history.json,
 * bench/peers.ts), and writes bench/results/bench-<time>.json with the wall time. The default run
 * (wasm at 1 and 2 threads, both nets, layers, full epochs, peer at 1 and 2 threads) comes to about
 * 15 minutes here: ~6 of ours (bench/results/bench-wasm.json's epochs and layers, 4 epochs each)
 * and ~7.5 of the peer's 12 runs at its recorded speeds, each cut to --torch-budget (120 s) at most.
 *
 *   npm run bench -- [--backends wasm,ts] [--threads 1,2] [--nets mnist,cifar] [--quick] [--no-torch]
 *                    [--no-layers] [--epochs E] [--torch-quick] [--torch-budget SECONDS] [--out FILE]
 *
 * Each epoch workload runs one warm-up epoch, then E timed epochs (3, or 1 with --quick) and
 * reports the median, as the PyTorch peer does. --quick shortens our epochs (1,000 training /
 * 2,000 inference images); the peer still runs its full epochs unless --torch-quick, because its
 * short runs are dominated by warm-up and wobble by 2x.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ag from '../src/autograd/index.ts';
import { Rng, randNormal, randUniform } from '../src/tensor/creation.ts';
import { useBackend } from '../src/tensor/backends.ts';
import { writeFileAtomic } from '../src/tensor/io/atomic.ts';
import { Adam, ConvTranspose2d, type Module } from '../src/nn/index.ts';
import { buildAutoencoder, buildEncoder, type Autoencoder, type Encoder, type NetName } from '../src/svdd/networks.ts';
import { releaseArray, withTemporaryStorage, type Tensor } from '../src/tensor/tensor.ts';
import { bestRatios, formatBestRatios, loadPeerHistory, peerKey, peerWarning } from './peers.ts';
import { winogradSettings } from '../src/tensor/kernels/wasm/ops.ts';

const here = dirname(fileURLToPath(import.meta.url));
const USAGE = `npx tsx bench/run.ts [--backends wasm,ts] [--threads 1,2] [--nets mnist,cifar] [--quick] [--no-torch]
                      [--no-layers] [--epochs E] [--torch-quick] [--torch-budget SECONDS] [--out FILE]
  per-layer and per-epoch images/s of ours beside PyTorch's (see the header of bench/run.ts);
  SVDD_WINOGRAD_TILE=4 times the opt-in Winograd F(4×4) path`;
if (process.argv.includes('--help') || process.argv.includes('-h')) { console.log(USAGE); process.exit(0); }
const { values } = parseArgs({
  options: {
    backends: { type: 'string', default: 'wasm' }, threads: { type: 'string', default: '' },
    nets: { type: 'string', default: 'mnist,cifar' }, quick: { type: 'boolean', default: false },
    'no-torch': { type: 'boolean', default: false }, out: { type: 'string' },
    'no-layers': { type: 'boolean', default: false }, 'torch-quick': { type: 'boolean', default: false },
    epochs: { type: 'string', default: '' }, 'torch-budget': { type: 'string', default: '120' },
    'torch-bench': { type: 'string', default: join(here, '../../shared/peers/torch_bench.py') },
  },
});
const batch = 200;
const netOf = { mnist: 'mnist_LeNet', cifar: 'cifar10_LeNet' } as const satisfies Record<string, NetName>;
const shapeOf = { mnist: [1, 28, 28], cifar: [3, 32, 32] } as const;
/** Images per epoch as in the PyTorch peer: 6,000 MNIST / 5,000 CIFAR, inference 10,000. */
const epochImages = (net: 'mnist' | 'cifar', workload: string): number =>
  values.quick ? (workload === 'infer' ? 2000 : 1000) : workload === 'infer' ? 10000 : net === 'mnist' ? 6000 : 5000;

function median(xs: number[]): number { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; }
function time(fn: () => void, reps: number): number {
  fn(); // warm-up: JIT, scratch buffers
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) { const t0 = performance.now(); fn(); ts.push(performance.now() - t0); }
  return median(ts);
}

interface LayerRow { net: string; model: string; layer: string; inputShape: number[]; forwardMs: number; backwardMs: number; gflop: number; gflops: number }

/** Forward FLOPs of a conv-like layer (2·MACs); backward is about twice that. */
function layerFlop(m: Module, x: readonly number[], y: readonly number[]): number {
  const w = m.namedParameters().find(([n]) => n === 'weight')?.[1];
  if (!w) return 0;
  const outElems = y.reduce((a, b) => a * b, 1);
  if (w.rank === 4) {
    const isTransposed = m instanceof ConvTranspose2d;
    const k = w.shape[2]! * w.shape[3]!;
    // conv: each output element sums cin·k products; transposed: each INPUT element scatters to cout·k.
    return isTransposed ? 2 * x.reduce((a, b) => a * b, 1) * w.shape[1]! * k : 2 * outElems * w.shape[1]! * k;
  }
  return 2 * outElems * w.shape[1]!;
}

/** Times each parameterised / normalising layer in isolation at the input shape it sees in the network. */
function layerTimes(netKey: 'mnist' | 'cifar', kind: 'encoder' | 'autoencoder', model: Module, x: Tensor, reps: number): LayerRow[] {
  const seen: { name: string; m: Module; input: number[]; output: number[] }[] = [];
  const removers: (() => void)[] = [];
  for (const [name, m] of model.namedModules()) {
    if (!name) continue;
    // The hook sees the output; the input shape is recovered from the previous captured output where needed.
    const original = m.forward.bind(m);
    m.forward = (inp: Tensor) => { const out = original(inp); seen.push({ name, m, input: [...inp.shape], output: [...out.shape] }); return out; };
    removers.push(() => { m.forward = original; });
  }
  ag.noGrad(() => model.forward(x));
  removers.forEach((r) => r());
  const rng = new Rng('bench-layer');
  return seen.map(({ name, m, input, output }) => {
    const inp = randNormal(input, 0, 1, rng).requireGrad();
    const gy = randNormal(output, 0, 1, rng);
    // Each timed call's storage is recycled for the next, as in the trainer and the evaluation loops.
    const forwardMs = time(() => { withTemporaryStorage(() => ag.noGrad(() => m.forward(inp))); }, reps);
    let y: Tensor | null = null;
    // Gradients go back to the pool as in training (Adam.zeroGrad); fresh pages would cost more than the kernels.
    const dropGrads = (ts: readonly Tensor[]): void => { for (const t of ts) { if (t.grad) releaseArray(t.grad.storage); t.grad = null; } };
    const fb = time(() => { y = m.forward(inp); ag.backward(y, gy); dropGrads([...m.parameters(), inp]); ag.releaseGraph(y, [inp]); }, reps);
    const gflop = (3 * layerFlop(m, input, output)) / 1e9;
    const backwardMs = Math.max(fb - forwardMs, 0);
    return { net: netKey, model: kind, layer: name, inputShape: input, forwardMs, backwardMs, gflop, gflops: gflop > 0 ? gflop / (fb / 1000) : 0 };
  });
}

interface EpochRow { net: string; workload: string; backend: string; threads: number; images: number; seconds: number; imagesPerS: number; torch1?: number; torch2?: number }

function epochWorkload(netKey: 'mnist' | 'cifar', workload: 'ae_epoch' | 'svdd_epoch' | 'infer'): { images: number; seconds: number } {
  const net = netOf[netKey];
  const n = epochImages(netKey, workload);
  const rng = new Rng('bench-epoch');
  const x = randUniform([batch, ...shapeOf[netKey]], 0, 1, rng);
  const batches = Math.ceil(n / batch);
  if (workload === 'infer') {
    const enc: Encoder = buildEncoder(net); enc.eval();
    const step = (): void => { withTemporaryStorage(() => ag.noGrad(() => enc.forward(x))); };
    return timedEpochs(step, batches);
  }
  const model: Encoder | Autoencoder = workload === 'ae_epoch' ? buildAutoencoder(net) : buildEncoder(net);
  const opt = new Adam(model.parameters(), { lr: 1e-4, weightDecay: 0.5e-6 });
  const c = randNormal([model.repDim], 0, 0.5, rng);
  const step = (): void => {
    opt.zeroGrad();
    const out = model.forward(x);
    const loss = workload === 'ae_epoch'
      ? ag.mean(ag.sum(ag.reshape(ag.square(ag.sub(out, x)), [batch, -1]), 1))
      : ag.mean(ag.sum(ag.square(ag.sub(out, c)), 1));
    ag.backward(loss);
    opt.step();
    ag.releaseGraph(loss); // as the trainer does: the step's intermediates go back to the pool
  };
  return timedEpochs(step, batches);
}

/** One warm-up epoch, then the median of the timed epochs (as the PyTorch peer measures). */
function timedEpochs(step: () => void, batches: number): { images: number; seconds: number } {
  const reps = values.epochs ? Number(values.epochs) : values.quick ? 1 : 3;
  for (let b = 0; b < batches; b++) step();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (let b = 0; b < batches; b++) step();
    times.push((performance.now() - t0) / 1000);
  }
  return { images: batches * batch, seconds: median(times) };
}

function torchFigure(netKey: string, workload: string, threads: number): number | undefined {
  if (values['no-torch'] || !existsSync(values['torch-bench']!)) return undefined;
  try {
    const args = [values['torch-bench']!, '--threads', String(threads), '--net', netKey, '--workload', workload];
    if (values.quick && values['torch-quick']) args.push('--n', String(epochImages(netKey as 'mnist' | 'cifar', workload)));
    // The peer cuts its timed epochs to fit this many seconds (and says so in its JSON) rather than run for many minutes.
    args.push('--budget', values['torch-budget']!);
    const pin = threads === 1 ? ['taskset', '-c', '1', '/usr/bin/python3'] : ['/usr/bin/python3'];
    const out = execFileSync(pin[0]!, [...pin.slice(1), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 900_000 });
    const last = out.trim().split('\n').pop()!;
    return (JSON.parse(last) as { images_per_s: number }).images_per_s;
  } catch {
    return undefined;
  }
}

async function mainBench(): Promise<void> {
  const started = performance.now();
  const history = loadPeerHistory();
  const peerWarnings: string[] = [];
  const backends = values.backends!.split(',').filter(Boolean);
  const threadCounts = values.threads ? values.threads.split(',').map(Number) : [...new Set([1, cpus().length])];
  const nets = values.nets!.split(',').filter(Boolean) as ('mnist' | 'cifar')[];
  const layers: (LayerRow & { backend: string; threads: number })[] = [];
  const epochs: EpochRow[] = [];
  const torchCache = new Map<string, number | undefined>();
  for (const backendName of backends) {
    for (const threads of backendName === 'ts' ? [1] : threadCounts) {
      const backend = await useBackend(backendName, threads);
      for (const netKey of nets) {
        const x = randUniform([batch, ...shapeOf[netKey]], 0, 1, new Rng(1));
        const reps = netKey === 'cifar' && backend === 'ts' ? 1 : 3;
        for (const kind of values['no-layers'] ? [] : ['encoder', 'autoencoder'] as const) {
          const model = kind === 'encoder' ? buildEncoder(netOf[netKey]) : buildAutoencoder(netOf[netKey]);
          for (const row of layerTimes(netKey, kind, model, x, reps)) {
            layers.push({ ...row, backend, threads });
            console.log(`${backend}/${threads}t ${netKey} ${kind.padEnd(11)} ${row.layer.padEnd(8)} in [${row.inputShape.join('x')}]`.padEnd(58)
              + ` fwd ${row.forwardMs.toFixed(2).padStart(8)} ms  bwd ${row.backwardMs.toFixed(2).padStart(8)} ms${row.gflops ? `  ${row.gflops.toFixed(1).padStart(5)} GFLOP/s` : ''}`);
          }
        }
        for (const workload of ['ae_epoch', 'svdd_epoch', 'infer'] as const) {
          if (backend === 'ts' && netKey === 'cifar' && !values.quick) continue; // hours on the reference kernels
          const { images, seconds } = epochWorkload(netKey, workload);
          const row: EpochRow = { net: netKey, workload, backend, threads, images, seconds, imagesPerS: images / seconds };
          for (const t of [1, 2]) {
            const key = peerKey(netKey, workload, t);
            if (torchCache.has(key)) continue;
            const figure = torchFigure(netKey, workload, t);
            torchCache.set(key, figure);
            const warning = figure === undefined ? null : peerWarning(history, key, figure);
            if (warning) { peerWarnings.push(warning); console.log(warning); }
          }
          row.torch1 = torchCache.get(`${netKey}/${workload}/1`);
          row.torch2 = torchCache.get(`${netKey}/${workload}/2`);
          epochs.push(row);
          const vs = (v?: number): string => (v ? `${v.toFixed(0)} (×${(row.imagesPerS / v).toFixed(2)})` : 'n/a');
          console.log(`${backend}/${threads}t ${netKey} ${workload.padEnd(10)} ${row.imagesPerS.toFixed(0).padStart(7)} images/s | PyTorch 1t ${vs(row.torch1)} 2t ${vs(row.torch2)}`);
        }
      }
    }
  }
  const ratios = bestRatios(epochs, history);
  console.log(`\n${formatBestRatios(ratios)}`);
  for (const w of peerWarnings) console.log(w);
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  const wallSeconds = (performance.now() - started) / 1000;
  const wg = winogradSettings();
  console.log(`wasm Winograd: ${wg.enabled ? `F(${wg.tile}×${wg.tile}, 5×5)${wg.tile === 4 ? ' (SVDD_WINOGRAD_TILE=4, opt-in)' : ''}` : 'off (SVDD_WINOGRAD=0)'}`);
  console.log(`peak RSS ${peakRssMiB.toFixed(0)} MiB, ${(wallSeconds / 60).toFixed(1)} minutes`);
  const dir = join(here, 'results');
  mkdirSync(dir, { recursive: true });
  const file = values.out ?? join(dir, `bench-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.json`);
  writeFileAtomic(file, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, batch, quick: values.quick, winograd: winogradSettings(), peakRssMiB, wallSeconds, layers, epochs, bestRatios: ratios, peerWarnings }, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

await mainBench();
