import { assertNever, type BinaryName, type FloatArray, type ReduceName, type UnaryName } from '../types.ts';

/** One loop per function, out[i] = f(x[i]; p) for i < n; a table, so a new UnaryName must be added here. */
type UnaryLoop = (x: FloatArray, out: FloatArray, n: number, p: number) => void;
const unaryLoops: Record<UnaryName, UnaryLoop> = {
  leakyRelu: (x, out, n, p) => { for (let i = 0; i < n; i++) { const v = x[i]!; out[i] = v > 0 ? v : v * p; } },
  relu: (x, out, n) => { for (let i = 0; i < n; i++) { const v = x[i]!; out[i] = v > 0 ? v : 0; } },
  elu: (x, out, n, p) => { for (let i = 0; i < n; i++) { const v = x[i]!; out[i] = v > 0 ? v : p * Math.expm1(v); } },
  // Split by sign so exp never overflows: 1/(1+e^-v) for v ≥ 0, e^v/(1+e^v) otherwise.
  sigmoid: (x, out, n) => {
    for (let i = 0; i < n; i++) {
      const v = x[i]!;
      if (v >= 0) out[i] = 1 / (1 + Math.exp(-v)); else { const e = Math.exp(v); out[i] = e / (1 + e); }
    }
  },
  exp: (x, out, n) => { for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]!); },
  log: (x, out, n) => { for (let i = 0; i < n; i++) out[i] = Math.log(x[i]!); },
  neg: (x, out, n) => { for (let i = 0; i < n; i++) out[i] = -x[i]!; },
  sqrt: (x, out, n) => { for (let i = 0; i < n; i++) out[i] = Math.sqrt(x[i]!); },
  abs: (x, out, n) => { for (let i = 0; i < n; i++) out[i] = Math.abs(x[i]!); },
  square: (x, out, n) => { for (let i = 0; i < n; i++) { const v = x[i]!; out[i] = v * v; } },
};

/** gx[i] = gy[i] · f'(x[i]; p) for i < n, given y = f(x); one loop per function, as above. */
type UnaryGradLoop = (x: FloatArray, y: FloatArray, gy: FloatArray, gx: FloatArray, n: number, p: number) => void;
const unaryGradLoops: Record<UnaryName, UnaryGradLoop> = {
  leakyRelu: (x, _y, gy, gx, n, p) => { for (let i = 0; i < n; i++) gx[i] = x[i]! > 0 ? gy[i]! : gy[i]! * p; },
  relu: (x, _y, gy, gx, n) => { for (let i = 0; i < n; i++) gx[i] = x[i]! > 0 ? gy[i]! : 0; },
  // For x ≤ 0, d/dx α(eˣ − 1) = y + α.
  elu: (x, y, gy, gx, n, p) => { for (let i = 0; i < n; i++) gx[i] = x[i]! > 0 ? gy[i]! : gy[i]! * (y[i]! + p); },
  sigmoid: (_x, y, gy, gx, n) => { for (let i = 0; i < n; i++) { const s = y[i]!; gx[i] = gy[i]! * s * (1 - s); } },
  exp: (_x, y, gy, gx, n) => { for (let i = 0; i < n; i++) gx[i] = gy[i]! * y[i]!; },
  log: (x, _y, gy, gx, n) => { for (let i = 0; i < n; i++) gx[i] = gy[i]! / x[i]!; },
  neg: (_x, _y, gy, gx, n) => { for (let i = 0; i < n; i++) gx[i] = -gy[i]!; },
  sqrt: (_x, y, gy, gx, n) => { for (let i = 0; i < n; i++) gx[i] = gy[i]! / (2 * y[i]!); },
  abs: (x, _y, gy, gx, n) => { for (let i = 0; i < n; i++) gx[i] = gy[i]! * Math.sign(x[i]!); },
  square: (x, _y, gy, gx, n) => { for (let i = 0; i < n; i++) gx[i] = 2 * gy[i]! * x[i]!; },
};

export function unaryTs(name: UnaryName, x: FloatArray, out: FloatArray, p: number): void {
  unaryLoops[name](x, out, x.length, p);
}

export function unaryGradTs(name: UnaryName, x: FloatArray, y: FloatArray, gy: FloatArray, gx: FloatArray, p: number): void {
  unaryGradLoops[name](x, y, gy, gx, x.length, p);
}

