/**
 * `svdd report`: one self-contained HTML page for a run directory (metrics, thresholds, curves,
 * score histograms, training curves, a PCA of the test latent codes, image grids, Grad-CAM) plus
 * every plot as a standalone SVG under plots/. Nothing in the page refers to the network or to
 * other files, so it can be mailed or archived on its own.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../tensor/io/atomic.ts';
import { removeDeadTemporaries } from '../run-dir.ts';
import { engine } from '../../tensor/engine.ts';
import { CLASS_NAMES, type DatasetName } from '../data/datasets.ts';
import { loadModel, loadModelData, type ModelMeta } from '../model.ts';
import { auroc, prCurve, quantileLinear, rocCurve } from '../metrics.ts';
import { encodeAll } from '../trainer.ts';
import { combinedScore, radiusSquared, squaredDistances } from '../svdd-model.ts';
import { UsageError, toImageSet, type RunResults } from '../run.ts';
import { Frame, binEdges, esc, histogramCounts, plotAreaSize, type LegendItem } from './svg.ts';
import { pca2 } from './pca.ts';
import type { ProgressCallback } from '../progress.ts';

/** Section headings of the page, in order (tests and readers rely on them). */
export const REPORT_SECTIONS = [
  'Summary', 'Detection metrics', 'Label-free thresholds', 'ROC and precision-recall curves',
  'Score distributions', 'Training curves', 'Latent space (PCA)', 'Most normal and most anomalous test images',
  'Grad-CAM of the top anomalies', 'Per-class detection', 'Configuration', 'Log',
] as const;

export const GRADCAM_FILE = join('explain', 'top_anomalies_gradcam.png');
/** Written by `svdd explain --top-anomalies` next to GRADCAM_FILE; shown for contrast when present. */
export const GRADCAM_NORMAL_FILE = join('explain', 'most_normal_gradcam.png');
/** The captioned figures of `svdd explain --top-anomalies` (score, methods, scaling, colour bars); preferred over the bare grids. */
export const EXPLAIN_FIGURE_FILE = join('explain', 'figure_top_anomalies.png');
export const EXPLAIN_FIGURE_NORMAL_FILE = join('explain', 'figure_most_normal.png');
/** Written last by `svdd explain`: without it the explanation in DIR/explain was interrupted, and none of its images is shown. */
export const EXPLAIN_INDEX_FILE = join('explain', 'explain.json');

export type LogAxis = 'auto' | 'on' | 'off';

/** Settings of the run as saved in config.json (a TrainConfig plus the backend actually used). */
export type RunConfigJson = Record<string, unknown> & { testSubset?: number | null; dataDir?: string | null; backend?: string };

export interface RunDir {
  dir: string;
  config: RunConfigJson;
  results: RunResults;
  meta: ModelMeta | null;
  log: string | null;
  timings: { seconds?: Record<string, number> } | null;
  /** PNG bytes of the image grids, when the files exist. */
  images: {
    normals: Uint8Array | null; anomalies: Uint8Array | null; gradcam: Uint8Array | null; gradcamNormal: Uint8Array | null;
    explainFigure?: Uint8Array | null; explainFigureNormal?: Uint8Array | null;
  };
}

function readJson<T>(path: string, what: string): T {
  try { return JSON.parse(readFileSync(path, 'utf8')) as T; } catch (e) {
    throw new UsageError(`${path}: cannot read ${what} (${(e as Error).message})`);
  }
}

const readOptional = (path: string): Buffer | null => (existsSync(path) ? readFileSync(path) : null);
const bytes = (b: Buffer | null): Uint8Array | null => (b ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : null);

