/**
 * A Gaussian model of latent codes: score = squared Mahalanobis distance to the mean.
 *
 * Deep SVDD latents are low-rank by construction (the objective pulls them onto a point and
 * bias-free networks often leave units dead), so the sample covariance is frequently singular.
 * Two regularisers handle that:
 *  - shrinkage toward (trace/d)·I: Σ = (1-s)·S + s·(tr S / d)·I with S the unbiased sample
 *    covariance; 'ledoit-wolf' (the default) picks s with scikit-learn's `ledoit_wolf_shrinkage`
 *    formula (data centred by its own mean), s = 0 reproduces S exactly;
 *  - a tiny ridge r·I added afterwards, starting at `ridge` × (largest diagonal entry) and
 *    multiplied by 10 until the Cholesky factorisation succeeds, so zero-variance or duplicated
 *    dimensions cannot make the factorisation fail. The ridge actually used is recorded.
 * Distances use the Cholesky factor and forward substitution, never an explicit inverse,
 * because inverting an ill-conditioned covariance loses far more precision than solving with it.
 */

export type Shrinkage = number | 'ledoit-wolf';

export interface GaussianFitOptions {
  /** Coefficient in [0, 1] or 'ledoit-wolf' (default). */
  shrinkage?: Shrinkage;
  /** Initial ridge relative to the largest diagonal entry; 0 disables it. Default 1e-13. */
  ridge?: number;
}

export interface GaussianJSON {
  format: 'svdd-gaussian';
  version: 1;
  d: number;
  /** Number of samples the model was fitted on. */
  n: number;
  mean: number[];
  /** Row-major d×d covariance actually used for scoring (after shrinkage and ridge). */
  covariance: number[];
  /** Shrinkage coefficient that was applied (resolved when fitted with 'ledoit-wolf'). */
  shrinkage: number;
  shrinkageMethod: 'fixed' | 'ledoit-wolf';
  /** Absolute ridge added to the diagonal. */
  ridge: number;
}

// Relative to the largest variance: above the Cholesky rounding error (about d·2^-53 of it) for
// any realistic d, yet small enough that distances move by at most ~1e-13·cond(Σ) relatively.
const DEFAULT_RIDGE = 1e-13;
/** Beyond this relative ridge the data is not "slightly singular" any more; something is broken. */
const MAX_RIDGE = 1e-3;

function checkMatrix(data: ArrayLike<number>, n: number, d: number, what: string): void {
  if (!Number.isInteger(n) || !Number.isInteger(d) || n < 0 || d < 1) throw new Error(`${what}: bad shape [${n}, ${d}]`);
  if (data.length !== n * d) throw new Error(`${what}: expected ${n}×${d} = ${n * d} values, got ${data.length}`);
}

/** Mean and unbiased (n-1) covariance of row-major [n, d] data, two-pass for accuracy. */
export function meanAndCovariance(latents: ArrayLike<number>, n: number, d: number): { mean: Float64Array; cov: Float64Array } {
  checkMatrix(latents, n, d, 'meanAndCovariance');
  if (n < 2) throw new Error(`meanAndCovariance: need at least 2 samples for an unbiased covariance, got ${n}`);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const v = latents[i * d + j]!;
      if (!Number.isFinite(v)) throw new Error(`meanAndCovariance: non-finite value ${v} at sample ${i}, dimension ${j}`);
      mean[j]! += v;
    }
  }
  for (let j = 0; j < d; j++) mean[j]! /= n;
  const cov = new Float64Array(d * d);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) row[j] = latents[i * d + j]! - mean[j]!;
    for (let a = 0; a < d; a++) {
      const ra = row[a]!;
      for (let b = a; b < d; b++) cov[a * d + b]! += ra * row[b]!;
    }
  }
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      const v = cov[a * d + b]! / (n - 1);
      cov[a * d + b] = v;
      cov[b * d + a] = v;
    }
  }
  return { mean, cov };
}

/**
 * scikit-learn's `ledoit_wolf_shrinkage(X)` (assume_centered=False): the optimal coefficient,
 * under the Ledoit–Wolf (2004) asymptotics, for shrinking the biased covariance toward
 * (trace/d)·I. Returns a value in [0, 1]; 0 when the covariance is already a multiple of I.
 */
