/**
 * The wasm runtime's hand-off between the main thread and its workers. A worker must run each
 * dispatched command list exactly once, however its wake-ups arrive: a job that accumulates
 * (addInto, the reduction of per-thread partial sums) run twice gives wrong numbers.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildKernelModule, FN } from '../src/tensor/kernels/wasm/kernels.ts';
import { wasmFeatures } from '../src/tensor/kernels/wasm/index.ts';
import { WasmRuntime } from '../src/tensor/kernels/wasm/runtime.ts';

describe('wasm runtime: worker hand-off', function () {
  this.timeout(30000);
  let rt: WasmRuntime;
  before(async function () {
    if (!wasmFeatures().threads) this.skip();
    const module = new WebAssembly.Module(buildKernelModule({ relaxedSimd: wasmFeatures().relaxedSimd, shared: true, maximumPages: 256 }));
    rt = await WasmRuntime.create(module, 2, 256, true);
  });
  after(async () => { await rt?.dispose(); });

  /** dst += src on worker 1 (16 floats of ones into zeros), returning dst's address. */
  function addOnWorker(): number {
    rt.reset();
    const dst = rt.alloc(64), src = rt.alloc(64);
    rt.commit();
    rt.f32.fill(0, dst >> 2, (dst >> 2) + 16);
    rt.f32.fill(1, src >> 2, (src >> 2) + 16);
    rt.run([[], [FN.addInto.id, dst, src, 16]]);
    return dst;
  }

  it('runs a job once when a wake-up arrives after the worker already took the job', async () => {
    // The main thread stores the new sequence number, then notifies. Descheduled between the two
    // (a busy machine), a spinning worker sees the number, runs the job and goes back to sleep
    // before the notify arrives; that late notify must not start the same job again.
    for (let round = 0; round < 5; round++) {
      const dst = addOnWorker();
      await sleep(20); // the worker has stopped spinning and sleeps in Atomics.wait
      rt.notifyWorkers();
      await sleep(20);
      expect(Array.from(rt.f32.subarray(dst >> 2, (dst >> 2) + 16)), `round ${round}`).to.deep.equal(new Array(16).fill(1));
    }
  });

  it('still runs every new job after spurious wake-ups', async () => {
    for (let i = 0; i < 3; i++) rt.notifyWorkers();
    await sleep(10);
    const dst = addOnWorker();
    expect(Array.from(rt.f32.subarray(dst >> 2, (dst >> 2) + 16))).to.deep.equal(new Array(16).fill(1));
  });

  it('keeps running jobs when the sequence number passes 2^31 − 1 (a long study in one process)', () => {
    // Sequence numbers travel as int32; a negative one tells the workers to exit, so the counter
    // must wrap to 1, not to −2^31 (then the worker exits and the main thread waits forever: hence
    // a child process with a time limit). Jobs straddle the wrap from 2^31 − 3.
    const script = `
      import { buildKernelModule, FN } from './src/tensor/kernels/wasm/kernels.ts';
      import { WasmRuntime } from './src/tensor/kernels/wasm/runtime.ts';
      const module = new WebAssembly.Module(buildKernelModule({ relaxedSimd: false, shared: true, maximumPages: 256 }));
      const rt = await WasmRuntime.create(module, 2, 256, true);
      rt.seq = 2 ** 31 - 3;
      for (let job = 0; job < 6; job++) {
        rt.reset();
        const dst = rt.alloc(64), src = rt.alloc(64);
        rt.commit();
        rt.f32.fill(0, dst >> 2, (dst >> 2) + 16);
        rt.f32.fill(1, src >> 2, (src >> 2) + 16);
        rt.run([[], [FN.addInto.id, dst, src, 16]]);
        if (rt.f32[dst >> 2] !== 1) throw new Error('job ' + job + ' gave ' + rt.f32[dst >> 2]);
      }
      await rt.dispose();
      console.log('ok');`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20000 });
    expect(r.stdout.trim() + r.stderr, r.error ? String(r.error) : '').to.equal('ok');
  });
});
