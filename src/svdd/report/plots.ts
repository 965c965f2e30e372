/**
 * The report's plots, each a Frame (svg.ts) with its file name and caption, or a sentence saying
 * why it cannot be drawn: ROC and precision-recall curves, score histograms, training curves and
 * the latent PCA.
 */
import { auroc, prCurve, quantileLinear, rocCurve } from '../metrics.ts';
import { combinedScore } from '../svdd-model.ts';
import type { RunResults } from '../run.ts';
import { Frame, binEdges, histogramCounts, plotAreaSize, type LegendItem } from './svg.ts';
import { isNum, num, pct } from './format.ts';
import type { LatentProjection } from './load.ts';

export type LogAxis = 'auto' | 'on' | 'off';

// Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
const COLOR = { normal: '#0072B2', anomalous: '#D55E00', third: '#009E73', fourth: '#CC79A7', ink: '#222', grey: '#777' };
const DASHES = ['6 4', '2 3', '10 3 2 3', '1 2'];

type ScoreKey = 'score' | 'mahalanobis' | 'reconstruction' | 'combined';
export interface Series { key: ScoreKey; name: string; thresholdScore: string | null; scores: Float64Array; labels: Uint8Array; dropped: number }

const SCORE_NAMES: Record<ScoreKey, string> = { score: 'SVDD distance', mahalanobis: 'Mahalanobis', reconstruction: 'reconstruction error', combined: 'hybrid combined' };

/** The finite scores of one kind with their labels (NaN/Infinity are stored as null in JSON). */
export function series(results: RunResults, key: ScoreKey, hybrid: { mu1: number; mu2: number } | null): Series | null {
  const rows = results.scores;
  // The combined hybrid score is not stored per sample; it is μ1·distance + μ2·reconstruction, as evaluate() forms it.
  const value = (r: RunResults['scores'][number]): number | undefined => (key === 'combined'
    ? (hybrid && isNum(r.reconstruction) ? combinedScore(r.score, r.reconstruction, hybrid) : undefined)
    : r[key]);
  if (rows.length === 0 || !rows.some((r) => value(r) !== undefined)) return null;
  const s: number[] = [], l: number[] = [];
  for (const r of rows) { const v = value(r); if (isNum(v)) { s.push(v); l.push(r.label); } }
  return {
    key, name: SCORE_NAMES[key], thresholdScore: key === 'score' ? 'svdd' : key === 'mahalanobis' ? 'mahalanobis' : null,
    scores: Float64Array.from(s), labels: Uint8Array.from(l), dropped: rows.length - s.length,
  };
}

const hasBothClasses = (l: Uint8Array): boolean => l.includes(0) && l.includes(1);

export interface Plot { name: string; frame: Frame; caption: string }

export function rocPlot(all: Series[], results: RunResults): Plot | string {
  const usable = all.filter((s) => hasBothClasses(s.labels));
  if (usable.length === 0) return 'No ROC curve: the test scores do not contain both normal and anomalous samples.';
  const main = results.evaluation.metrics.auroc;
  const f = new Frame({ id: 'roc', title: `ROC curve: AUROC ${pct(main)} (SVDD distance)`, x: { label: 'false positive rate (normals flagged)', min: 0, max: 1, exact: true }, y: { label: 'true positive rate (anomalies flagged)', min: 0, max: 1, exact: true } });
  f.line([0, 1], [0, 1], { color: '#aaa', width: 1, dash: '4 4' });
  const legend: LegendItem[] = [];
  const colors = [COLOR.normal, COLOR.anomalous, COLOR.third, COLOR.fourth];
  usable.forEach((s, k) => {
    const pts = rocCurve(s.labels, s.scores);
    f.line(pts.map((p) => p.fpr), pts.map((p) => p.tpr), { color: colors[k]!, width: k === 0 ? 2.5 : 1.8, name: `roc-${s.key}` });
    legend.push({ label: `${s.name} (AUROC ${pct(auroc(s.labels, s.scores))})`, color: colors[k]!, kind: 'line' });
  });
  for (const th of results.evaluation.thresholds) {
    const k = usable.findIndex((s) => s.thresholdScore === th.score);
    if (k >= 0) f.ring(th.observedFpr, th.recall, colors[k]!);
  }
  if (results.evaluation.thresholds.length > 0) legend.push({ label: 'operating point at τ', color: COLOR.ink, kind: 'dot' });
  legend.push({ label: 'chance', color: '#aaa', kind: 'line', dash: '4 4' });
  f.legend(legend, 'bottom-right');
  return { name: 'roc.svg', frame: f, caption: `One point per distinct score (positive class: anomaly).${results.evaluation.thresholds.length > 0 ? ' Circles: the operating points of the label-free thresholds τ in the table above.' : ''}` };
}

