/**
 * The gpu.js worker thread behind the worker bridge (bridge.ts; protocol in bridge-protocol.ts).
 * It owns the gpu.js instance (and, in webgpu mode, the WebGPU device) and awaits every kernel,
 * so gpu.js modes whose kernels return Promises serve the engine's synchronous kernel calls.
 * The operations are the same generators the in-process backend runs (ops.ts, plan.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { CallRequest, ReadyMessage, Request, WireArg, WorkerInit } from './bridge-protocol.ts';
import { CTL, STATUS_ERROR, STATUS_OK } from './bridge-protocol.ts';
import type { GpujsMode } from './gpu-types.ts';
import { loadGpujs } from './gpu-types.ts';
import { GpujsEngine, runAsync } from './ops.ts';
import type { KernelArgs } from './plan.ts';
import { planKernel, runReference } from './plan.ts';
import { installNavigatorGpu } from './webgpu-env.ts';

const init = workerData as WorkerInit;
const ctl = new Int32Array(init.ctl);
let data = init.data;

Atomics.store(ctl, CTL.ALIVE, 1);
// However the thread ends, a main thread blocked on a call must wake up and see it.
process.on('exit', () => {
  Atomics.store(ctl, CTL.ALIVE, 0);
  Atomics.notify(ctl, CTL.DONE);
});

function finish(seq: number, status: number): void {
  Atomics.store(ctl, CTL.STATUS, status);
  Atomics.store(ctl, CTL.DONE, seq);
  Atomics.notify(ctl, CTL.DONE);
}

function fail(seq: number, e: unknown): void {
  const text = e instanceof Error ? (e.stack ?? e.message) : String(e);
  // Posted before DONE is stored, so the message is queued by the time main wakes.
  init.reply.postMessage(text);
  finish(seq, STATUS_ERROR);
}

function view(a: WireArg): unknown {
  if (a.t === 'v') return a.v;
  return a.t === 'f32' ? new Float32Array(data, a.off, a.len) : new Int32Array(data, a.off, a.len);
}

async function call(engine: GpujsEngine, req: CallRequest): Promise<void> {
  if (req.data) data = req.data;
  const args = req.args.map(view) as KernelArgs<typeof req.name>;
  const op = planKernel(engine, req.name, args);
  if (op) await runAsync(op);
  else runReference(req.name, args);
}

/** A 1-element kernel run at start, so a mode that cannot actually run (no adapter, lost device) fails here, not mid-training. */
async function selfTest(engine: GpujsEngine): Promise<void> {
  const x = new Float32Array([-2, 3]), y = new Float32Array(2);
  const op = planKernel(engine, 'unary', ['relu', x, y, 0]);
  if (op) await runAsync(op);
  if (y[0] !== 0 || y[1] !== 3) throw new Error(`gpujs worker: self-test returned [${y[0]}, ${y[1]}] for relu([-2, 3])`);
}

async function start(): Promise<GpujsEngine> {
  if (init.mode === 'webgpu') {
    installNavigatorGpu(init.webgpuDir);
    const nav = (globalThis as { navigator?: { gpu?: { requestAdapter(): Promise<unknown> } } }).navigator;
    if (!(await nav?.gpu?.requestAdapter())) throw new Error('gpujs: no WebGPU adapter (navigator.gpu.requestAdapter() returned null)');
  }
  const lib = loadGpujs();
  const engine = new GpujsEngine(new lib.GPU({ mode: init.mode as GpujsMode }), lib, init.engine);
  await selfTest(engine);
  return engine;
}

const port = parentPort!;
start().then((engine) => {
  port.on('message', (req: Request) => {
    if (req.kind === 'shutdown') {
      void Promise.resolve().then(() => engine.dispose()).catch(() => undefined).finally(() => process.exit(0));
      return;
    }
    if (req.kind === 'exit') process.exit(3);
    if (req.kind === 'stats') {
      Atomics.store(ctl, CTL.RESULT, engine.compiledKernels);
      finish(req.seq, STATUS_OK);
      return;
    }
    call(engine, req).then(() => finish(req.seq, STATUS_OK), (e: unknown) => fail(req.seq, e));
  });
  port.postMessage({ ready: true, mode: engine.mode } satisfies ReadyMessage);
}, (e: unknown) => {
  port.postMessage({ ready: false, error: e instanceof Error ? e.message : String(e) } satisfies ReadyMessage);
});
