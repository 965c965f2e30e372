/**
 * The worker bridge: gpu.js runs in a dedicated worker thread (worker.ts) that owns the device
 * and awaits each kernel, while the engine's kernel calls stay synchronous on the main thread,
 * which blocks in `Atomics.wait` until the worker is done (allowed on Node's main thread).
 * This is what makes gpu.js's WebGPU mode, whose kernels return Promises, usable for training;
 * it works in every gpu.js mode, so CI exercises it in `cpu` / `webasm` mode without a GPU.
 * Protocol: bridge-protocol.ts.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { KernelSet } from '../types.ts';
import type { ArraySlot, CallRequest, ExitRequest, ReadyMessage, Request, StatsRequest, WireArg, WorkerInit } from './bridge-protocol.ts';
import { CTL, CTL_INTS, STATUS_OK } from './bridge-protocol.ts';
import type { EngineOptions } from './ops.ts';
import type { GpujsKernelName, KernelArgs } from './plan.ts';
import { buildKernels, OUTPUT_ARGS, runReference } from './plan.ts';

export interface BridgeOptions {
  /** gpu.js mode the worker creates its GPU in. */
  mode: string;
  engine?: EngineOptions;
  /** Folder whose node_modules holds `webgpu` (default GPUJS_WEBGPU_DIR, then normal resolution). */
  webgpuDir?: string;
  /** Initial size of the shared operand buffer in bytes (default 4 MiB); it grows on demand. */
  initialSharedBytes?: number;
  /** How long to wait for the worker to load gpu.js and pass its self-test (default 60 s). */
  startTimeoutMs?: number;
}

const ALIGN = 16;
const DEFAULT_SHARED_BYTES = 4 << 20;

/**
 * The file URL of tsx's ESM register API. Not import.meta.resolve: under mocha, tsx compiles this
 * file to CommonJS, where import.meta is a shim; and not require.resolve, whose CommonJS build of
 * that API cannot be imported from a worker. So: the package's own exports map, read by hand.
 */
function tsxEsmApi(): string {
  const pkgFile = createRequire(import.meta.url).resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { exports?: Record<string, unknown> };
  const entry = pkg.exports?.['./esm/api'] as { import?: { default?: string } } | undefined;
  return pathToFileURL(path.join(path.dirname(pkgFile), entry?.import?.default ?? './dist/esm/api/index.mjs')).href;
}

/**
 * The worker is TypeScript: a tiny CommonJS bootstrap registers the tsx loader in the thread and
 * then imports it (`--import tsx` in a worker's execArgv registers the hooks too late for the
 * entry module on Node 20). Compiled to .js, it is imported directly.
 */
function bootstrapSource(): string {
  const entry = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url).href;
  const load = `import(${JSON.stringify(entry)})`;
  if (!import.meta.url.endsWith('.ts')) return `${load}.catch((e) => { throw e; });`;
  const tsx = tsxEsmApi();
  return `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return ${load}; }).catch((e) => { throw e; });`;
}

export class GpujsWorkerBridge {
  private readonly ctl: Int32Array;
  private data: SharedArrayBuffer;
  /** A buffer the worker has not seen yet: sent with the next request. */
  private pendingData: SharedArrayBuffer | undefined;
  private seq = 0;
  private busy = false;
  private dead: string | undefined;
  private exited: Promise<void>;

  private constructor(private readonly worker: Worker, private readonly reply: MessagePort,
                      ctl: SharedArrayBuffer, data: SharedArrayBuffer, readonly mode: string) {
    this.ctl = new Int32Array(ctl);
    this.data = data;
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
  }