/** Reads what a run directory holds; results.json and config.json are required, the rest optional. */
export function readRunDir(dir: string): RunDir {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`${dir} is not a directory`);
  const resultsPath = join(dir, 'results.json');
  if (!existsSync(resultsPath)) throw new UsageError(`${dir} holds no results.json (is it a finished \`svdd train\` run?)`);
  const results = readJson<RunResults>(resultsPath, 'the run results');
  const config = existsSync(join(dir, 'config.json')) ? readJson<RunConfigJson>(join(dir, 'config.json'), 'the run configuration') : {};
  const meta = existsSync(join(dir, 'model.json')) ? readJson<ModelMeta>(join(dir, 'model.json'), 'the model metadata') : null;
  const timings = existsSync(join(dir, 'timings.json')) ? readJson<RunDir['timings']>(join(dir, 'timings.json'), 'timings') : null;
  const explained = existsSync(join(dir, EXPLAIN_INDEX_FILE));
  const explainImage = (file: string): Uint8Array | null => (explained ? bytes(readOptional(join(dir, file))) : null);
  return {
    dir, config, results, meta, timings,
    log: readOptional(join(dir, 'log.txt'))?.toString('utf8') ?? null,
    images: {
      normals: bytes(readOptional(join(dir, 'normals.png'))),
      anomalies: bytes(readOptional(join(dir, 'anomalies.png'))),
      gradcam: explainImage(GRADCAM_FILE),
      gradcamNormal: explainImage(GRADCAM_NORMAL_FILE),
      explainFigure: explainImage(EXPLAIN_FIGURE_FILE),
      explainFigureNormal: explainImage(EXPLAIN_FIGURE_NORMAL_FILE),
    },
  };
}

export interface LatentProjection {
  count: number;
  repDim: number;
  /** Interleaved PCA coordinates [x0, y0, x1, y1, …] of the test codes. */
  points: Float64Array;
  labels: Uint8Array;
  /** The center c in the same PCA coordinates. */
  center: [number, number];
  variances: [number, number];
  totalVariance: number;
  /** Largest relative difference between distances recomputed from the codes and results.json's scores; null when not comparable. */
  scoreMismatch: number | null;
}

export interface LatentOptions {
  dataDir?: string;
  backend?: string;
  /** Hears the steps: 'loading the test set', 'encoding the test set' (images), 'latent PCA'. */
  onProgress?: ProgressCallback;
}

/**
 * Test latent codes of the saved model, on the same test images the run scored: the dataset is
 * preprocessed with the saved constants and the run's test subset, and the codes are checked
 * against the saved scores so a different dataset copy cannot silently produce a wrong picture.
 */
export async function latentProjection(run: RunDir, opts: LatentOptions = {}): Promise<LatentProjection> {
  await engine.use(opts.backend ?? 'auto');
  const model = loadModel(run.dir);
  const dataDir = opts.dataDir ?? (typeof run.config.dataDir === 'string' ? run.config.dataDir : undefined);
  const testSubset = typeof run.config.testSubset === 'number' ? run.config.testSubset : undefined;
  const progress = opts.onProgress;
  progress?.(0, 1, 'loading the test set');
  const { data } = loadModelData(model.meta, dataDir, testSubset);
  const set = toImageSet(data.test, data);
  progress?.(1, 1, 'loading the test set');
  const codes = encodeAll(model.encode, model.net, set, undefined, progress && ((done, total) => progress(done, total, 'encoding the test set')));
  const d = model.meta.repDim;
  progress?.(0, 1, 'latent PCA');
  const pca = pca2(codes, set.count, d);
  const saved = run.results.scores;
  let scoreMismatch: number | null = null;
  if (saved.length === set.count && saved.every((s, i) => s.index === data.test.indices[i])) {
    const distances = squaredDistances(codes, set.count, model.meta.centerC), r2 = radiusSquared(model.meta);
    scoreMismatch = 0;
    for (let i = 0; i < set.count; i++) {
      const dist = distances[i]!;
      const s = saved[i]!.score;
      if (typeof s !== 'number' || !Number.isFinite(s)) continue;
      scoreMismatch = Math.max(scoreMismatch, Math.abs(dist - r2 - s) / Math.max(1e-6, Math.abs(s), dist));
    }
  }
  const points = pca.projectAll(codes, set.count);
  progress?.(1, 1, 'latent PCA');
  return {
    count: set.count, repDim: d, points, labels: data.test.labels,
    center: pca.project(c64(model.meta.centerC)), variances: pca.variances, totalVariance: pca.totalVariance, scoreMismatch,
  };
}

