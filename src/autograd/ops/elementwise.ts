/**
 * Element-wise ops with broadcasting, unary activations and reductions. Each op computes its
 * forward with a kernel and records a backward written with these same ops, so one gradient
 * formula serves every backend.
 */
import { record } from '../tape.ts';
import { kernels } from '../../tensor/kernels/registry.ts';
import type { BinaryName, UnaryName } from '../../tensor/kernels/types.ts';
import { broadcastShapes, broadcastStrides, contiguousStrides, shapeSize, shapeStr } from '../../tensor/layout.ts';
import { Tensor, allocArray, outputArray, tensorFromArray } from '../../tensor/tensor.ts';
import { full } from '../../tensor/creation.ts';

export function sameDtype(op: string, a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype) throw new Error(`${op}: dtype mismatch (${a.dtype} vs ${b.dtype})`);
}

function binaryForward(name: BinaryName, a: Tensor, b: Tensor): Tensor {
  sameDtype(name, a, b);
  const shape = broadcastShapes(name, a.shape, b.shape);
  const out = outputArray(a.dtype, shapeSize(shape));
  kernels(a.dtype).binary(
    name,
    a.values(), broadcastStrides(a.shape, contiguousStrides(a.shape), shape),
    b.values(), broadcastStrides(b.shape, contiguousStrides(b.shape), shape),
    out, shape,
  );
  return tensorFromArray(out, shape);
}

export function add(a: Tensor, b: Tensor): Tensor {
  return record(binaryForward('add', a, b), 'add', [a, b], (gy) => [gy, gy]);
}

export function sub(a: Tensor, b: Tensor): Tensor {
  return record(binaryForward('sub', a, b), 'sub', [a, b], (gy, needs) => [gy, needs[1] ? neg(gy) : null]);
}

export function mul(a: Tensor, b: Tensor): Tensor {
  return record(binaryForward('mul', a, b), 'mul', [a, b], (gy, needs) => [
    needs[0] ? mul(gy, b) : null,
    needs[1] ? mul(gy, a) : null,
  ]);
}

export function div(a: Tensor, b: Tensor): Tensor {
  return record(binaryForward('div', a, b), 'div', [a, b], (gy, needs) => [
    needs[0] ? div(gy, b) : null,
    needs[1] ? neg(div(mul(gy, a), mul(b, b))) : null,
  ]);
}

/** x · s for a plain number s. */
export function scale(x: Tensor, s: number): Tensor {
  return mul(x, full([], s, x.dtype));
}

/** x + s for a plain number s. */
export function addScalar(x: Tensor, s: number): Tensor {
  return add(x, full([], s, x.dtype));
}

function unaryOp(name: UnaryName, x: Tensor, p = 0): Tensor {
  const xv = x.values();
  const out = outputArray(x.dtype, xv.length);
  kernels(x.dtype).unary(name, xv, out, p);
  const y = tensorFromArray(out, x.shape);
  return record(y, name, [x], (gy) => {
    const gx = outputArray(x.dtype, xv.length);
    kernels(x.dtype).unaryGrad(name, xv, out, gy.values(), gx, p);
    return [tensorFromArray(gx, x.shape)];
  });
}

/** max(x, 0) + slope · min(x, 0); the reference networks use PyTorch's default slope 0.01. */
export const leakyRelu = (x: Tensor, slope = 0.01): Tensor => unaryOp('leakyRelu', x, slope);
export const relu = (x: Tensor): Tensor => unaryOp('relu', x);
export const elu = (x: Tensor, alpha = 1): Tensor => unaryOp('elu', x, alpha);
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', x);
export const exp = (x: Tensor): Tensor => unaryOp('exp', x);
export const log = (x: Tensor): Tensor => unaryOp('log', x);
export const neg = (x: Tensor): Tensor => unaryOp('neg', x);
export const sqrt = (x: Tensor): Tensor => unaryOp('sqrt', x);
export const abs = (x: Tensor): Tensor => unaryOp('abs', x);
export const square = (x: Tensor): Tensor => unaryOp('square', x);

function normalizeAxes(op: string, rank: number, axes?: number | readonly number[]): boolean[] {
  const flags = new Array<boolean>(rank).fill(axes === undefined);
  if (axes === undefined) return flags;
  for (const a of typeof axes === 'number' ? [axes] : axes) {
    const ax = a < 0 ? a + rank : a;
    if (ax < 0 || ax >= rank) throw new Error(`${op}: axis ${a} out of range for rank ${rank}`);
    flags[ax] = true;
  }
  return flags;
}

