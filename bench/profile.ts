/**
 * Where a training step's time goes, per kernel: wraps every kernel of the active backend with a
 * timer, runs a few steps of one workload and prints milliseconds per step by kernel (and the
 * time spent outside kernels: autograd bookkeeping, allocation, the optimizer's JS loops).
 *
 *   npx tsx bench/profile.ts [--net mnist|cifar] [--workload svdd_epoch|ae_epoch|infer] [--threads N] [--steps S] [--by-shape]
 */
import { parseArgs } from 'node:util';
import * as ag from '../src/autograd/index.ts';
import { Rng, randNormal, randUniform } from '../src/tensor/creation.ts';
import { shutdownBackends, useBackend } from '../src/tensor/backends.ts';
import { kernels } from '../src/tensor/kernels/registry.ts';
import { withTemporaryStorage } from '../src/tensor/tensor.ts';
import type { ConvGeom, KernelName, KernelSet } from '../src/tensor/kernels/types.ts';
import { Adam } from '../src/nn/index.ts';
import { buildAutoencoder, buildEncoder } from '../src/svdd/networks.ts';

const { values } = parseArgs({
  options: {
    net: { type: 'string', default: 'cifar' }, workload: { type: 'string', default: 'svdd_epoch' },
    threads: { type: 'string', default: '' }, steps: { type: 'string', default: '5' }, backend: { type: 'string', default: 'wasm' },
    'by-shape': { type: 'boolean', default: false },
  },
});
const net = values.net === 'mnist' ? 'mnist_LeNet' : 'cifar10_LeNet';
const shape = values.net === 'mnist' ? [1, 28, 28] : [3, 32, 32];
const batch = 200, steps = Number(values.steps);
await useBackend(values.backend!, values.threads ? Number(values.threads) : null);

// Wrap the resolved kernel set in place: every op calls kernels(dtype) and gets these wrappers.
const ks = kernels('float32') as unknown as Record<KernelName, (...args: unknown[]) => unknown>;
const spent = new Map<string, { ms: number; calls: number }>();
let timing = false;
for (const name of Object.keys(ks) as KernelName[]) {
  const inner = ks[name];
  ks[name] = (...args: unknown[]) => {
    if (!timing) return inner(...args);
    // unary/binary/reduce kernels are told apart by their first argument (the function name).
    let key = typeof args[0] === 'string' ? `${name}:${args[0]}` : name;
    // --by-shape: convolutions by geometry (cin→cout @h), the rest by operand length.
    if (values['by-shape']) {
      const g = args.find((a): a is ConvGeom => typeof a === 'object' && a !== null && 'cin' in a);
      const arr = args.find((a): a is ArrayLike<number> => ArrayBuffer.isView(a));
      key += g ? ` ${g.cin}→${g.cout}@${g.h}` : arr ? ` [${arr.length}]` : '';
    }
    const t0 = performance.now();
    const r = inner(...args);
    const e = spent.get(key) ?? { ms: 0, calls: 0 };
    e.ms += performance.now() - t0; e.calls++; spent.set(key, e);
    return r;
  };
}
void (ks as unknown as KernelSet);

const rng = new Rng('profile');
const x = randUniform([batch, ...shape], 0, 1, rng);
let step: () => void;
if (values.workload === 'infer') {
  const enc = buildEncoder(net); enc.eval();
  step = () => { withTemporaryStorage(() => ag.noGrad(() => enc.forward(x))); };
} else {
  const model = values.workload === 'ae_epoch' ? buildAutoencoder(net) : buildEncoder(net);
  const opt = new Adam(model.parameters(), { lr: 1e-4, weightDecay: 0.5e-6 });
  const c = randNormal([model.repDim], 0, 0.5, rng);
  step = () => {
    opt.zeroGrad();
    const out = model.forward(x);
    const loss = values.workload === 'ae_epoch'
      ? ag.mean(ag.sum(ag.reshape(ag.square(ag.sub(out, x)), [batch, -1]), 1))
      : ag.mean(ag.sum(ag.square(ag.sub(out, c)), 1));
    ag.backward(loss);
    opt.step();
    ag.releaseGraph(loss);
  };
}
step(); step();
timing = true;
const t0 = performance.now();
for (let s = 0; s < steps; s++) step();
const total = (performance.now() - t0) / steps;
timing = false;
const rows = [...spent.entries()].sort((a, b) => b[1].ms - a[1].ms);
const inKernels = rows.reduce((a, [, e]) => a + e.ms, 0) / steps;
console.log(`${values.net} ${values.workload} ${values.backend} threads=${values.threads || 'default'}: ${total.toFixed(2)} ms/step = ${(batch / total * 1000).toFixed(0)} images/s`);
for (const [k, e] of rows) console.log(`${k.padEnd(28)} ${(e.ms / steps).toFixed(2).padStart(8)} ms  ${(e.calls / steps).toFixed(0).padStart(4)} calls`);
console.log(`${'(outside kernels)'.padEnd(28)} ${(total - inKernels).toFixed(2).padStart(8)} ms`);
const wasm = await import('../src/tensor/kernels/wasm/index.ts');
console.log(`rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB, maxRSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
console.log(`wasm memory ${(wasm.wasmMemoryBytes() / 2 ** 20).toFixed(0)} MiB, of which tensor heap ${(wasm.wasmHeapBytes() / 2 ** 20).toFixed(0)} MiB`);
await shutdownBackends();
