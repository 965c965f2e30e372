/**
 * Where a wasm convolution's time goes, kernel by kernel: each call of the CIFAR-10 LeNet's 5×5
 * convolutions (batch 200) is timed whole, then once per kernel kind with every command of the other
 * kinds dropped from its command lists (the results are garbage then; the memory traffic of the kept
 * kind is what it is). The per-kind times add up to about the whole: what is left is dispatch and
 * the waits between phases.
 *
 * Run: `npx tsx bench/conv-breakdown.ts [--threads N] [--tile 2|4] [--windows W]`. Prints ms per call, the
 * best of W timing windows of 0.2 s (bestSecondsPerCall, as the other kernel benchmarks).
 */
import { parseArgs } from 'node:util';
import { bestSecondsPerCall } from './timing.ts';
import { Rng, randNormal } from '../src/tensor/creation.ts';
import { shutdownBackends, useBackend } from '../src/tensor/backends.ts';
import { kernels } from '../src/tensor/kernels/registry.ts';
import type { ConvGeom } from '../src/tensor/kernels/types.ts';
import { FN, type FnName } from '../src/tensor/kernels/wasm/kernels.ts';
import { type CommandList, WasmRuntime } from '../src/tensor/kernels/wasm/runtime.ts';
import { setWinogradTile } from '../src/tensor/kernels/wasm/winograd-conv.ts';

const { values } = parseArgs({ options: { threads: { type: 'string', default: '1' }, tile: { type: 'string', default: '2' }, windows: { type: 'string', default: '5' } } });
const threads = Number(values.threads), windows = Number(values.windows);
setWinogradTile(values.tile === '4' ? 4 : 2);
await useBackend('wasm', threads);

const NAME_OF = new Map<number, FnName>(Object.entries(FN).map(([name, { id }]) => [id, name as FnName]));
/** The kinds to keep (undefined: all); the kinds seen (to list them per case). */
let keep: Set<string> | undefined;
const seen = new Set<string>();
const run = WasmRuntime.prototype.run;
WasmRuntime.prototype.run = function (lists: readonly CommandList[]): void {
  const kept = lists.map((list) => {
    const out: number[] = [];
    for (let i = 0; i < list.length;) {
      const name = NAME_OF.get(list[i]!)!, arity = FN[name].arity;
      // The GEMM micro-kernels count as one kind.
      const kind = name === 'kernel1' || name === 'kernelRows' ? 'kernel' : name;
      seen.add(kind);
      if (!keep || keep.has(kind)) for (let j = 0; j <= arity; j++) out.push(list[i + j]!);
      i += arity + 1;
    }
    return out;
  });
  run.call(this, kept);
};

interface Case { name: string; cin: number; cout: number; hw: number; op: 'conv2d' | 'conv2dGradInput' | 'conv2dGradWeight' }
const N = 200;
const cases: Case[] = [
  { name: 'conv1 3→32 @32', cin: 3, cout: 32, hw: 32, op: 'conv2d' },
  { name: 'conv1 3→32 @32', cin: 3, cout: 32, hw: 32, op: 'conv2dGradWeight' },
  { name: 'conv2 32→64 @16', cin: 32, cout: 64, hw: 16, op: 'conv2d' },
  { name: 'conv2 32→64 @16', cin: 32, cout: 64, hw: 16, op: 'conv2dGradInput' },
  { name: 'conv2 32→64 @16', cin: 32, cout: 64, hw: 16, op: 'conv2dGradWeight' },
  { name: 'conv3 64→128 @8', cin: 64, cout: 128, hw: 8, op: 'conv2d' },
  { name: 'conv3 64→128 @8', cin: 64, cout: 128, hw: 8, op: 'conv2dGradInput' },
  { name: 'conv3 64→128 @8', cin: 64, cout: 128, hw: 8, op: 'conv2dGradWeight' },
];
const rng = new Rng(1);
const rand = (len: number): Float32Array => randNormal([len], 0, 1, rng).storage as Float32Array;
const ks = kernels('float32');

console.log(`threads ${threads}, Winograd tile ${values.tile}, batch ${N}: ms per call`);
for (const c of cases) {
  const g: ConvGeom = { n: N, cin: c.cin, h: c.hw, w: c.hw, cout: c.cout, kh: 5, kw: 5, stride: 1, pad: 2, oh: c.hw, ow: c.hw };
  const x = rand(N * c.cin * c.hw * c.hw), w = rand(c.cout * c.cin * 25), y = rand(N * c.cout * c.hw * c.hw);
  const call = (): void => {
    if (c.op === 'conv2d') ks.conv2d(x, w, y, g);
    else if (c.op === 'conv2dGradInput') ks.conv2dGradInput(y, w, x, g);
    else ks.conv2dGradWeight(x, y, w, g);
  };
  const time = (): number => 1000 * bestSecondsPerCall(call, windows, 0.2);
  keep = undefined; seen.clear();
  const whole = time();
  const kinds = [...seen];
  const parts = kinds.map((k) => { keep = new Set([k]); return [k, time()] as const; });
  keep = undefined;
  const sum = parts.reduce((s, [, t]) => s + t, 0);
  console.log(`${c.name} ${c.op.padEnd(17)} ${whole.toFixed(2).padStart(7)}  = ${parts.map(([k, t]) => `${k} ${t.toFixed(2)}`).join(', ')} (sum ${sum.toFixed(2)})`);
}
await shutdownBackends();