function keptShape(shape: readonly number[], flags: boolean[], keepDims: boolean): number[] {
  return keepDims ? shape.map((s, d) => (flags[d] ? 1 : s)) : shape.filter((_, d) => !flags[d]);
}

/** Repeats g (of a shape broadcastable to `shape`) into a dense tensor of `shape`. */
export function broadcastTo(g: Tensor, shape: readonly number[]): Tensor {
  if (shapeStr(g.shape) === shapeStr(shape)) return g;
  const target = broadcastShapes('broadcastTo', g.shape, shape);
  if (shapeStr(target) !== shapeStr(shape)) throw new Error(`broadcastTo: ${shapeStr(g.shape)} cannot be broadcast to ${shapeStr(shape)}`);
  const out = allocArray(g.dtype, shapeSize(shape));
  const zero = allocArray(g.dtype, 1);
  kernels(g.dtype).binary('add', g.values(), broadcastStrides(g.shape, contiguousStrides(g.shape), shape), zero, shape.map(() => 0), out, [...shape]);
  return record(tensorFromArray(out, shape), 'broadcastTo', [g], (gy) => [sumToShape(gy, g.shape)]);
}

export function sum(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const flags = normalizeAxes('sum', x.rank, axes);
  const outShape = keptShape(x.shape, flags, keepDims);
  const out = outputArray(x.dtype, shapeSize(outShape));
  kernels(x.dtype).reduce('sum', x.values(), [...x.shape], flags, out);
  return record(tensorFromArray(out, outShape), 'sum', [x], (gy) => [
    broadcastTo(reshapeDense(gy, keptShape(x.shape, flags, true)), x.shape),
  ]);
}

export function mean(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const flags = normalizeAxes('mean', x.rank, axes);
  const count = x.shape.reduce((acc, s, d) => (flags[d] ? acc * s : acc), 1);
  return scale(sum(x, axes, keepDims), 1 / count);
}

/** Maximum over axes; the gradient is shared equally among tied maxima. */
export function max(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const flags = normalizeAxes('max', x.rank, axes);
  const outShape = keptShape(x.shape, flags, keepDims);
  const out = outputArray(x.dtype, shapeSize(outShape));
  kernels(x.dtype).reduce('max', x.values(), [...x.shape], flags, out);
  const y = tensorFromArray(out, outShape);
  return record(y, 'max', [x], (gy) => {
    const keep = keptShape(x.shape, flags, true);
    const yb = broadcastTo(reshapeDense(y, keep), x.shape).values();
    const xv = x.values();
    const mask = allocArray(x.dtype, xv.length);
    for (let i = 0; i < xv.length; i++) mask[i] = xv[i] === yb[i] ? 1 : 0;
    const maskT = tensorFromArray(mask, x.shape);
    const counts = sum(maskT, axes, true);
    return [div(mul(broadcastTo(reshapeDense(gy, keep), x.shape), maskT), counts)];
  });
}

/** Variance over axes (biased by default; unbiased divides by n − 1). */
export function variance(x: Tensor, axes?: number | readonly number[], unbiased = false, keepDims = false): Tensor {
  const flags = normalizeAxes('variance', x.rank, axes);
  const count = x.shape.reduce((acc, s, d) => (flags[d] ? acc * s : acc), 1);
  const centered = sub(x, mean(x, axes, true));
  const v = sum(square(centered), axes, keepDims);
  return scale(v, 1 / (unbiased ? count - 1 : count));
}

/** Sums a broadcast gradient back down to `shape` (the one place broadcasting is undone). */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (shapeStr(g.shape) === shapeStr(shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let d = 0; d < g.rank; d++) {
    if (d < lead || (shape[d - lead] === 1 && g.shape[d] !== 1)) axes.push(d);
  }
  const s = axes.length > 0 ? sum(g, axes, true) : g;
  return reshapeDense(s, shape);
}

/** Reinterprets dense values with a new shape of the same size (no copy when already dense). */
export function reshapeDense(x: Tensor, shape: readonly number[]): Tensor {
  if (shapeSize(shape) !== x.size) throw new Error(`reshape: cannot view ${shapeStr(x.shape)} (${x.size} values) as ${shapeStr(shape)}`);
  const y = tensorFromArray(x.values(), shape);
  return record(y, 'reshape', [x], (gy) => [reshapeDense(gy, x.shape)]);
}
