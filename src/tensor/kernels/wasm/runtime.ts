/**
 * The wasm runtime: one WebAssembly.Memory, a bump arena over it that is reset per kernel call,
 * and a persistent pool of worker threads that instantiate the same compiled module over the
 * same (shared) memory. A kernel call is planned on the main thread as one flat command list per
 * thread (`[fnId, ...args]`), so workers need no TypeScript and no knowledge of the kernels:
 * they just replay calls into their wasm instance.
 */
import { Worker } from 'node:worker_threads';
import { FN, FN_NAMES, type FnName } from './kernels.ts';

type WasmFn = (...args: number[]) => void;

/** Control block per worker at the start of memory: seq, done, cmdPtr, cmdLen, error. */
const CTL_STRIDE = 8;
const CTL_BASE = 16;
/** The arena starts after the control blocks; 64-byte alignment keeps panels cache-line aligned. */
const ARENA_BASE = 4096;
const PAGE = 65536;

const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const { module, memory, slot, names, arities } = workerData;
const inst = new WebAssembly.Instance(module, { env: { memory } });
const fns = names.map((n) => inst.exports[n]);
const ctl = new Int32Array(memory.buffer, 0, 1024);
let seq = 0;
parentPort.postMessage('ready');
for (;;) {
  Atomics.wait(ctl, slot, seq);
  seq = Atomics.load(ctl, slot);
  if (seq < 0) break;
  let status = 0;
  try {
    const mem = new Int32Array(memory.buffer);
    let p = ctl[slot + 2] >> 2;
    const end = p + ctl[slot + 3];
    while (p < end) {
      const id = mem[p], a = arities[id];
      fns[id].apply(null, mem.subarray(p + 1, p + 1 + a));
      p += 1 + a;
    }
  } catch (e) {
    status = 1;
    try { parentPort.postMessage(String(e && e.stack || e)); } catch {}
  }
  Atomics.store(ctl, slot + 4, status);
  Atomics.store(ctl, slot + 1, seq);
  Atomics.notify(ctl, slot + 1);
}
`;

export class WasmRuntime {
  readonly threads: number;
  private readonly fns: WasmFn[];
  private readonly workers: Worker[] = [];
  private readonly ctl: Int32Array;
  private seq = 0;
  private top = ARENA_BASE;
  f32!: Float32Array;
  i32!: Int32Array;
  private disposed = false;

  private constructor(readonly memory: WebAssembly.Memory, instance: WebAssembly.Instance, threads: number) {
    this.threads = threads;
    this.fns = FN_NAMES.map((n) => instance.exports[n] as WasmFn);
    this.ctl = new Int32Array(memory.buffer, 0, 1024);
    this.refresh();
  }

  static async create(module: WebAssembly.Module, threads: number, maximumPages: number): Promise<WasmRuntime> {
    const memory = new WebAssembly.Memory({ initial: 16, maximum: maximumPages, shared: threads > 1 });
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    const rt = new WasmRuntime(memory, instance, threads);
    const ready: Promise<void>[] = [];
    for (let t = 1; t < threads; t++) {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true, execArgv: [],
        workerData: {
          module, memory, slot: (CTL_BASE + t * CTL_STRIDE),
          names: FN_NAMES, arities: FN_NAMES.map((n) => FN[n].arity),
        },
      });
      ready.push(new Promise<void>((resolve, reject) => {
        worker.once('message', () => resolve());
        worker.once('error', reject);
      }));
      worker.on('message', (m: unknown) => { if (m !== 'ready') rt.workerError = String(m); });
      rt.workers.push(worker);
    }
    await Promise.all(ready);
    // Idle workers must never keep a finished process alive. unref() after the listeners above:
    // attaching a 'message' listener re-references the worker's port.
    for (const w of rt.workers) w.unref();
    return rt;
  }
  private workerError = '';

  /** Re-creates the views after memory growth (growth detaches or re-sizes the old buffer). */
  private refresh(): void {
    if (this.f32?.buffer === this.memory.buffer && this.f32.length * 4 === this.memory.buffer.byteLength) return;
    this.f32 = new Float32Array(this.memory.buffer);
    this.i32 = new Int32Array(this.memory.buffer);
  }

  /** Forgets every allocation; each kernel call starts from an empty arena. */
  reset(): void { this.top = ARENA_BASE; }
  /** The arena's current end (byte address): with `restore`, replays a recorded layout. */
  get arenaTop(): number { return this.top; }
  /** Forgets every allocation past `top` (a value of `arenaTop`); call `commit` before use. */
  restore(top: number): void { this.top = top; }
  /** Reserves bytes (64-byte aligned) and returns the byte address; call `commit` before use. */
  alloc(bytes: number): number {
    const p = (this.top + 63) & ~63;
    this.top = p + Math.max(0, bytes);
    return p;
  }
  /** Grows memory to cover everything allocated so far (never shrinks, so steady shapes stop growing). */
  commit(): void {
    const need = this.top + 64;
    const have = this.memory.buffer.byteLength;
    if (need > have) {
      if (need > 2 ** 31) throw new Error(`wasm backend: a kernel needs ${need} bytes of scratch (> 2 GiB)`);
      const pages = Math.ceil((need - have) / PAGE);
      this.memory.grow(pages);
    }
    this.refresh();
  }
  /** High-water mark of wasm memory in bytes (tests use it to check for growth across runs). */
  get memoryBytes(): number { return this.memory.buffer.byteLength; }

  /** Runs one flat command list on the calling thread. */
  exec(list: number[]): void {
    const fns = this.fns;
    for (let p = 0; p < list.length;) {
      const id = list[p]!;
      switch (id) {
        case FN.pack4.id: case FN.pack8.id:
          fns[id]!(list[p + 1]!, list[p + 2]!, list[p + 3]!, list[p + 4]!, list[p + 5]!, list[p + 6]!); break;
        case FN.kernel1.id:
          fns[id]!(list[p + 1]!, list[p + 2]!, list[p + 3]!, list[p + 4]!, list[p + 5]!, list[p + 6]!, list[p + 7]!); break;
        case FN.kernel.id:
          fns[id]!(list[p + 1]!, list[p + 2]!, list[p + 3]!, list[p + 4]!, list[p + 5]!, list[p + 6]!, list[p + 7]!, list[p + 8]!); break;
        default:
          fns[id]!(...list.slice(p + 1, p + 1 + FN[FN_NAMES[id]!].arity));
      }
      p += 1 + FN[FN_NAMES[id]!].arity;
    }
  }

  /**
   * Runs lists[0] here and lists[t] on worker t concurrently, returning when all are done.
   * Command lists live in the arena, so call this after all allocations for the kernel.
   */
  run(lists: number[][]): void {
    const active: number[] = [];
    for (let t = 1; t < lists.length; t++) {
      if (lists[t]!.length === 0) continue;
      if (t >= this.threads) throw new Error('more command lists than threads');
      active.push(t);
    }
    if (active.length > 0) {
      // Workers are gone after dispose: waiting for them would hang forever.
      if (this.disposed) throw new Error('wasm backend: used after disposeWasmBackend() (activate a backend again with useBackend)');
      this.seq++;
      // Place every list before starting anyone: placing may grow memory.
      const ptrs = active.map((t) => {
        const ptr = this.alloc(lists[t]!.length * 4);
        return ptr;
      });
      this.commit();
      active.forEach((t, i) => this.dispatch(t, lists[t]!, ptrs[i]!));
    }
    this.exec(lists[0] ?? []);
    let failed = '';
    for (const t of active) {
      const s = CTL_BASE + t * CTL_STRIDE;
      for (;;) {
        const done = Atomics.load(this.ctl, s + 1);
        if (done === this.seq) break;
        Atomics.wait(this.ctl, s + 1, done, 1000);
      }
      if (this.ctl[s + 4] !== 0) failed = this.workerError || `worker ${t} failed`;
    }
    if (failed) throw new Error(`wasm backend worker error: ${failed}`);
  }

  private dispatch(t: number, list: number[], ptr: number): void {
    const s = CTL_BASE + t * CTL_STRIDE;
    this.i32.set(list, ptr >> 2);
    this.ctl[s + 2] = ptr;
    this.ctl[s + 3] = list.length;
    this.ctl[s + 4] = 0;
    Atomics.store(this.ctl, s, this.seq);
    Atomics.notify(this.ctl, s);
  }

  /** Stops the workers; the runtime must not be used afterwards. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (let t = 1; t < this.threads; t++) {
      const s = CTL_BASE + t * CTL_STRIDE;
      Atomics.store(this.ctl, s, -1);
      Atomics.notify(this.ctl, s);
    }
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