export function prPlot(all: Series[], results: RunResults): Plot | string {
  const usable = all.filter((s) => hasBothClasses(s.labels));
  if (usable.length === 0) return 'No precision-recall curve: the test scores do not contain both classes.';
  const curves = usable.map((s) => ({ s, pts: prCurve(s.labels, s.scores) }));
  const rate = usable[0]!.labels.reduce((a, l) => a + l, 0) / usable[0]!.labels.length;
  const lowest = Math.min(rate, ...curves.flatMap((c) => c.pts.map((p) => p.precision)));
  const yMin = Math.max(0, Math.floor(lowest * 10 - 1e-9) / 10);
  const f = new Frame({ id: 'pr', title: `Precision-recall curve: AP ${pct(results.evaluation.metrics.averagePrecision)} (SVDD distance)`, x: { label: 'recall (anomalies flagged)', min: 0, max: 1, exact: true }, y: { label: 'precision (flagged that are anomalies)', min: yMin, max: 1, exact: true }, legendAbove: true });
  const colors = [COLOR.normal, COLOR.anomalous, COLOR.third, COLOR.fourth];
  const legend: LegendItem[] = [];
  curves.forEach(({ s, pts }, k) => {
    f.line(pts.map((p) => p.recall), pts.map((p) => p.precision), { color: colors[k]!, width: k === 0 ? 2.5 : 1.8, name: `pr-${s.key}` });
    legend.push({ label: s.name, color: colors[k]!, kind: 'line' });
  });
  f.hline(rate, { color: COLOR.grey, dash: '4 4' }, `anomaly rate ${pct(rate, 1)} (precision of "flag everything")`);
  f.legend(legend, 'above');
  return { name: 'pr.svg', frame: f, caption: `Anomaly is the positive class, and anomalies are ${pct(rate, 1)} of the test set, so precision cannot fall below about that rate: read AP against it.` };
}

/** Decides log-x for a histogram: positive scores whose 1st–99th percentiles differ by ≥ 15×. */
export function wantsLogAxis(scores: ArrayLike<number>, mode: LogAxis = 'auto'): boolean {
  if (mode === 'off' || scores.length === 0) return false;
  let min = Infinity;
  for (let i = 0; i < scores.length; i++) min = Math.min(min, scores[i]!);
  if (!(min > 0)) return false;
  if (mode === 'on') return true;
  return quantileLinear(scores, 0.99) / quantileLinear(scores, 0.01) >= 15;
}

