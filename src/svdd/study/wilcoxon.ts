/**
 * The Wilcoxon signed-rank test of paired differences (two-sided; zero differences dropped, as
 * scipy.stats.wilcoxon's zero_method='wilcox'): the exact permutation distribution of W+ when
 * there are at most 50 non-zero differences, computed by dynamic programming over doubled ranks,
 * so tied differences (averaged ranks) stay exact where scipy switches to the normal
 * approximation; the normal approximation with tie correction above 50.
 */

export interface WilcoxonResult {
  /** Non-zero differences used. */
  n: number;
  /** Sum of the ranks of the positive differences. */
  wPlus: number;
  /** min(W+, W−), scipy's statistic. */
  statistic: number;
  pValue: number;
  method: 'exact' | 'normal';
}

const EXACT_MAX = 50;

/** Ranks of |d| (1-based, ties get their average rank). */
function absRanks(d: number[]): number[] {
  const idx = d.map((_, i) => i).sort((a, b) => Math.abs(d[a]!) - Math.abs(d[b]!));
  const r = new Array<number>(d.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && Math.abs(d[idx[j + 1]!]!) === Math.abs(d[idx[i]!]!)) j++;
    for (let k = i; k <= j; k++) r[idx[k]!] = (i + j + 2) / 2;
    i = j + 1;
  }
  return r;
}

/** Standard normal upper tail Q(z) (erfc, Numerical Recipes' Chebyshev fit, |error| < 1.2e-7). */
function normalSf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const erfc = t * Math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return z >= 0 ? erfc / 2 : 1 - erfc / 2;
}

export function wilcoxonSignedRank(differences: readonly number[]): WilcoxonResult {
  for (const x of differences) if (!Number.isFinite(x)) throw new Error(`wilcoxon: non-finite difference ${x}`);
  const d = differences.filter((x) => x !== 0);
  const n = d.length;
  if (n === 0) return { n: 0, wPlus: 0, statistic: 0, pValue: 1, method: 'exact' };
  const r = absRanks(d);
  const wPlus = d.reduce((s, x, i) => s + (x > 0 ? r[i]! : 0), 0);
  const total = (n * (n + 1)) / 2;
  const statistic = Math.min(wPlus, total - wPlus);
  if (n <= EXACT_MAX) {
    // Doubled ranks are integers even with averaged ties; count sign assignments by their doubled W+.
    const r2 = r.map((x) => Math.round(2 * x));
    const max = r2.reduce((a, b) => a + b, 0);
    let counts = new Float64Array(max + 1);
    counts[0] = 1;
    for (const v of r2) {
      const next = counts.slice();
      for (let s = max - v; s >= 0; s--) if (counts[s]) next[s + v]! += counts[s]!;
      counts = next;
    }
    const all = 2 ** n, w2 = Math.round(2 * statistic);
    let tail = 0;
    for (let s = 0; s <= w2; s++) tail += counts[s]!;
    return { n, wPlus, statistic, pValue: Math.min(1, (2 * tail) / all), method: 'exact' };
  }
  const mean = total / 2;
  const ties = new Map<number, number>();
  for (const x of r) ties.set(x, (ties.get(x) ?? 0) + 1);
  let tieTerm = 0;
  for (const t of ties.values()) tieTerm += t * t * t - t;
  const sd = Math.sqrt((n * (n + 1) * (2 * n + 1)) / 24 - tieTerm / 48);
  const z = (statistic - mean) / sd;
  return { n, wPlus, statistic, pValue: Math.min(1, 2 * normalSf(Math.abs(z))), method: 'normal' };
}
