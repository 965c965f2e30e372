/**
 * The tape: what an op records so that backward can run later. It imports nothing at run time,
 * so ops (which record) and the backward pass (which calls ops) both depend on it and not on
 * each other.
 */
import type { FloatArray } from '../tensor/kernels/types.ts';
import type { GradNode, Tensor } from '../tensor/tensor.ts';

/**
 * Whether ops record a graph. Module-level on purpose: it is a dynamically scoped flag of the
 * synchronous call stack (noGrad sets it and restores it in `finally`), shared by every engine
 * the way a call stack is.
 */
let gradEnabled = true;

/** Runs fn without recording a graph (inference, optimizer updates, gradient formulas). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try { return fn(); } finally { gradEnabled = prev; }
}

/** Whether ops record a graph now (false inside noGrad). */
export function gradRecording(): boolean { return gradEnabled; }

export type BackwardFn = (gy: Tensor, needs: readonly boolean[]) => (Tensor | null)[];

/**
 * Attaches a graph node to `out` when gradients are being recorded and some input needs one.
 * `backward` receives the upstream gradient and which inputs need a gradient; it may return
 * gradients of a broadcast shape: the engine reduces them to each input's shape (one place).
 * `saved`: storage the backward alone reads, handed back by releaseGraph with the node.
 */
export function record(out: Tensor, op: string, inputs: readonly Tensor[], backward: BackwardFn, saved?: readonly FloatArray[]): Tensor {
  if (!gradEnabled || !inputs.some((t) => t.requiresGrad)) return out;
  const needs = inputs.map((t) => t.requiresGrad);
  const node: GradNode = { op, inputs, backward: (gy) => backward(gy, needs), saved };
  out.gradNode = node;
  out.requiresGrad = true;
  return out;
}