export function histogramPlot(s: Series, results: RunResults, logMode: LogAxis): Plot | string {
  if (s.scores.length === 0) return `No ${s.name} scores to plot.`;
  const log = wantsLogAxis(s.scores, logMode);
  const sorted = Float64Array.from(s.scores).sort();
  const lo = sorted[0]!;
  let hi = sorted[sorted.length - 1]!;
  let clipped = 0;
  if (!log) {
    // One far outlier would squeeze every other score into a bin or two; cut the axis and say so.
    const q = quantileLinear(sorted, 0.995);
    if (hi > q + 3 * (q - lo)) { hi = q + 0.5 * (q - lo); clipped = sorted.filter((v) => v > hi).length; }
  }
  const edges = binEdges(lo, hi, 40, log);
  const share = (label: number): Float64Array => {
    const v = s.scores.filter((_, i) => s.labels[i] === label);
    const c = histogramCounts(v, edges);
    return c.map((x) => (v.length > 0 ? x / v.length : 0));
  };
  const normal = share(0), anomalous = share(1);
  const yMax = Math.max(...normal, ...anomalous, 1e-9);
  const f = new Frame({ id: `hist-${s.key}`, title: `Test scores: ${s.name}`, x: { label: `${s.name} score${s.key === 'score' && results.objective === 'soft-boundary' ? ' (distance² − R²)' : ''}`, min: edges[0]!, max: edges[40]!, log, exact: true }, y: { label: 'share of the class per bin', min: 0, max: yMax * 1.15, exact: true }, legendAbove: true });
  f.histogram(edges, anomalous, COLOR.anomalous);
  f.histogram(edges, normal, COLOR.normal);
  const legend: LegendItem[] = [
    { label: `normal (${s.labels.length - s.labels.reduce((a, l) => a + l, 0)})`, color: COLOR.normal, kind: 'box' },
    { label: `anomalous (${s.labels.reduce((a, l) => a + l, 0)})`, color: COLOR.anomalous, kind: 'box' },
  ];
  let slot = 0;
  const own = results.evaluation.thresholds.filter((th) => th.score === s.thresholdScore);
  const drawn = own.length;
  own.forEach((th, k) => {
    const label = `τ ${th.method}${isNum(th.alpha) ? ` α=${th.alpha}` : ''} = ${num(th.tau, 4)}`;
    f.vline(th.tau, { color: COLOR.ink, width: 2, dash: DASHES[k % DASHES.length]! }, label, slot++);
  });
  const oracle = s.key === 'score' ? results.evaluation.metrics.bestF1Oracle : s.key === 'mahalanobis' ? results.evaluation.mahalanobis?.bestF1Oracle : null;
  if (oracle && isNum(oracle.threshold)) f.vline(oracle.threshold, { color: COLOR.grey, width: 1.5, dash: '2 2' }, `oracle best-F1 threshold = ${num(oracle.threshold, 4)}`, slot++);
  f.legend(legend, 'above');
  const notes = [
    `Each class is normalised separately (bars of one colour sum to 1), since the classes differ in size.`,
    log ? 'Log-scale x: the scores span more than an order of magnitude.' : '',
    clipped > 0 ? `${clipped} outlying score${clipped > 1 ? 's' : ''} above ${num(hi, 4)} not shown.` : '',
    s.dropped > 0 ? `${s.dropped} non-finite score${s.dropped > 1 ? 's' : ''} omitted.` : '',
    drawn > 0 ? 'Dashed black: label-free thresholds τ (anomaly when score > τ).' : '',
    oracle && isNum(oracle.threshold) ? 'Dotted grey: the oracle best-F1 threshold, chosen with the test labels.' : '',
  ];
  return { name: `hist-${s.key}.svg`, frame: f, caption: notes.filter(Boolean).join(' ') };
}

