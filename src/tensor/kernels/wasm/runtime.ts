/**
 * The wasm runtime: one WebAssembly.Memory holding a bump arena that is reset per kernel call
 * (scratch: packed panels, gather tables, command lists, copies of foreign operands) and, above
 * it, a heap where tensor storage lives (see `heapArray`), so that kernels read and write tensors
 * in place instead of copying them in and out; and a persistent pool of worker threads that instantiate the same compiled module over the
 * same (shared) memory. A kernel call is planned on the main thread as one flat command list per
 * thread (`[fnId, ...args]`), so workers need no TypeScript and no knowledge of the kernels:
 * they just replay calls into their wasm instance.
 */
import { Worker } from 'node:worker_threads';

type WasmFn = (...args: number[]) => void;

/** Control block per worker at the start of memory: seq, done, cmdPtr, cmdLen, error. */
const CTL_STRIDE = 8;
const CTL_BASE = 16;
/** A command list: [fnId, ...args]* (see execList in kernels.ts). */
export type CommandList = readonly number[] | Int32Array;

/** Int32 words of control blocks below the arena (ARENA_BASE bytes / 4): room for 126 workers. */
const CTL_WORDS = 1024;
/**
 * The most threads a runtime starts (the main thread and MAX_WASM_THREADS − 1 workers). The
 * control blocks would fit 126; 64 is well past where these kernels stop scaling and keeps a
 * mistyped count from starting hundreds of workers.
 */
export const MAX_WASM_THREADS = 64;
if (CTL_BASE + MAX_WASM_THREADS * CTL_STRIDE > CTL_WORDS) throw new Error('wasm runtime: MAX_WASM_THREADS does not fit the control blocks');

/** Throws unless `threads` is an integer from 1 to MAX_WASM_THREADS. */
export function checkWasmThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS) {
    throw new RangeError(`wasm backend: threads must be an integer from 1 to ${MAX_WASM_THREADS} (the runtime starts at most ${MAX_WASM_THREADS} threads), got ${threads}`);
  }
}
/** The arena starts after the control blocks; 64-byte alignment keeps panels cache-line aligned. */
const ARENA_BASE = 4096;
const PAGE = 65536;
/** 2 GiB: byte addresses must stay positive i32s (command lists are Int32Arrays). */
const MAX_BYTES = 2 ** 31;
/**
 * Tensor storage starts here; the arena below it peaks near 60 MiB for the CIFAR-10 autoencoder
 * at batch 200, so 1 GiB leaves it ample room. Pages are committed by the OS only when touched.
 */
const HEAP_BASE = 1 << 30;
/** The heap grows memory this much beyond what it needs at once. */
const HEAP_GROW_BYTES = 32 << 20;
/** Blocks are 64-byte aligned (cache lines, and every f32x4 load of a block aligned). */
const BLOCK_ALIGN = 64;
/** Polls of a control word before sleeping on it (about 20-50 µs); SVDD_WASM_SPIN overrides. */
const SPIN = Number(process.env.SVDD_WASM_SPIN ?? 20000);

