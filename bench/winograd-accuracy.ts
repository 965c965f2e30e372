/**
 * Float32 accuracy of Winograd F(m×m, 5×5) for larger tiles than the backend's F(2×2, 5×5), by
 * simulation: which interpolation points are best for each m, and how much error each tile size
 * adds over a direct float32 convolution. Larger tiles need fewer multiplications per output
 * (α²/m²: 9 for m = 2, 5.4 for m = 3, 4 for m = 4), which is the only way left to make the CIFAR-10
 * convolutions much faster (bench/roofline.ts); their rounding error grows with m.
 *
 * Each trial draws one tile's input windows d_c (α×α, uniform in [−1, 1)) and 5×5 filters g_c
 * (Kaiming-like scale) for `cin` channels and computes the m×m outputs three ways: float64 direct
 * correlation (the truth), float32 direct correlation (summation in the order of a 25·cin dot
 * product), and float32 Winograd Aᵀ[Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B)]A with every product and sum rounded
 * to float32 (Math.fround) in the order the transform kernels evaluate them. Reported: relative RMS
 * error (RMS of the error over RMS of the true outputs), over `trials` tiles.
 *
 * Point sets searched: 0 and ∞ always, plus ± pairs (and for odd counts one extra point) drawn from
 * {1, 2, 1/2, 3, 1/3, 3/2, 2/3, 3/4, 4/3, 4, 1/4}.
 *
 * Run: `npx tsx bench/winograd-accuracy.ts [--cin 32] [--trials 200]`. Writes
 * bench/results/winograd-accuracy.json.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/tensor/io/atomic.ts';
import { Rng } from '../src/tensor/creation.ts';
import { F2X5, cookToom, type WinogradTransforms } from '../src/tensor/kernels/wasm/winograd.ts';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { cin: { type: 'string', default: '32' }, trials: { type: 'string', default: '200' } } });
const cin = Number(values.cin), trials = Number(values.trials);
if (!Number.isInteger(cin) || cin < 1 || cin > 512) throw new Error(`--cin: expected an integer in [1, 512], got '${values.cin}'`);
if (!Number.isInteger(trials) || trials < 10 || trials > 100000) throw new Error(`--trials: expected an integer in [10, 100000], got '${values.trials}'`);

const R = 5;
const f = Math.fround;

/** Σ coeffs[k]·terms[k] in float32, in linComb's order (winograd.ts): +1 terms, other coefficients, then −1 terms. */
function comb32(coeffs: readonly number[], terms: readonly number[]): number {
  const nz = coeffs.map((c, i) => [c, i] as const).filter(([c]) => c !== 0);
  if (nz.length === 0) return 0;
  const rank = (c: number): number => (c === 1 ? 0 : c === -1 ? 2 : 1);
  nz.sort((a, b) => rank(a[0]) - rank(b[0]));
  let acc = 0, first = true;
  for (const [c, i] of nz) {
    const t = terms[i]!;
    if (first) { acc = c === 1 ? t : c === -1 ? -t : f(f(c) * t); first = false; continue; }
    acc = c === 1 ? f(acc + t) : c === -1 ? f(acc - t) : f(f(c) * t + acc); // relaxed madd: one rounding (fused)
  }
  return acc;
}

/** M · X · Nᵀ in float32 (M: p×q, X: q×s, N: t×s), rows first as the kernels do. */
function sandwich32(M: number[][], X: number[][], N: number[][]): number[][] {
  const q = X.length;
  const left = M.map((row) => X[0]!.map((_, j) => comb32(row, Array.from({ length: q }, (_, k) => X[k]![j]!))));
  return left.map((row) => N.map((nrow) => comb32(nrow, row)));
}

interface Trial { winograd: number[][]; direct32: number[][]; truth: number[][] }
function trial(t: WinogradTransforms, rng: Rng): Trial {
  const { m, alpha, AT, G, BT } = t;
  const scale = Math.sqrt(2 / (cin * R * R));
  const d = Array.from({ length: cin }, () => Array.from({ length: alpha }, () => Array.from({ length: alpha }, () => f(rng.uniform() * 2 - 1))));
  const g = Array.from({ length: cin }, () => Array.from({ length: R }, () => Array.from({ length: R }, () => f((rng.uniform() * 2 - 1) * scale * Math.sqrt(3)))));
  const truth = Array.from({ length: m }, (_, y) => Array.from({ length: m }, (_, x) => {
    let s = 0;
    for (let c = 0; c < cin; c++) for (let i = 0; i < R; i++) for (let j = 0; j < R; j++) s += d[c]![y + i]![x + j]! * g[c]![i]![j]!;
    return s;
  }));
  const direct32 = Array.from({ length: m }, (_, y) => Array.from({ length: m }, (_, x) => {
    let s = 0;
    for (let c = 0; c < cin; c++) for (let i = 0; i < R; i++) for (let j = 0; j < R; j++) s = f(d[c]![y + i]![x + j]! * g[c]![i]![j]! + s);
    return s;
  }));
  // Σ_c U_c ⊙ V_c accumulated in channel order (the GEMMs' inner dimension), fused multiply-add.
  const M = Array.from({ length: alpha }, () => new Array<number>(alpha).fill(0));
  for (let c = 0; c < cin; c++) {
    const U = sandwich32(G, g[c]!, G);
    const V = sandwich32(BT, d[c]!, BT);
    for (let i = 0; i < alpha; i++) for (let j = 0; j < alpha; j++) M[i]![j] = f(U[i]![j]! * V[i]![j]! + M[i]![j]!);
  }
  return { winograd: sandwich32(AT, M, AT), direct32, truth };
}