/**
 * One inner loop per function, so that the element loop holds no switch:
 * out[o + j] = f(a[ao + j·sa], b[bo + j·sb]) for j < n.
 */
type InnerLoop = (out: FloatArray, o: number, a: FloatArray, ao: number, sa: number, b: FloatArray, bo: number, sb: number, n: number) => void;
const innerLoops: Record<BinaryName, InnerLoop> = {
  add: (out, o, a, ao, sa, b, bo, sb, n) => { for (let j = 0; j < n; j++) out[o + j] = a[ao + j * sa]! + b[bo + j * sb]!; },
  sub: (out, o, a, ao, sa, b, bo, sb, n) => { for (let j = 0; j < n; j++) out[o + j] = a[ao + j * sa]! - b[bo + j * sb]!; },
  mul: (out, o, a, ao, sa, b, bo, sb, n) => { for (let j = 0; j < n; j++) out[o + j] = a[ao + j * sa]! * b[bo + j * sb]!; },
  div: (out, o, a, ao, sa, b, bo, sb, n) => { for (let j = 0; j < n; j++) out[o + j] = a[ao + j * sa]! / b[bo + j * sb]!; },
};

/** Whether `strides` are the dense row-major strides of `shape` (ignoring axes of length 1). */
function isDense(strides: number[], shape: number[]): boolean {
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && strides[d] !== s) return false;
    s *= shape[d]!;
  }
  return true;
}

export function binaryTs(name: BinaryName, a: FloatArray, aStrides: number[], b: FloatArray, bStrides: number[],
                         out: FloatArray, outShape: number[]): void {
  const nd = outShape.length;
  const size = out.length;
  if (size === 0) return;
  const loop = innerLoops[name];
  // Both operands dense in the output's layout (the common same-shape case): one flat loop.
  if (isDense(aStrides, outShape) && isDense(bStrides, outShape)) { loop(out, 0, a, 0, 1, b, 0, 1, size); return; }
  // The innermost axis runs in a tight loop; an odometer walks the outer axes.
  const inner = nd === 0 ? 1 : outShape[nd - 1]!;
  const sa = nd === 0 ? 0 : aStrides[nd - 1]!, sb = nd === 0 ? 0 : bStrides[nd - 1]!;
  const idx = new Array<number>(Math.max(nd - 1, 0)).fill(0);
  let ao = 0, bo = 0;
  for (let o = 0; o < size; o += inner) {
    loop(out, o, a, ao, sa, b, bo, sb, inner);
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]!++;
      ao += aStrides[d]!; bo += bStrides[d]!;
      if (idx[d]! < outShape[d]!) break;
      ao -= aStrides[d]! * outShape[d]!; bo -= bStrides[d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
}

/** Whether a reduction adds (else it keeps the maximum); a switch, so a new ReduceName must be decided here. */
function reducesBySum(name: ReduceName): boolean {
  switch (name) {
    case 'sum': return true;
    case 'max': return false;
    default: return assertNever(name, 'reduction');
  }
}

export function reduceTs(name: ReduceName, x: FloatArray, shape: number[], reduce: boolean[], out: FloatArray): void {
  const bySum = reducesBySum(name);
  const nd = shape.length;
  // Output strides for each input axis: 0 on reduced axes, so every input element maps to its slot.
  const outStrides = new Array<number>(nd).fill(0);
  let s = 1;
  for (let d = nd - 1; d >= 0; d--) { if (!reduce[d]) { outStrides[d] = s; s *= shape[d]!; } }
  // Reducing a suffix of the axes (a sum per row, as a loss over each image does): one tight loop per row.
  const firstReduced = reduce.indexOf(true);
  if (bySum && firstReduced >= 0 && reduce.slice(firstReduced).every(Boolean)) {
    const rowLen = shape.slice(firstReduced).reduce((p, q) => p * q, 1), rows = out.length;
    for (let r = 0, o = 0; r < rows; r++) {
      let acc = 0;
      for (let j = 0; j < rowLen; j++) acc += x[o++]!;
      out[r] = acc;
    }
    return;
  }
  out.fill(bySum ? 0 : -Infinity);
  const idx = new Array<number>(nd).fill(0);
  let oo = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (bySum) out[oo] += v; else if (v > out[oo]! || Number.isNaN(v)) out[oo] = v;
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]!++; oo += outStrides[d]!;
      if (idx[d]! < shape[d]!) break;
      oo -= outStrides[d]! * shape[d]!; idx[d] = 0;
    }
  }
}
