/**
 * Two-dimensional PCA of latent codes for the report's scatter plot.
 *
 * The covariance is small (rep_dim × rep_dim: 32 for the MNIST LeNet, 128 for CIFAR-10), so the
 * cyclic Jacobi method diagonalises it completely. Power iteration would be shorter, but it
 * converges at the rate λ2/λ1 and Deep SVDD codes often have close leading eigenvalues, where
 * it would need a data-dependent iteration count to be right.
 */
import { meanAndCovariance } from '../gaussian.ts';

export interface SymmetricEigen {
  /** Eigenvalues, descending. */
  values: Float64Array;
  /** Row-major d × d; column k is the unit eigenvector of values[k]. */
  vectors: Float64Array;
}

/** Eigen-decomposition of a symmetric d × d row-major matrix by cyclic Jacobi rotations. */
export function symmetricEigen(matrix: ArrayLike<number>, d: number, maxSweeps = 100): SymmetricEigen {
  if (matrix.length !== d * d) throw new Error(`symmetricEigen: expected ${d}×${d} = ${d * d} values, got ${matrix.length}`);
  const a = Float64Array.from(matrix);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  let scale = 0;
  for (let i = 0; i < d * d; i++) scale += a[i]! * a[i]!;
  const tol = 1e-30 * Math.max(scale, 1e-300);
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += a[p * d + q]! * a[p * d + q]!;
    if (off <= tol) break;
    for (let p = 0; p < d - 1; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q]!;
        if (apq === 0) continue;
        const app = a[p * d + p]!, aqq = a[q * d + q]!;
        // The rotation angle that zeroes a[p][q], in the numerically stable form (Numerical Recipes §11.1).
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < d; k++) {
          const akp = a[k * d + p]!, akq = a[k * d + q]!;
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          const apk = a[p * d + k]!, aqk = a[q * d + k]!;
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p]!, vkq = v[k * d + q]!;
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: d }, (_, i) => i).sort((i, j) => a[j * d + j]! - a[i * d + i]!);
  const values = Float64Array.from(order, (i) => a[i * d + i]!);
  const vectors = new Float64Array(d * d);
  order.forEach((src, k) => { for (let r = 0; r < d; r++) vectors[r * d + k] = v[r * d + src]!; });
  return { values, vectors };
}

export interface Pca2 {
  dim: number;
  mean: Float64Array;
  /** The first two principal axes (unit vectors), largest variance first. */
  components: [Float64Array, Float64Array];
  /** Variance along each component (covariance eigenvalues, divisor n − 1). */
  variances: [number, number];
  /** Trace of the covariance: the denominator of "explained variance". */
  totalVariance: number;
  /** Coordinates of one d-vector (e.g. the center c) in the component basis, after centring. */
  project(v: ArrayLike<number>): [number, number];
  /** Coordinates of `count` row-major d-vectors, interleaved [x0, y0, x1, y1, …]. */
  projectAll(data: ArrayLike<number>, count: number): Float64Array;
}

/**
 * PCA to two dimensions of `count` row-major `dim`-vectors. Component signs are fixed so that
 * each component's largest-magnitude entry is positive, so reruns draw the same picture.
 */
export function pca2(data: ArrayLike<number>, count: number, dim: number): Pca2 {
  if (data.length !== count * dim) throw new Error(`pca2: expected ${count}×${dim} values, got ${data.length}`);
  if (count < 2 || dim < 1) throw new Error(`pca2: need at least two ${dim}-vectors, got ${count}`);
  // The same unbiased covariance the Mahalanobis score uses (gaussian.ts).
  const { mean, cov } = meanAndCovariance(data, count, dim);
  let total = 0;
  for (let p = 0; p < dim; p++) total += cov[p * dim + p]!;
  const { values, vectors } = symmetricEigen(cov, dim);
  const component = (k: number): Float64Array => {
    if (k >= dim) return new Float64Array(dim);
    const c = Float64Array.from({ length: dim }, (_, r) => vectors[r * dim + k]!);
    let big = 0;
    for (let r = 0; r < dim; r++) if (Math.abs(c[r]!) > Math.abs(c[big]!)) big = r;
    if (c[big]! < 0) for (let r = 0; r < dim; r++) c[r] = -c[r]!;
    return c;
  };
  const c1 = component(0), c2 = component(1);
  const project = (v: ArrayLike<number>, off = 0): [number, number] => {
    let x = 0, y = 0;
    for (let j = 0; j < dim; j++) { const u = v[off + j]! - mean[j]!; x += u * c1[j]!; y += u * c2[j]!; }
    return [x, y];
  };
  return {
    dim, mean, components: [c1, c2],
    // Rounding can leave a tiny negative eigenvalue for rank-deficient data; a variance is never negative.
    variances: [Math.max(0, values[0] ?? 0), Math.max(0, values[1] ?? 0)],
    totalVariance: total,
    project: (v) => {
      if (v.length !== dim) throw new Error(`pca2.project: expected a ${dim}-vector, got ${v.length}`);
      return project(v);
    },
    projectAll: (d, n) => {
      if (d.length !== n * dim) throw new Error(`pca2.projectAll: expected ${n}×${dim} values, got ${d.length}`);
      const out = new Float64Array(2 * n);
      for (let i = 0; i < n; i++) { const [x, y] = project(d, i * dim); out[2 * i] = x; out[2 * i + 1] = y; }
      return out;
    },
  };
}