export function ledoitWolfShrinkage(latents: ArrayLike<number>, n: number, d: number, mean?: ArrayLike<number>): number {
  checkMatrix(latents, n, d, 'ledoitWolfShrinkage');
  const mu0 = mean ?? meanAndCovariance(latents, n, d).mean;
  // Biased scatter S = XᵀX/n of the centred data, plus Σᵢ‖xᵢ‖⁴ for the variance term.
  const s = new Float64Array(d * d);
  const row = new Float64Array(d);
  let sumNorm4 = 0;
  for (let i = 0; i < n; i++) {
    let norm2 = 0;
    for (let j = 0; j < d; j++) {
      const v = latents[i * d + j]! - mu0[j]!;
      row[j] = v;
      norm2 += v * v;
    }
    sumNorm4 += norm2 * norm2;
    for (let a = 0; a < d; a++) {
      const ra = row[a]!;
      for (let b = a; b < d; b++) s[a * d + b]! += ra * row[b]!;
    }
  }
  let trace = 0;
  let frob2 = 0;
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      const v = s[a * d + b]! / n;
      frob2 += a === b ? v * v : 2 * v * v;
      if (a === b) trace += v;
    }
  }
  const mu = trace / d;
  // delta = ‖S - mu·I‖²_F / d, beta = (Σ‖xᵢ‖⁴/n - ‖S‖²_F) / (d·n), as in sklearn.
  const delta = (frob2 - 2 * mu * trace + d * mu * mu) / d;
  const beta = Math.min((sumNorm4 / n - frob2) / (d * n), delta);
  if (beta <= 0 || delta <= 0) return 0;
  return Math.min(1, beta / delta);
}

/** Thrown when a matrix is not (numerically) symmetric positive definite. */
export class NotPositiveDefiniteError extends Error {}

/**
 * Lower-triangular L with A = L·Lᵀ for a symmetric row-major d×d matrix (only the lower
 * triangle is read). Throws NotPositiveDefiniteError naming the failing pivot.
 */
export function choleskyLower(a: ArrayLike<number>, d: number): Float64Array {
  if (a.length !== d * d) throw new Error(`choleskyLower: expected ${d}×${d} values, got ${a.length}`);
  const l = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    let diag = a[j * d + j]!;
    for (let k = 0; k < j; k++) diag -= l[j * d + k]! * l[j * d + k]!;
    if (!(diag > 0) || !Number.isFinite(diag)) {
      throw new NotPositiveDefiniteError(`matrix is not positive definite: pivot ${j} of ${d} is ${diag}`);
    }
    const ljj = Math.sqrt(diag);
    l[j * d + j] = ljj;
    for (let i = j + 1; i < d; i++) {
      let v = a[i * d + j]!;
      for (let k = 0; k < j; k++) v -= l[i * d + k]! * l[j * d + k]!;
      l[i * d + j] = v / ljj;
    }
  }
  return l;
}

export class Gaussian {
  private constructor(
    readonly d: number,
    readonly n: number,
    readonly mean: Float64Array,
    /** Covariance used for scoring (after shrinkage and ridge), row-major d×d. */
    readonly covariance: Float64Array,
    readonly shrinkage: number,
    readonly shrinkageMethod: 'fixed' | 'ledoit-wolf',
    readonly ridge: number,
    private readonly chol: Float64Array,
  ) {}

  /** Fits to row-major latents [n, d]. */
  static fit(latents: ArrayLike<number>, n: number, d: number, options: GaussianFitOptions = {}): Gaussian {
    const { mean, cov } = meanAndCovariance(latents, n, d);
    const spec = options.shrinkage ?? 'ledoit-wolf';
    let s: number;
    if (spec === 'ledoit-wolf') s = ledoitWolfShrinkage(latents, n, d, mean);
    else if (typeof spec === 'number' && spec >= 0 && spec <= 1) s = spec;
    else throw new Error(`shrinkage must be a number in [0, 1] or 'ledoit-wolf', got ${String(spec)}`);
    const ridgeRel = options.ridge ?? DEFAULT_RIDGE;
    if (!(ridgeRel >= 0) || !(ridgeRel <= MAX_RIDGE)) throw new Error(`ridge must be in [0, ${MAX_RIDGE}], got ${ridgeRel}`);

    let trace = 0;
    for (let j = 0; j < d; j++) trace += cov[j * d + j]!;
    const target = trace / d;
    const shrunk = new Float64Array(d * d);
    let maxDiag = 0;
    for (let i = 0; i < d * d; i++) shrunk[i] = (1 - s) * cov[i]!;
    for (let j = 0; j < d; j++) {
      shrunk[j * d + j]! += s * target;
      maxDiag = Math.max(maxDiag, shrunk[j * d + j]!);
    }
    // All-dead latents have no scale of their own; an absolute ridge keeps distances finite.
    const scale = maxDiag > 0 ? maxDiag : 1;

    let rel = ridgeRel;
    for (;;) {
      const ridge = rel * scale;
      const c = Float64Array.from(shrunk);
      for (let j = 0; j < d; j++) c[j * d + j]! += ridge;
      try {
        const chol = choleskyLower(c, d);
        return new Gaussian(d, n, mean, c, s, spec === 'ledoit-wolf' ? 'ledoit-wolf' : 'fixed', ridge, chol);
      } catch (e) {
        if (!(e instanceof NotPositiveDefiniteError) || rel === 0 || rel * 10 > MAX_RIDGE) {
          throw new Error(
            `Gaussian fit: covariance of ${n} samples in ${d} dimensions is not positive definite even with ridge ${ridge} ` +
              `(shrinkage ${s}): ${(e as Error).message}`,
          );
        }
        rel *= 10;
      }
    }
  }