const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const { module, memory, slot, SPIN } = workerData;
const inst = new WebAssembly.Instance(module, { env: { memory } });
const execList = inst.exports.execList;
const ctl = new Int32Array(memory.buffer, 0, 1024);
let seq = 0;
parentPort.postMessage('ready');
for (;;) {
  // Kernels of one training step arrive back to back: spin briefly before sleeping, since a futex
  // wake-up costs tens of microseconds, as much as a small kernel itself.
  let next = Atomics.load(ctl, slot);
  for (let i = 0; i < SPIN && next === seq; i++) next = Atomics.load(ctl, slot);
  // A wake-up is not a job: the main thread stores the sequence number, then notifies, and when it
  // is descheduled in between, this worker can see the number by spinning, run the job, and be
  // asleep again when that notify arrives. Only a new number starts a job (else the job runs twice).
  while (next === seq) {
    Atomics.wait(ctl, slot, seq);
    next = Atomics.load(ctl, slot);
  }
  seq = next;
  if (seq < 0) break;
  let status = 0;
  try {
    // The whole list runs inside wasm (execList): one call from JavaScript per kernel call.
    const ptr = ctl[slot + 2];
    execList(ptr, ptr + ctl[slot + 3] * 4);
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
  /** The generated execList: runs one command list (every kernel is called through it). */
  private readonly execList: WasmFn;
  private readonly workers: Worker[] = [];
  private readonly ctl: Int32Array;
  private seq = 0;
  private top = ARENA_BASE;
  f32!: Float32Array;
  i32!: Int32Array;
  private disposed = false;
  /** Every SharedArrayBuffer this memory has shown (each growth gives a new, longer one). */
  private readonly ownBuffers = new WeakSet<ArrayBufferLike>();
  private heapTop = HEAP_BASE;
  /** Highest arena end ever committed: the heap may not start below it. */
  private arenaHigh = ARENA_BASE;
  /** Freed heap blocks by byte size; tensor sizes repeat every step, so exact sizes are reused. */
  private readonly freeBlocks = new Map<number, number[]>();
  /** A heap array that is garbage collected gives its block back (explicitly pooled ones stay alive). */
  private readonly finalizer = new FinalizationRegistry<[number, number]>(([start, bytes]) => {
    let list = this.freeBlocks.get(bytes);
    if (!list) { list = []; this.freeBlocks.set(bytes, list); }
    list.push(start);
  });

  private constructor(readonly memory: WebAssembly.Memory, instance: WebAssembly.Instance, threads: number) {
    this.threads = threads;
    this.execList = instance.exports.execList as WasmFn;
    this.ctl = new Int32Array(memory.buffer, 0, CTL_WORDS);
    this.refresh();
  }

  static async create(module: WebAssembly.Module, threads: number, maximumPages: number, shared: boolean): Promise<WasmRuntime> {
    checkWasmThreads(threads);
    const memory = new WebAssembly.Memory({ initial: 16, maximum: maximumPages, shared });
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    const rt = new WasmRuntime(memory, instance, threads);
    const ready: Promise<void>[] = [];
    for (let t = 1; t < threads; t++) {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true, execArgv: [],
        workerData: {
          module, memory, slot: (CTL_BASE + t * CTL_STRIDE), SPIN,
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
    this.ownBuffers.add(this.memory.buffer);
  }

  /** Whether tensor storage can live in this memory: only a shared memory keeps old views valid when it grows. */
  get hasHeap(): boolean { return this.memory.buffer instanceof SharedArrayBuffer; }

  /**
   * A zeroed Float32Array of `length` floats inside this memory, or null when the heap is full or
   * unavailable (the caller then allocates an ordinary array, which kernels copy in and out).
   */
  heapArray(length: number): Float32Array | null {
    if (!this.hasHeap || this.disposed || this.arenaHigh > HEAP_BASE) return null;
    const bytes = Math.ceil((length * 4) / BLOCK_ALIGN) * BLOCK_ALIGN;
    let start = this.freeBlocks.get(bytes)?.pop();
    const reused = start !== undefined;
    if (start === undefined) {
      if (this.heapTop + bytes > MAX_BYTES) return null;
      start = this.heapTop;
      this.heapTop += bytes;
      // Grow in large steps: each growth costs a system call and a new buffer object.
      if (this.heapTop > this.memory.buffer.byteLength) this.grow(Math.min(MAX_BYTES, this.heapTop + HEAP_GROW_BYTES));
    }
    const a = new Float32Array(this.memory.buffer, start, length);
    if (reused) a.fill(0);
    this.finalizer.register(a, [start, bytes]);
    return a;
  }

  /** Bytes of tensor storage handed out from the heap so far (its high-water mark). */
  get heapBytes(): number { return this.heapTop - HEAP_BASE; }

  /** The byte address of `a` when it lives in this memory (a heap array or a view of one), else −1. */
  addressOf(a: ArrayBufferView): number { return this.ownBuffers.has(a.buffer) ? a.byteOffset : -1; }

  private grow(need: number): void {
    const have = this.memory.buffer.byteLength;
    if (need > have) this.memory.grow(Math.ceil((need - have) / PAGE));
    this.refresh();
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
    const limit = this.heapTop > HEAP_BASE ? HEAP_BASE : MAX_BYTES;
    if (need > limit) {
      throw new Error(`wasm backend: a kernel needs ${need} bytes of scratch (more than ${limit / 2 ** 20} MiB); use a smaller batch size`);
    }
    this.arenaHigh = Math.max(this.arenaHigh, need);
    this.grow(need);
  }
  /** High-water mark of wasm memory in bytes (tests use it to check for growth across runs). */
  get memoryBytes(): number { return this.memory.buffer.byteLength; }

  /**
   * Runs lists[0] here and lists[t] on worker t concurrently, returning when all are done.
   * Command lists live in the arena, so call this after all allocations for the kernel.
   */
  run(lists: readonly CommandList[]): void {
    if (this.serialSchedule) { this.runSerial(lists); return; }
    const active: number[] = [];
    for (let t = 1; t < lists.length; t++) {
      if (lists[t]!.length === 0) continue;
      if (t >= this.threads) throw new Error('more command lists than threads');
      active.push(t);
    }
    // Workers are gone after dispose: waiting for them would hang forever.
    if (active.length > 0 && this.disposed) throw new Error('wasm backend: used after disposeWasmBackend() (activate a backend again with useBackend)');
    // Place every list before starting anyone: placing may grow memory.
    const own = lists[0] ?? [];
    const ownPtr = this.alloc(own.length * 4);
    const ptrs = active.map((t) => this.alloc(lists[t]!.length * 4));
    this.commit();
    if (active.length > 0) {
      // Sequence numbers are int32 in memory and a negative one stops the workers: wrap to 1.
      this.seq = this.seq >= 0x7fffffff ? 1 : this.seq + 1;
      active.forEach((t, i) => this.dispatch(t, lists[t]!, ptrs[i]!));
    }
    // This thread's share runs inside wasm too, one call for the whole list (see execList).
    this.i32.set(own, ownPtr >> 2);
    if (active.length > 0) WasmRuntime.schedulingHook?.('own');
    this.execList(ownPtr, ownPtr + own.length * 4);
    let failed = '';
    for (const t of active) {
      const s = CTL_BASE + t * CTL_STRIDE;
      for (;;) {
        let done = Atomics.load(this.ctl, s + 1);
        for (let i = 0; i < SPIN && done !== this.seq; i++) done = Atomics.load(this.ctl, s + 1);
        if (done === this.seq) break;
        Atomics.wait(this.ctl, s + 1, done, 1000);
      }
      if (this.ctl[s + 4] !== 0) failed = this.workerError || `worker ${t} failed`;
    }
    if (active.length > 0) WasmRuntime.schedulingHook?.('return');
    if (failed) throw new Error(`wasm backend worker error: ${failed}`);
  }

  /**
   * Tests only (the contention stress suite, test/stress/contention.ts): called on the main thread
   * where being descheduled matters most, so that a test can stall it there on purpose: 'notify'
   * between publishing a worker's job and waking the worker (the gap in which a worker that takes
   * its job by spinning can finish it and sleep again before the wake-up arrives), 'own' before
   * running its own share while workers run theirs, 'return' after every worker reported its job
   * done (what a worker still writes then lands in the results).
   */
  static schedulingHook: ((point: 'notify' | 'own' | 'return') => void) | null = null;

  /**
   * Tests only: 'forward' runs a call's command lists on this thread one after another (list 0, 1, …),
   * 'reverse' in the opposite order: the two extreme schedules of a parallel phase. A correct plan
   * gives the same bits under both as in parallel; one where a thread reads what another thread
   * writes in the same phase does not (see test/wasm-schedule.test.ts).
   */
  serialSchedule: 'forward' | 'reverse' | null = null;

  private runSerial(lists: readonly CommandList[]): void {
    const order = lists.map((_, t) => t).filter((t) => lists[t]!.length > 0);
    if (this.serialSchedule === 'reverse') order.reverse();
    const ptrs = order.map((t) => this.alloc(lists[t]!.length * 4));
    this.commit();
    order.forEach((t, i) => {
      this.i32.set(lists[t]!, ptrs[i]! >> 2);
      this.execList(ptrs[i]!, ptrs[i]! + lists[t]!.length * 4);
    });
  }

  private dispatch(t: number, list: CommandList, ptr: number): void {
    const s = CTL_BASE + t * CTL_STRIDE;
    this.i32.set(list, ptr >> 2);
    this.ctl[s + 2] = ptr;
    this.ctl[s + 3] = list.length;
    this.ctl[s + 4] = 0;
    Atomics.store(this.ctl, s, this.seq);
    WasmRuntime.schedulingHook?.('notify');
    Atomics.notify(this.ctl, s);
  }

  /**
   * Wakes every worker without giving it work, as a notify that arrives late (after the worker
   * already took its job by spinning) does. Workers must go back to sleep; tests use this.
   */
  notifyWorkers(): void {
    for (let t = 1; t < this.threads; t++) Atomics.notify(this.ctl, CTL_BASE + t * CTL_STRIDE);
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