export function lossPlot(name: string, title: string, history: RunResults['history']['train']): Plot | string {
  if (history.length === 0) return `No ${title.toLowerCase()}: this phase did not run.`;
  const ep = history.map((h) => h.epoch);
  const lines: { label: string; values: number[]; color: string; dash?: string }[] = [{ label: 'loss', values: history.map((h) => h.loss), color: COLOR.normal }];
  if (history.some((h) => isNum(h.svddLoss))) lines.push({ label: 'SVDD term', values: history.map((h) => h.svddLoss ?? NaN), color: COLOR.anomalous, dash: '6 4' });
  if (history.some((h) => isNum(h.reconLoss))) lines.push({ label: 'reconstruction term', values: history.map((h) => h.reconLoss ?? NaN), color: COLOR.third, dash: '2 3' });
  const all = lines.flatMap((l) => l.values).filter(isNum);
  if (all.length === 0) return `No ${title.toLowerCase()}: every loss value is non-finite (training diverged).`;
  const min = Math.min(...all), max = Math.max(...all);
  const log = min > 0 && max / min >= 20;
  const xmin = Math.min(...ep), xmax = Math.max(...ep);
  const f = new Frame({
    id: name.replace('.svg', ''), title,
    x: xmin === xmax ? { label: 'epoch', min: xmin - 1, max: xmax + 1, integer: true } : { label: 'epoch', min: xmin, max: xmax, integer: true },
    y: { label: 'mean loss per sample', min: log ? min : Math.min(0, min), max, log },
    legendAbove: lines.length > 1,
  });
  for (const l of lines) {
    f.line(ep, l.values, { color: l.color, dash: l.dash });
    if (ep.length <= 40) f.dots(ep, l.values, l.color);
  }
  if (lines.length > 1) f.legend(lines.map((l) => ({ label: l.label, color: l.color, kind: 'line' as const, dash: l.dash })), 'above');
  return { name, frame: f, caption: `${history.length} epoch${history.length > 1 ? 's' : ''}; final loss ${num(history[history.length - 1]!.loss)}${log ? '; log-scale y' : ''}.` };
}

export function pcaPlot(lat: LatentProjection): Plot {
  const xs: number[] = [], ys: number[] = [];
  for (let i = 0; i < lat.count; i++) { xs.push(lat.points[2 * i]!); ys.push(lat.points[2 * i + 1]!); }
  xs.push(lat.center[0]); ys.push(lat.center[1]);
  // Equal units on both axes, so distances to c in the picture are honest.
  const { width: w, height: h } = plotAreaSize(560, 360, true);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const pad = 0.04;
  const unit = Math.max((x1 - x0) / w, (y1 - y0) / h, 1e-12) * (1 + 2 * pad);
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  [x0, x1] = [cx - (unit * w) / 2, cx + (unit * w) / 2];
  [y0, y1] = [cy - (unit * h) / 2, cy + (unit * h) / 2];
  const share = (v: number): string => (lat.totalVariance > 0 ? `${(100 * v / lat.totalVariance).toFixed(1)}% of variance` : 'no variance');
  const f = new Frame({ id: 'pca', title: `Test latent codes, 2-D PCA (${lat.count} images, rep_dim ${lat.repDim})`, x: { label: `PC1 (${share(lat.variances[0])})`, min: x0, max: x1, exact: true }, y: { label: `PC2 (${share(lat.variances[1])})`, min: y0, max: y1, exact: true }, legendAbove: true });
  const pick = (label: number, axis: 0 | 1): number[] => { const o: number[] = []; for (let i = 0; i < lat.count; i++) if (lat.labels[i] === label) o.push(lat.points[2 * i + axis]!); return o; };
  const nA = f.scatter(pick(1, 0), pick(1, 1), COLOR.anomalous, 2, 0.45);
  const nN = f.scatter(pick(0, 0), pick(0, 1), COLOR.normal, 2.4, 0.75);
  f.cross(lat.center[0], lat.center[1], COLOR.ink, 'c');
  f.legend([
    { label: `normal (${nN})`, color: COLOR.normal, kind: 'dot' },
    { label: `anomalous (${nA})`, color: COLOR.anomalous, kind: 'dot' },
    { label: 'center c (same projection)', color: COLOR.ink, kind: 'cross' },
  ], 'above');
  return { name: 'pca.svg', frame: f, caption: `PCA fitted on all test codes; the center c is projected with the same mean and axes. The two axes keep ${lat.totalVariance > 0 ? pct((lat.variances[0] + lat.variances[1]) / lat.totalVariance, 1) : 'n/a'} of the codes' variance, so points that look close to c may be far from it in the other ${Math.max(0, lat.repDim - 2)} dimensions.` };
}
