/**
 * Where one kernel call's operands live. An array that is already in the runtime's memory (tensor
 * storage from the heap, see WasmRuntime.heapArray) is used in place; any other array is staged
 * through an arena copy: copied in at `commit` when the kernel reads it, copied back out at
 * `finish` when the kernel writes it. Kernel drivers ask for addresses, never copy themselves.
 *
 *   const io = new Operands(rt);                 // resets the arena (or: after a cached setup)
 *   const X = io.input(x, n), Y = io.output(y, n), S = io.scratch(bytes);
 *   io.commit();                                 // grows memory, stages the inputs
 *   rt.run(plan.lists);
 *   io.finish();                                 // stages the outputs back
 */
import type { WasmRuntime } from './runtime.ts';

type Int32OrFloat32 = Float32Array | Int32Array;

export class Operands {
  private readonly copyIn: [number, Int32OrFloat32, number][] = [];
  private readonly copyOut: [number, Int32OrFloat32, number][] = [];

  /** Starts the call's arena: empty, or after a cached setup's tables (`from`, a value of arenaTop). */
  constructor(private readonly rt: WasmRuntime, from?: number) {
    if (from === undefined) rt.reset(); else rt.restore(from);
  }

  /**
   * Byte address of the first `n` elements of `a`, which the kernel reads. `group`: the kernel
   * touches whole groups of that many elements, so a ragged `n` is staged in a padded slot (the
   * padding computes garbage that is never copied out) rather than read or written in place.
   */
  input(a: Int32OrFloat32, n: number, group = 1): number { return this.place(a, n, true, false, group); }
  /** Byte address of the first `n` elements of `a`, which the kernel writes (and does not read); `group` as for input. */
  output(a: Int32OrFloat32, n: number, group = 1): number { return this.place(a, n, false, true, group); }
  /** Byte address of the first `n` elements of `a`, which the kernel reads and writes (accumulates into). */
  inout(a: Int32OrFloat32, n: number): number { return this.place(a, n, true, true, 1); }
  /** Arena bytes the kernel uses and then forgets. */
  scratch(bytes: number): number { return this.rt.alloc(bytes); }

  /** Grows memory over the arena, then stages the inputs that do not live in it. */
  commit(): void {
    this.rt.commit();
    for (const [at, a, n] of this.copyIn) this.viewOf(a).set(a.subarray(0, n), at >> 2);
  }

  /** Stages the outputs that do not live in memory back into their arrays. */
  finish(): void {
    for (const [at, a, n] of this.copyOut) a.set(this.viewOf(a).subarray(at >> 2, (at >> 2) + n));
  }

  private place(a: Int32OrFloat32, n: number, read: boolean, write: boolean, group: number): number {
    const ragged = n % group !== 0;
    const own = ragged ? -1 : this.rt.addressOf(a);
    if (own >= 0) return own;
    const at = this.rt.alloc(Math.ceil(n / group) * group * 4);
    if (read) this.copyIn.push([at, a, n]);
    if (write) this.copyOut.push([at, a, n]);
    return at;
  }

  private viewOf(a: Int32OrFloat32): Int32OrFloat32 { return a instanceof Int32Array ? this.rt.i32 : this.rt.f32; }
}