  /** Squared Mahalanobis distance (x-μ)ᵀΣ⁻¹(x-μ) of the d values starting at `offset`. */
  mahalanobisSq(x: ArrayLike<number>, offset = 0): number {
    if (x.length < offset + this.d) throw new Error(`mahalanobisSq: need ${this.d} values from offset ${offset}, have ${x.length - offset}`);
    const { d, chol, mean } = this;
    // Solve L z = x - μ; then the distance is ‖z‖².
    const z = new Float64Array(d);
    let sum = 0;
    for (let i = 0; i < d; i++) {
      let v = x[offset + i]! - mean[i]!;
      for (let k = 0; k < i; k++) v -= chol[i * d + k]! * z[k]!;
      v /= chol[i * d + i]!;
      z[i] = v;
      sum += v * v;
    }
    return sum;
  }

  /** Squared Mahalanobis distances of row-major rows [m, d]. */
  mahalanobisSqBatch(xs: ArrayLike<number>): Float64Array {
    if (xs.length % this.d !== 0) throw new Error(`mahalanobisSqBatch: ${xs.length} values is not a multiple of d = ${this.d}`);
    const m = xs.length / this.d;
    const out = new Float64Array(m);
    for (let i = 0; i < m; i++) out[i] = this.mahalanobisSq(xs, i * this.d);
    return out;
  }

  toJSON(): GaussianJSON {
    return {
      format: 'svdd-gaussian',
      version: 1,
      d: this.d,
      n: this.n,
      mean: Array.from(this.mean),
      covariance: Array.from(this.covariance),
      shrinkage: this.shrinkage,
      shrinkageMethod: this.shrinkageMethod,
      ridge: this.ridge,
    };
  }

  /** Rebuilds from toJSON() output (or its JSON.parse), validating it and refactorising. */
  static fromJSON(json: unknown): Gaussian {
    const fail = (why: string): never => { throw new Error(`invalid Gaussian JSON: ${why}`); };
    if (typeof json !== 'object' || json === null) return fail('not an object');
    const j = json as Partial<Record<keyof GaussianJSON, unknown>>;
    if (j.format !== 'svdd-gaussian') fail(`format is ${String(j.format)}, expected 'svdd-gaussian'`);
    if (j.version !== 1) fail(`unsupported version ${String(j.version)}`);
    const d = j.d;
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 1) return fail(`bad d ${String(d)}`);
    const nums = (v: unknown, len: number, name: string): Float64Array => {
      if (!Array.isArray(v) || v.length !== len || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
        return fail(`${name} must be ${len} finite numbers`);
      }
      return Float64Array.from(v as number[]);
    };
    const mean = nums(j.mean, d, 'mean');
    const cov = nums(j.covariance, d * d, 'covariance');
    const num = (v: unknown, name: string): number => (typeof v === 'number' && Number.isFinite(v) ? v : fail(`${name} must be a finite number`));
    const n = num(j.n, 'n');
    const shrinkage = num(j.shrinkage, 'shrinkage');
    const ridge = num(j.ridge, 'ridge');
    const method = j.shrinkageMethod === 'ledoit-wolf' ? 'ledoit-wolf' : j.shrinkageMethod === 'fixed' ? 'fixed' : fail('bad shrinkageMethod');
    let chol: Float64Array;
    try { chol = choleskyLower(cov, d); } catch (e) { return fail((e as Error).message); }
    return new Gaussian(d, n, mean, cov, shrinkage, method, ridge, chol);
  }
}

/** Convenience alias for Gaussian.fit. */
export function fitGaussian(latents: ArrayLike<number>, n: number, d: number, options: GaussianFitOptions = {}): Gaussian {
  return Gaussian.fit(latents, n, d, options);
}