const c64 = (v: number[]): Float64Array => Float64Array.from(v);

export interface ReportOptions {
  /** Log-scale x in the score histograms: 'auto' when positive scores span orders of magnitude. */
  logX?: LogAxis;
}

export interface RenderedReport {
  html: string;
  /** Standalone SVG files, by file name (under plots/). */
  plots: { name: string; svg: string }[];
}

// Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
const COLOR = { normal: '#0072B2', anomalous: '#D55E00', third: '#009E73', fourth: '#CC79A7', ink: '#222', grey: '#777' };
const DASHES = ['6 4', '2 3', '10 3 2 3', '1 2'];

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const pct = (v: number | null | undefined, digits = 2): string => (isNum(v) ? `${(100 * v).toFixed(digits)}%` : 'n/a');
const num = (v: number | null | undefined, p = 5): string => (isNum(v) ? (Math.abs(v) >= 1e6 || (Math.abs(v) < 1e-4 && v !== 0) ? v.toExponential(3) : String(Number(v.toPrecision(p)))) : 'n/a');

type ScoreKey = 'score' | 'mahalanobis' | 'reconstruction' | 'combined';
interface Series { key: ScoreKey; name: string; thresholdScore: string | null; scores: Float64Array; labels: Uint8Array; dropped: number }

const SCORE_NAMES: Record<ScoreKey, string> = { score: 'SVDD distance', mahalanobis: 'Mahalanobis', reconstruction: 'reconstruction error', combined: 'hybrid combined' };