  /** Starts the worker and waits until its gpu.js instance has run a kernel. Rejects with the worker's reason. */
  static async start(opts: BridgeOptions): Promise<GpujsWorkerBridge> {
    const ctl = new SharedArrayBuffer(CTL_INTS * 4);
    const data = new SharedArrayBuffer(Math.max(ALIGN, opts.initialSharedBytes ?? DEFAULT_SHARED_BYTES));
    const { port1, port2 } = new MessageChannel();
    const init: WorkerInit = {
      mode: opts.mode, engine: opts.engine ?? {}, ctl, data, reply: port2,
      ...(opts.webgpuDir !== undefined ? { webgpuDir: opts.webgpuDir } : {}),
    };
    const worker = new Worker(bootstrapSource(), { eval: true, execArgv: [], workerData: init, transferList: [port2] });
    const timeoutMs = opts.startTimeoutMs ?? 60000;
    let timer: NodeJS.Timeout | undefined;
    try {
      const ready = await new Promise<ReadyMessage>((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`gpujs worker (${opts.mode}): not ready after ${timeoutMs} ms`)), timeoutMs);
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`gpujs worker (${opts.mode}) exited during start (code ${code})`)));
      });
      if (!ready.ready) throw new Error(`gpujs worker (${opts.mode}) could not start: ${ready.error}`);
      worker.removeAllListeners('message');
      worker.removeAllListeners('error');
      worker.removeAllListeners('exit');
      const bridge = new GpujsWorkerBridge(worker, port1, ctl, data, ready.mode);
      worker.on('error', (e) => { bridge.dead ??= `worker error: ${e.message}`; });
      // The worker and its ports must never keep a finished process alive. unref() after the
      // listeners above, since attaching a 'message' listener re-references the worker.
      worker.unref();
      port1.unref();
      return bridge;
    } catch (e) {
      port1.close();
      await worker.terminate().catch(() => undefined);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Current size of the shared operand buffer (it only grows). */
  get sharedBytes(): number { return this.data.byteLength; }

  /** Runs one kernel in the worker, blocking until it is done; outputs are written back into the caller's arrays. */
  call<K extends GpujsKernelName>(name: K, args: KernelArgs<K>): void {
    const list = args as unknown as unknown[];
    const wire: WireArg[] = [];
    let end = 0;
    for (const a of list) {
      if (a instanceof Float32Array || a instanceof Int32Array) {
        wire.push({ t: a instanceof Float32Array ? 'f32' : 'i32', off: end, len: a.length });
        end += Math.ceil(a.byteLength / ALIGN) * ALIGN;
      } else if (ArrayBuffer.isView(a)) {
        throw new Error(`gpujs worker bridge: ${name} got a ${a.constructor.name} (only Float32Array / Int32Array travel)`);
      } else {
        wire.push({ t: 'v', v: a as number | boolean | string });
      }
    }
    this.ensureCapacity(end);
    for (let i = 0; i < list.length; i++) {
      const s = wire[i]!;
      if (s.t === 'f32') new Float32Array(this.data, s.off, s.len).set(list[i] as Float32Array);
      else if (s.t === 'i32') new Int32Array(this.data, s.off, s.len).set(list[i] as Int32Array);
    }
    const req: CallRequest = { kind: 'call', seq: 0, name, args: wire };
    this.roundTrip(req);
    for (const i of OUTPUT_ARGS[name]) {
      const s = wire[i] as ArraySlot, out = list[i] as Float32Array | Int32Array;
      out.set(s.t === 'f32' ? new Float32Array(this.data, s.off, s.len) : new Int32Array(this.data, s.off, s.len));
    }
  }

  /** Number of kernels the worker has compiled (one per op and shape). */
  compiledKernels(): number {
    this.roundTrip({ kind: 'stats', seq: 0 });
    return Atomics.load(this.ctl, CTL.RESULT);
  }

  /** Tests only: makes the worker thread exit in the middle of a request (the request must throw, not hang). */
  simulateWorkerExit(): void {
    this.roundTrip({ kind: 'exit', seq: 0 });
  }

  /** Stops the worker (after it has released its kernels and device); later calls throw. */
  async dispose(): Promise<void> {
    if (this.dead === 'disposed') return;
    const wasAlive = this.dead === undefined;
    this.dead = 'disposed';
    if (wasAlive) {
      this.worker.postMessage({ kind: 'shutdown' } satisfies Request);
      let timer: NodeJS.Timeout | undefined;
      // A driver that does not let go in time is not worth waiting for. The timer is ref'd on
      // purpose: the worker is not, and an `await dispose()` must not leave the loop empty.
      await Promise.race([this.exited, new Promise<void>((r) => { timer = setTimeout(r, 2000); })]);
      clearTimeout(timer);
    }
    await this.worker.terminate().catch(() => undefined);
    this.reply.close();
  }

  /** Grows the shared buffer to hold `bytes` (doubling, so growth is rare); the worker gets it with the next request. */
  private ensureCapacity(bytes: number): void {
    if (bytes <= this.data.byteLength) return;
    // Headroom (×2 or +25%) so slowly growing shapes do not reallocate every call, capped at +256 MiB.
    const want = Math.max(2 * this.data.byteLength, Math.ceil(bytes * 1.25));
    const size = Math.max(bytes, Math.min(want, bytes + (256 << 20)));
    this.data = new SharedArrayBuffer(size);
    this.pendingData = this.data;
  }

  /** Posts a request and blocks until the worker has answered it; throws the worker's error. */
  private roundTrip(req: CallRequest | StatsRequest | ExitRequest): void {
    if (this.dead) throw new Error(`gpujs worker bridge: the worker is gone (${this.dead})`);
    // Kernel calls are synchronous, so only re-entrance (a call from inside a call) could overlap.
    if (this.busy) throw new Error('gpujs worker bridge: one request at a time');
    this.busy = true;
    try {
      // ctl[DONE] is an int32: wrap to 1 rather than pass 2^31 − 1 (the answer would never match).
      this.seq = this.seq >= 0x7fffffff ? 1 : this.seq + 1;
      const seq = this.seq;
      req.seq = seq;
      if (req.kind === 'call' && this.pendingData) { req.data = this.pendingData; this.pendingData = undefined; }
      this.worker.postMessage(req);
      for (;;) {
        const done = Atomics.load(this.ctl, CTL.DONE);
        if (done === seq) break;
        if (Atomics.load(this.ctl, CTL.ALIVE) === 0) {
          this.dead = 'the worker thread ended';
          throw new Error(`gpujs worker bridge: the worker thread ended during ${req.kind === 'call' ? req.name : req.kind}`);
        }
        // Timed, so a worker that dies without notifying is noticed within a second.
        Atomics.wait(this.ctl, CTL.DONE, done, 1000);
      }
      if (Atomics.load(this.ctl, CTL.STATUS) !== STATUS_OK) {
        const msg = receiveMessageOnPort(this.reply)?.message;
        throw new Error(`gpujs worker (${this.mode}): ${typeof msg === 'string' ? msg : 'kernel failed (no message)'}`);
      }
    } finally {
      this.busy = false;
    }
  }
}

/**
 * The float32 kernel set over a bridge. Calls with float64 data run on the `ts` reference right
 * here, without a round trip.
 */
export function bridgeKernels(bridge: GpujsWorkerBridge): Partial<KernelSet> {
  return buildKernels(<K extends GpujsKernelName>(name: K, args: KernelArgs<K>): void => {
    const f64 = (args as unknown as unknown[]).some((a) => a instanceof Float64Array);
    if (f64) runReference(name, args);
    else bridge.call(name, args);
  });
}
