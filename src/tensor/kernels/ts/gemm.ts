import type { FloatArray } from '../types.ts';

/**
 * Reference GEMM in plain TypeScript: C[m,n] (+)= op(A)·op(B), row-major.
 * Loop orders are chosen so the innermost loop walks memory contiguously
 * (i-p-j for NN/TN, an i-j dot product for NT); blocked over p so the rows of B
 * that one block touches stay in cache.
 */
export function gemmTs(a: FloatArray, b: FloatArray, c: FloatArray, m: number, n: number, k: number,
                       transA: boolean, transB: boolean, accumulate: boolean): void {
  if (!accumulate) c.fill(0, 0, m * n);
  if (transB) {
    // B is [n,k]: each C entry is a dot product of two contiguous rows (when A is not transposed).
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        const bRow = j * k;
        if (!transA) {
          const aRow = i * k;
          for (let p = 0; p < k; p++) s += a[aRow + p]! * b[bRow + p]!;
        } else {
          for (let p = 0; p < k; p++) s += a[p * m + i]! * b[bRow + p]!;
        }
        c[i * n + j] += s;
      }
    }
    return;
  }
  const KB = 128;
  for (let p0 = 0; p0 < k; p0 += KB) {
    const p1 = Math.min(k, p0 + KB);
    for (let i = 0; i < m; i++) {
      const cRow = i * n;
      for (let p = p0; p < p1; p++) {
        const aip = transA ? a[p * m + i]! : a[i * k + p]!;
        if (aip === 0) continue;
        const bRow = p * n;
        for (let j = 0; j < n; j++) c[cRow + j] += aip * b[bRow + j]!;
      }
    }
  }
}