/** The finite scores of one kind with their labels (NaN/Infinity are stored as null in JSON). */
function series(results: RunResults, key: ScoreKey, hybrid: { mu1: number; mu2: number } | null): Series | null {
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

interface Plot { name: string; frame: Frame; caption: string }

function rocPlot(all: Series[], results: RunResults): Plot | string {
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

function prPlot(all: Series[], results: RunResults): Plot | string {
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

function histogramPlot(s: Series, results: RunResults, logMode: LogAxis): Plot | string {
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

function lossPlot(name: string, title: string, history: RunResults['history']['train']): Plot | string {
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

function pcaPlot(lat: LatentProjection): Plot {
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

function table(head: string[] | null, rows: (string | number)[][], cls = ''): string {
  const th = head ? `<thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead>` : '';
  return `<table${cls ? ` class="${cls}"` : ''}>${th}<tbody>${rows.map((r) => `<tr>${r.map((c, i) => (i === 0 && !head ? `<th>${c}</th>` : `<td>${c}</td>`)).join('')}</tr>`).join('')}</tbody></table>`;
}

const pngImg = (png: Uint8Array, alt: string, cls = 'grid'): string => `<img class="${cls}" alt="${esc(alt)}" src="data:image/png;base64,${Buffer.from(png).toString('base64')}">`;

function figure(p: Plot | string): string {
  if (typeof p === 'string') return `<figure class="missing"><p>${esc(p)}</p></figure>`;
  return `<figure>${p.frame.render(false)}<figcaption>${esc(p.caption)} <span class="file">plots/${esc(p.name)}</span></figcaption></figure>`;
}

function perClassRows(results: RunResults, dataset: DatasetName | undefined): (string | number)[][] {
  const names = dataset && CLASS_NAMES[dataset] ? CLASS_NAMES[dataset] : null;
  // MNIST's class names are the digits themselves; "3 (3)" would only add noise.
  const label = (k: number): string => (names && names[k] !== undefined && names[k] !== String(k) ? `${k} (${esc(names[k])})` : String(k));
  const normal = results.scores.filter((r) => r.label === 0 && isNum(r.score));
  const classes = [...new Set(results.scores.filter((r) => r.label === 1).map((r) => r.class))].sort((a, b) => a - b);
  const hasMaha = results.scores.some((r) => isNum(r.mahalanobis));
  const median = (v: number[]): number => (v.length ? quantileLinear(v, 0.5) : NaN);
  const rows: (string | number)[][] = [[`${label(results.normalClass)}: normal`, normal.length, '—', hasMaha ? '—' : '', num(median(normal.map((r) => r.score)), 4)]];
  for (const k of classes) {
    const anom = results.scores.filter((r) => r.class === k && isNum(r.score));
    const both = [...normal, ...anom];
    const l = both.map((r) => r.label);
    const a = normal.length > 0 && anom.length > 0 ? auroc(l, both.map((r) => r.score)) : NaN;
    const both2 = both.filter((r) => isNum(r.mahalanobis));
    const am = hasMaha && both2.some((r) => r.label === 0) && both2.some((r) => r.label === 1) ? auroc(both2.map((r) => r.label), both2.map((r) => r.mahalanobis!)) : NaN;
    rows.push([label(k), anom.length, pct(a), hasMaha ? pct(am) : '', num(median(anom.map((r) => r.score)), 4)]);
  }
  if (!hasMaha) for (const r of rows) r.splice(3, 1);
  return rows;
}

const CSS = `
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;background:#f6f6f4;color:#1b1b1b;line-height:1.45}
main{max-width:1220px;margin:0 auto;padding:18px 28px 60px}
h1{font-size:1.6em;margin:0.4em 0 0.1em}h2{font-size:1.25em;margin:1.6em 0 0.5em;border-bottom:2px solid #ddd;padding-bottom:3px}
.sub{color:#555;margin:0 0 1em}
table{border-collapse:collapse;background:#fff;margin:0.4em 0 0.8em;font-size:0.92em}
th,td{border:1px solid #d4d4d4;padding:4px 9px;text-align:left;vertical-align:top}thead th{background:#eee}tbody th{background:#fafafa;font-weight:600}
td.n,.num td{font-variant-numeric:tabular-nums}
.warn{border:3px solid #c0001a;background:#ffe9e9;color:#7a0010;padding:12px 16px;margin:1em 0;font-size:1.05em}
.warn strong{font-size:1.15em}
.note{border-left:4px solid #e0a800;background:#fff8e0;padding:8px 12px;margin:0.6em 0}
.oracle{color:#7a4b00}
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:16px}
figure{margin:0;background:#fff;border:1px solid #ddd;padding:8px}
figure svg{max-width:100%;height:auto;display:block;margin:0 auto}
figure.missing{color:#555;font-style:italic;display:flex;align-items:center}
figcaption{font-size:0.86em;color:#444;margin-top:4px}
.file{color:#888;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:0.9em}
img.grid{image-rendering:pixelated;width:100%;max-width:500px;display:block;border:1px solid #ccc}
img.wide{image-rendering:pixelated;width:100%;max-width:900px;display:block;border:1px solid #ccc}
.conf td,.conf th{text-align:center}
.cfg{columns:3 300px;font-size:0.9em}.cfg div{break-inside:avoid;padding:1px 0}.cfg code{color:#333}
pre{background:#fff;border:1px solid #ddd;padding:10px;overflow:auto;font-size:0.8em;max-height:520px}
code{font-family:ui-monospace,Menlo,Consolas,monospace}
`;

/** Builds the page and the standalone plots from a run directory's contents (no file access). */
export function renderReport(run: RunDir, latent: LatentProjection | { error: string } | null, opts: ReportOptions = {}): RenderedReport {
  const r = run.results, ev = r.evaluation;
  const cfg = run.config;
  const dataset = (r.dataset ?? cfg.dataset) as DatasetName;
  const className = CLASS_NAMES[dataset]?.[r.normalClass];
  const hybridMu = run.meta?.hybrid ?? (r.hybrid && isNum(cfg.mu1) && isNum(cfg.mu2) ? { mu1: cfg.mu1, mu2: cfg.mu2 } : null);
  const allSeries = (['score', 'mahalanobis', 'reconstruction', 'combined'] as const).map((k) => series(r, k, hybridMu)).filter((s): s is Series => s !== null);
  const plots: Plot[] = [];
  const keep = (p: Plot | string): Plot | string => { if (typeof p !== 'string') plots.push(p); return p; };
  const parts: string[] = [];
  const h2 = (i: number): string => `<h2 id="s${i}">${esc(REPORT_SECTIONS[i]!)}</h2>`;

  // Summary
  parts.push(`<h1>Deep SVDD run report</h1><p class="sub"><code>${esc(run.dir)}</code> · generated ${esc(new Date().toISOString().slice(0, 19).replace('T', ' '))} UTC</p>`);
  parts.push(h2(0));
  const collapses = [r.trainingCollapse, ev.collapse].filter((c) => c?.detected);
  for (const c of collapses) parts.push(`<div class="warn"><strong>⚠ Collapse detected.</strong> ${esc(c.reason ?? '')}<br>The metrics below carry no information about this model's ability to detect anomalies; do not report them.</div>`);
  if (!collapses.length && ev.metrics.auroc === null) parts.push(`<div class="warn"><strong>⚠ No ranking metrics.</strong> AUROC is undefined for this run (the test set lacks one of the classes, or the scores are unusable).</div>`);
  const secs = run.timings?.seconds ?? {};
  parts.push(table(null, [
    ['Dataset', `${esc(dataset)}, normal class ${r.normalClass}${className && className !== String(r.normalClass) ? ` (${esc(className)})` : ''}; every other class is an anomaly`],
    ['Model', `${esc(r.net)}, objective ${esc(r.objective)}${r.hybrid ? ` + hybrid reconstruction term (μ1 = ${esc(String(cfg.mu1 ?? '?'))}, μ2 = ${esc(String(cfg.mu2 ?? '?'))})` : ''}${r.objective === 'soft-boundary' ? `, radius R = ${num(r.radiusR)}` : ''}`],
    ['Data', `${r.counts.train} normal training images, ${r.counts.validation} held-out normal validation images, ${ev.counts.test} test images (${ev.counts.normal} normal, ${ev.counts.anomalous} anomalous)`],
    ['Center c', run.meta ? `‖c‖ = ${num(Math.hypot(...run.meta.centerC))} (rep_dim ${run.meta.repDim})` : 'model.json missing'],
    ['Headline', `AUROC ${pct(ev.metrics.auroc)}, AP ${pct(ev.metrics.averagePrecision)}${ev.mahalanobis ? `; Mahalanobis AUROC ${pct(ev.mahalanobis.auroc)}` : ''}`],
    ['Run', `seed ${r.seed}, backend ${esc(r.backend)}${isNum(secs.total) ? `, ${secs.total.toFixed(1)} s in total (${Object.entries(secs).filter(([k]) => k !== 'total').map(([k, v]) => `${esc(k)} ${v.toFixed(1)} s`).join(', ')})` : ''}`],
  ]));

  // Metrics
  parts.push(h2(1));
  const bf = ev.metrics.bestF1Oracle;
  const rows: (string | number)[][] = [
    ['Positive class', esc(ev.positiveClass)],
    ['AUROC (SVDD distance)', `<b>${pct(ev.metrics.auroc)}</b>`],
    ['Average precision (SVDD distance)', pct(ev.metrics.averagePrecision)],
    ['<span class="oracle">Best F1 — ORACLE</span>', bf ? `<span class="oracle">${pct(bf.f1)} at threshold ${num(bf.threshold)} (precision ${pct(bf.precision)}, recall ${pct(bf.recall)}); chosen with the test labels, so not achievable in practice</span>` : 'n/a'],
    ['F1 of the all-anomalous rule', `${pct(ev.f1AllAnomalous)} (flag every image: recall 100%, precision = anomaly rate); any F1 should beat this`],
  ];
  if (r.pretrainTestAuroc !== null && r.pretrainTestAuroc !== undefined) rows.push(['Autoencoder AUROC (reconstruction error, after pretraining)', pct(r.pretrainTestAuroc)]);
  if (ev.hybrid) {
    rows.push(['Hybrid: AUROC of the distance', pct(ev.hybrid.aurocDistance)]);
    rows.push(['Hybrid: AUROC of the reconstruction error', pct(ev.hybrid.aurocReconstruction)]);
    rows.push([`Hybrid: AUROC of ${esc(ev.hybrid.combined)}`, pct(ev.hybrid.aurocCombined)]);
  }
  if (ev.mahalanobis) {
    rows.push(['Mahalanobis AUROC', `<b>${pct(ev.mahalanobis.auroc)}</b>`]);
    rows.push(['Mahalanobis average precision', pct(ev.mahalanobis.averagePrecision)]);
    const mb = ev.mahalanobis.bestF1Oracle;
    if (mb) rows.push(['<span class="oracle">Mahalanobis best F1 — ORACLE</span>', `<span class="oracle">${pct(mb.f1)} at threshold ${num(mb.threshold)} (chosen with the test labels)</span>`]);
  }
  if (r.gaussian) rows.push(['Gaussian of the codes', `fitted on ${esc(r.gaussian.fittedOn)}; shrinkage ${num(r.gaussian.shrinkage, 3)}, ridge ${num(r.gaussian.ridge, 3)}`]);
  parts.push(table(null, rows));

  // Thresholds
  parts.push(h2(2));
  if (ev.thresholds.length === 0) {
    parts.push(`<p class="note">This run has no label-free thresholds (trained with <code>--threshold fixed</code> and no validation split). Train with <code>--threshold adaptive</code> to get thresholds τ calibrated on held-out normal images.</p>`);
  } else {
    parts.push(`<p>Each τ is set without test labels, from held-out normal images, to flag a target fraction α of normals; an image is called anomalous when its score exceeds τ. The observed false positive rate on the test normals should be close to α.</p>`);
    parts.push(table(['Score', 'Method', 'τ', 'Precision', 'Recall', 'F1', 'Observed FPR vs target α', 'Flagged', 'Confusion matrix'], ev.thresholds.map((th) => {
      const off = isNum(th.alpha) && isNum(th.observedFpr) && th.observedFpr > 2 * th.alpha + 0.01;
      const conf = `<table class="conf"><tr><th></th><th>flagged</th><th>not flagged</th></tr><tr><th>anomalous</th><td>TP ${th.tp}</td><td>FN ${th.fn}</td></tr><tr><th>normal</th><td>FP ${th.fp}</td><td>TN ${th.tn}</td></tr></table>`;
      return [esc(th.score), esc(th.method), num(th.tau), pct(th.precision), pct(th.recall), `<b>${pct(th.f1)}</b>`, `${pct(th.observedFpr)} vs ${isNum(th.alpha) ? pct(th.alpha, 1) : 'n/a'}${off ? ' ⚠ well above target' : ''}`, pct(th.flaggedRate, 1), conf];
    }), 'num'));
  }

  // Curves
  parts.push(h2(3));
  parts.push(`<div class="figs">${figure(keep(rocPlot(allSeries, r)))}${figure(keep(prPlot(allSeries, r)))}</div>`);

  // Histograms
  parts.push(h2(4));
  parts.push(`<div class="figs">${allSeries.filter((s) => s.key !== 'combined').map((s) => figure(keep(histogramPlot(s, r, opts.logX ?? 'auto')))).join('')}</div>`);

  // Training curves
  parts.push(h2(5));
  parts.push(`<div class="figs">${figure(keep(lossPlot('loss-train.svg', r.hybrid ? 'Hybrid training loss' : 'Deep SVDD training loss', r.history.train)))}${figure(keep(lossPlot('loss-pretrain.svg', 'Autoencoder pretraining loss', r.history.pretrain)))}</div>`);

  // Latent
  parts.push(h2(6));
  if (latent === null) parts.push(`<p class="note">Skipped (<code>--no-latent</code>). The projection needs the model and the dataset; run <code>svdd report ${esc(run.dir)}</code> without it.</p>`);
  else if ('error' in latent) parts.push(`<p class="note">Could not compute the test latent codes: ${esc(latent.error)}. Pass <code>--data-dir DIR</code> if the dataset lives elsewhere.</p>`);
  else {
    if (latent.scoreMismatch !== null && latent.scoreMismatch > 1e-3) parts.push(`<div class="warn"><strong>⚠ Codes do not reproduce the saved scores</strong> (largest relative difference ${num(latent.scoreMismatch, 3)}): the dataset or model differs from the run's; the projection may not show the run's test set.</div>`);
    parts.push(`<div class="figs">${figure(keep(pcaPlot(latent)))}</div>`);
  }

  // Images
  parts.push(h2(7));
  const imgs: string[] = [];
  if (run.images.normals) imgs.push(`<figure>${pngImg(run.images.normals, 'most normal test images')}<figcaption>The normal-class test images with the lowest scores (closest to c): what the model considers most typical.</figcaption></figure>`);
  if (run.images.anomalies) imgs.push(`<figure>${pngImg(run.images.anomalies, 'most anomalous normal-class test images')}<figcaption>The normal-class test images with the highest scores, most anomalous first (as in the paper's Figs. 2–3): atypical members of the normal class.</figcaption></figure>`);
  parts.push(imgs.length ? `<div class="figs">${imgs.join('')}</div>` : '<p class="note">normals.png / anomalies.png are missing from the run directory.</p>');

  // Grad-CAM
  parts.push(h2(8));
  if (run.images.explainFigure) {
    parts.push(`<figure>${pngImg(run.images.explainFigure, 'Attribution maps of the top anomalies', 'wide')}<figcaption>Attribution maps of the anomaly score for the highest-scoring test images (<code>${esc(EXPLAIN_FIGURE_FILE)}</code>, written by <code>svdd explain</code>): the figure names the score, the methods and layers, the baseline and the colour scaling; every tile carries its image's index, class, score and decision, and its map's max |value|.</figcaption></figure>`);
    if (run.images.explainFigureNormal) parts.push(`<figure>${pngImg(run.images.explainFigureNormal, 'Attribution maps of the most normal test images', 'wide')}<figcaption>For contrast, the lowest-scoring normal test images (<code>${esc(EXPLAIN_FIGURE_NORMAL_FILE)}</code>).</figcaption></figure>`);
  } else if (run.images.gradcam) {
    parts.push(`<figure>${pngImg(run.images.gradcam, 'Grad-CAM overlays of the top anomalies', 'wide')}<figcaption>Grad-CAM of the anomaly score for the highest-scoring test images (<code>${esc(GRADCAM_FILE)}</code>): inputs above, heatmap overlays below; bright regions move the score most.</figcaption></figure>`);
    if (run.images.gradcamNormal) parts.push(`<figure>${pngImg(run.images.gradcamNormal, 'Grad-CAM overlays of the most normal test images', 'wide')}<figcaption>For contrast, the lowest-scoring normal test images (<code>${esc(GRADCAM_NORMAL_FILE)}</code>).</figcaption></figure>`);
  } else {
    parts.push(`<p class="note">No Grad-CAM overlays yet. Run <code>svdd explain --model ${esc(run.dir)} --top-anomalies 16</code> (it writes <code>${esc(GRADCAM_FILE)}</code>), then <code>svdd report ${esc(run.dir)}</code> again to include them.</p>`);
  }

  // Per-class
  parts.push(h2(9));
  if (r.scores.length > 0) {
    const hasMaha = r.scores.some((x) => isNum(x.mahalanobis));
    parts.push(`<p>AUROC of the normal class against each anomalous class alone (SVDD distance${hasMaha ? ' and Mahalanobis' : ''}), with the median score per class.</p>`);
    parts.push(table(['Class', 'Test images', 'AUROC vs normal', ...(hasMaha ? ['Mahalanobis AUROC'] : []), 'Median SVDD score'], perClassRows(r, dataset), 'num'));
  } else parts.push('<p class="note">results.json holds no per-sample scores.</p>');

  // Configuration
  parts.push(h2(10));
  parts.push(`<div class="cfg">${Object.entries(cfg).map(([k, v]) => `<div><code>${esc(k)}</code>: ${esc(JSON.stringify(v))}</div>`).join('')}</div>`);

  // Log
  parts.push(h2(11));
  parts.push(run.log !== null ? `<details><summary>log.txt (${run.log.split('\n').length - 1} lines)</summary><pre>${esc(run.log)}</pre></details>` : '<p class="note">log.txt is missing.</p>');

  const title = `Deep SVDD report: ${dataset} class ${r.normalClass}, AUROC ${pct(ev.metrics.auroc)}`;
  const html = `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title><style>${CSS}</style></head><body><main>\n${parts.join('\n')}\n</main></body></html>\n`;
  return { html, plots: plots.map((p) => ({ name: p.name, svg: p.frame.render(true) })) };
}

export interface WriteReportOptions extends ReportOptions, LatentOptions {
  /** Compute the latent PCA (loads the model and the dataset); default true. */
  latent?: boolean;
}

const OWN_PLOT = /^(roc|pr|pca|hist-[a-z]+|loss-[a-z]+)\.svg$/;

export interface WrittenReport { html: string; plots: string[]; latentError: string | null }

/**
 * Writes DIR/report.html and DIR/plots/*.svg, each atomically; the page last, so it never refers to
 * missing plots. `onProgress` hears latentProjection's steps, then 'drawing the plots' and
 * 'writing the report' (files).
 */
export async function writeReport(dir: string, opts: WriteReportOptions = {}): Promise<WrittenReport> {
  const run = readRunDir(dir);
  let latent: LatentProjection | { error: string } | null = null;
  if (opts.latent !== false) {
    try { latent = await latentProjection(run, opts); } catch (e) { latent = { error: (e as Error).message }; }
  }
  const progress = opts.onProgress;
  progress?.(0, 1, 'drawing the plots');
  const rendered = renderReport(run, latent, opts);
  progress?.(1, 1, 'drawing the plots');
  const plotsDir = join(dir, 'plots');
  mkdirSync(plotsDir, { recursive: true });
  // What a killed report (or test) left half-written: temporaries of processes that are gone.
  removeDeadTemporaries(plotsDir);
  removeDeadTemporaries(dir);
  const plots = rendered.plots.map((p, k) => {
    const path = join(plotsDir, p.name);
    writeFileAtomic(path, p.svg);
    progress?.(k + 1, rendered.plots.length + 1, 'writing the report');
    return path;
  });
  // A plot an earlier report wrote but this one did not (e.g. pca.svg before --no-latent) would
  // sit next to the new ones as if current; only names this module produces are removed.
  const current = new Set(rendered.plots.map((p) => p.name));
  for (const f of readdirSync(plotsDir)) if (OWN_PLOT.test(f) && !current.has(f)) rmSync(join(plotsDir, f), { force: true });
  const html = join(dir, 'report.html');
  writeFileAtomic(html, rendered.html);
  progress?.(rendered.plots.length + 1, rendered.plots.length + 1, 'writing the report');
  return { html, plots, latentError: latent && 'error' in latent ? latent.error : null };
}