/** Relative RMS errors (Winograd, direct float32) over `trials` tiles from one seed. */
function errors(t: WinogradTransforms, seed: number): { winograd: number; direct: number } {
  const rng = new Rng(seed);
  let ew = 0, ed = 0, s = 0;
  for (let k = 0; k < trials; k++) {
    const r = trial(t, rng);
    r.truth.forEach((row, y) => row.forEach((v, x) => {
      ew += (r.winograd[y]![x]! - v) ** 2; ed += (r.direct32[y]![x]! - v) ** 2; s += v * v;
    }));
  }
  return { winograd: Math.sqrt(ew / s), direct: Math.sqrt(ed / s) };
}

const MAGNITUDES = [1, 2, 1 / 2, 3, 1 / 3, 3 / 2, 2 / 3, 3 / 4, 4 / 3, 4, 1 / 4];
/** Every point set of `finite` finite points: 0, ± pairs, and one extra positive point when needed. */
function pointSets(finite: number): number[][] {
  const pairs = Math.floor((finite - 1) / 2), extra = (finite - 1) % 2;
  const out: number[][] = [];
  const choose = (start: number, picked: number[]): void => {
    if (picked.length === pairs) {
      const base = [0, ...picked.flatMap((a) => [a, -a])];
      if (extra === 0) out.push(base);
      else for (const e of MAGNITUDES) if (!picked.includes(e)) { out.push([...base, e]); out.push([...base, -e]); }
      return;
    }
    for (let i = start; i < MAGNITUDES.length; i++) choose(i + 1, [...picked, MAGNITUDES[i]!]);
  };
  choose(0, []);
  return out;
}

const fmt = (p: readonly number[]): string => p.map((a) => {
  for (const [num, den] of [[1, 2], [1, 3], [3, 2], [2, 3], [3, 4], [4, 3], [1, 4]] as const) {
    if (Math.abs(Math.abs(a) - num / den) < 1e-12) return `${a < 0 ? '-' : ''}${num}/${den}`;
  }
  return String(a);
}).join(', ');

interface Row { m: number; points: number[]; multiplicationsPerOutput: number; winograd: number; direct: number; ratioToDirect: number; setsSearched: number }
const rows: Row[] = [];
const screenTrials = Math.max(10, Math.floor(trials / 10));
console.log(`float32 relative RMS error of one output tile, ${cin} input channels, ${trials} tiles (search: ${screenTrials} tiles per point set)`);
console.log(' m  mults/output  best points (with ∞)            Winograd   direct f32  Winograd/direct');
for (const m of [2, 3, 4]) {
  const finite = m + R - 2;
  // Screen every set on fewer tiles, then measure the best 3 on all of them.
  const screened = pointSets(finite).map((points) => {
    let t: WinogradTransforms;
    try { t = cookToom(m, R, points); } catch { return null; }
    const rng = new Rng(1);
    let ew = 0, s = 0;
    for (let k = 0; k < screenTrials; k++) {
      const r = trial(t, rng);
      r.truth.forEach((row, y) => row.forEach((v, x) => { ew += (r.winograd[y]![x]! - v) ** 2; s += v * v; }));
    }
    return { points, err: Math.sqrt(ew / s) };
  }).filter((x): x is { points: number[]; err: number } => x !== null).sort((a, b) => a.err - b.err);
  let best: Row | null = null;
  for (const cand of screened.slice(0, 3)) {
    const e = errors(cookToom(m, R, cand.points), 7);
    if (!best || e.winograd < best.winograd) {
      best = { m, points: cand.points, multiplicationsPerOutput: (m + R - 1) ** 2 / (m * m), winograd: e.winograd, direct: e.direct, ratioToDirect: e.winograd / e.direct, setsSearched: screened.length };
    }
  }
  rows.push(best!);
  console.log(`${String(m).padStart(2)}  ${best!.multiplicationsPerOutput.toFixed(2).padStart(12)}  ${fmt(best!.points).padEnd(32)} ${best!.winograd.toExponential(2).padStart(9)}  ${best!.direct.toExponential(2).padStart(10)}  ${best!.ratioToDirect.toFixed(1).padStart(15)}`);
}
const current = errors(F2X5, 7);
console.log(`the backend's F(2×2, 5×5) (points 0, ±3/2, ±2/3): ${current.winograd.toExponential(2)} (direct ${current.direct.toExponential(2)})`);

mkdirSync(join(here, 'results'), { recursive: true });
const file = join(here, 'results', 'winograd-accuracy.json');
writeFileAtomic(file, `${JSON.stringify({ date: new Date().toISOString(), cin, trials, rows, backendF2x5: current }, null, 2)}\n`);
console.log(`wrote ${file}`);
