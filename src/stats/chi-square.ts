/** The χ² distribution: the squared Mahalanobis distance of a d-dimensional Gaussian is χ²(d). */

/** log Γ(x) for x > 0, Lanczos (g = 7, 9 terms): relative error around 1e-15. */
export function logGamma(x: number): number {
  if (!(x > 0)) throw new Error(`logGamma: argument must be > 0, got ${x}`);
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  const z = x - 1;
  let a = c[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Series for P(a, x) (converges fast when x < a + 1). */
function gammaPSeries(a: number, x: number): number {
  let term = 1 / a;
  let sum = term;
  for (let n = 1; n < 10000; n++) {
    term *= x / (a + n);
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * 1e-17) break;
  }
  return sum * Math.exp(-x + a * Math.log(x) - logGamma(a));
}

/** Continued fraction (modified Lentz) for Q(a, x) (converges fast when x >= a + 1). */
function gammaQContinuedFraction(a: number, x: number): number {
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x + a * Math.log(x) - logGamma(a)) * h;
}

/** Regularised lower incomplete gamma P(a, x) = γ(a, x) / Γ(a). */
export function regularizedGammaP(a: number, x: number): number {
  if (!(a > 0)) throw new Error(`regularizedGammaP: a must be > 0, got ${a}`);
  if (x <= 0) return 0;
  if (x === Infinity) return 1;
  return x < a + 1 ? gammaPSeries(a, x) : 1 - gammaQContinuedFraction(a, x);
}

/** Regularised upper incomplete gamma Q(a, x) = 1 - P(a, x), computed directly in the upper tail to avoid cancellation. */
export function regularizedGammaQ(a: number, x: number): number {
  if (!(a > 0)) throw new Error(`regularizedGammaQ: a must be > 0, got ${a}`);
  if (x <= 0) return 1;
  if (x === Infinity) return 0;
  return x < a + 1 ? 1 - gammaPSeries(a, x) : gammaQContinuedFraction(a, x);
}

export function chiSquareCdf(x: number, dof: number): number {
  return regularizedGammaP(dof / 2, x / 2);
}

/** Abramowitz & Stegun 26.2.23 (|error| < 4.5e-4): only a starting point for Newton's method. */
function roughNormalQuantile(p: number): number {
  const q = p < 0.5 ? p : 1 - p;
  const t = Math.sqrt(-2 * Math.log(q));
  const z = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
  return p < 0.5 ? -z : z;
}

/**
 * Quantile x with P(χ²(dof) <= x) = p, by inverting the regularised incomplete gamma function:
 * Wilson–Hilferty start, then safeguarded Newton (bisection whenever a step leaves the bracket)
 * to about 1e-14 relative. The residual is taken in whichever tail is smaller, so upper
 * quantiles such as p = 0.999999 keep their precision.
 */
export function chiSquareQuantile(p: number, dof: number): number {
  if (!(dof > 0) || !Number.isFinite(dof)) throw new Error(`chiSquareQuantile: dof must be a positive finite number, got ${dof}`);
  if (!(p >= 0 && p <= 1)) throw new Error(`chiSquareQuantile: p must be in [0, 1], got ${p}`);
  if (p === 0) return 0;
  if (p === 1) return Infinity;
  const a = dof / 2;
  const upper = p > 0.5;
  // Residual of the equation, signed so that it increases with x.
  const f = (x: number): number => (upper ? (1 - p) - regularizedGammaQ(a, x / 2) : regularizedGammaP(a, x / 2) - p);
  const logNorm = a * Math.log(2) + logGamma(a);
  const pdf = (x: number): number => Math.exp((a - 1) * Math.log(x) - x / 2 - logNorm);

  const z = roughNormalQuantile(p);
  const h = 2 / (9 * dof);
  let x = dof * Math.pow(Math.max(1 - h + z * Math.sqrt(h), 1e-3), 3);
  let lo = 0;
  let hi = Infinity;
  for (let iter = 0; iter < 200; iter++) {
    const fx = f(x);
    if (fx === 0) return x;
    if (fx < 0) lo = x; else hi = x;
    let next = x - fx / pdf(x);
    if (!(next > lo && next < hi) || !Number.isFinite(next)) next = hi === Infinity ? Math.max(2 * x, 1) : (lo + hi) / 2;
    if (Math.abs(next - x) <= 1e-15 * Math.max(x, 1e-300)) return next;
    x = next;
  }
  return x;
}
