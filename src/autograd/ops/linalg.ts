/** Matrix products: matmul and the Linear layer's y = x·Wᵀ + b, both on the gemm kernel. */
import { record } from '../tape.ts';
import { kernels } from '../../tensor/kernels/registry.ts';
import { shapeStr } from '../../tensor/layout.ts';
import { Tensor, outputArray, tensorFromArray } from '../../tensor/tensor.ts';
import { add, sameDtype } from './elementwise.ts';

/** [m,k] · [k,n] → [m,n]. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  sameDtype('matmul', a, b);
  if (a.rank !== 2 || b.rank !== 2 || a.shape[1] !== b.shape[0]) {
    throw new Error(`matmul: shapes ${shapeStr(a.shape)} and ${shapeStr(b.shape)} are not [m,k]·[k,n]`);
  }
  const [m, k] = a.shape as [number, number];
  const n = b.shape[1]!;
  const av = a.values(), bv = b.values();
  const out = outputArray(a.dtype, m * n);
  kernels(a.dtype).gemm(av, bv, out, m, n, k, false, false, false);
  return record(tensorFromArray(out, [m, n]), 'matmul', [a, b], (gy, needs) => {
    const ks = kernels(a.dtype);
    const g = gy.values();
    let ga: Tensor | null = null, gb: Tensor | null = null;
    if (needs[0]) { const o = outputArray(a.dtype, m * k); ks.gemm(g, bv, o, m, k, n, false, true, false); ga = tensorFromArray(o, [m, k]); }
    if (needs[1]) { const o = outputArray(a.dtype, k * n); ks.gemm(av, g, o, k, n, m, true, false, false); gb = tensorFromArray(o, [k, n]); }
    return [ga, gb];
  });
}

/** x [batch, in] · W[out, in]ᵀ (+ b[out]), PyTorch's weight layout. */
export function linear(x: Tensor, w: Tensor, b?: Tensor | null): Tensor {
  sameDtype('linear', x, w);
  if (x.rank !== 2 || w.rank !== 2 || x.shape[1] !== w.shape[1]) {
    throw new Error(`linear: input ${shapeStr(x.shape)} does not match weight ${shapeStr(w.shape)} ([out, in])`);
  }
  const [batch, inF] = x.shape as [number, number];
  const outF = w.shape[0]!;
  const xv = x.values(), wv = w.values();
  const out = outputArray(x.dtype, batch * outF);
  kernels(x.dtype).gemm(xv, wv, out, batch, outF, inF, false, true, false);
  const y = record(tensorFromArray(out, [batch, outF]), 'linear', [x, w], (gy, needs) => {
    const ks = kernels(x.dtype);
    const g = gy.values();
    let gx: Tensor | null = null, gw: Tensor | null = null;
    if (needs[0]) { const o = outputArray(x.dtype, batch * inF); ks.gemm(g, wv, o, batch, inF, outF, false, false, false); gx = tensorFromArray(o, [batch, inF]); }
    if (needs[1]) { const o = outputArray(x.dtype, outF * inF); ks.gemm(g, xv, o, outF, inF, batch, true, false, false); gw = tensorFromArray(o, [outF, inF]); }
    return [gx, gw];
  });
  if (!b) return y;
  if (b.rank !== 1 || b.shape[0] !== outF) throw new Error(`linear: bias ${shapeStr(b.shape)} does not match ${outF} outputs`);
  return add(y, b);
}
