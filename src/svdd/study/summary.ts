/**
 * `svdd study summarize`: the study's deliverable from its cell records. Per dataset ×
 * preprocessing × protocol (a section) and normal class: AUROC mean ± std over seeds for every
 * method and score, with the paper's Table 1 value beside the one-class and soft-boundary
 * columns (and the difference in units of the paper's σ); AP, F1 at the label-free τ with its
 * observed FPR against α, the oracle best F1 beside the F1 of flagging everything; dataset means
 * against the paper's and the seed's published means; paired differences with a Wilcoxon
 * signed-rank test; plots. Written as summary.md, summary.csv and a self-contained summary.html.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../tensor/io/atomic.ts';
import { presetDefaults } from '../config.ts';
import { CLASS_NAMES, isTrainDatasetName, type DatasetName } from '../data/datasets.ts';
import { esc, Frame } from '../report/svg.ts';
import type { CellRecord, ScoreMetrics, ScoreName } from './records.ts';
import { ROC_GRID } from './records.ts';
import { PAPER_CITATION, SEED_CITATION, SEED_SUMMARY, paperCell } from './reference.ts';
import { readRecords } from './runner.ts';
import { wilcoxonSignedRank } from './wilcoxon.ts';

/**
 * A column of the tables: one score of one method, a method being one setting of a kind (its id,
 * e.g. `hybrid-mu1=1-mu2=1`): two hybrids of different μ2 summarised together are two columns.
 */
export interface Column { kind: string; method: string; score: ScoreName; label: string; color: string }

/** The column templates in table order; `q` names the method's settings when a section holds several methods of its kind. */
const COLUMN_ORDER: { kind: string; score: ScoreName; label: (q: string) => string }[] = [
  { kind: 'one-class', score: 'distance', label: (q) => `one-class${q}` },
  { kind: 'soft-boundary', score: 'distance', label: (q) => `soft-boundary${q}` },
  { kind: 'hybrid', score: 'distance', label: (q) => `hybrid${q} (distance)` },
  { kind: 'hybrid', score: 'combined', label: (q) => `hybrid${q} (combined)` },
  { kind: 'hybrid', score: 'reconstruction', label: (q) => `hybrid${q} (reconstruction)` },
  { kind: 'one-class', score: 'mahalanobis', label: (q) => `adaptive (one-class${q}, Mahalanobis)` },
  { kind: 'soft-boundary', score: 'mahalanobis', label: (q) => `soft-boundary${q} (Mahalanobis)` },
  { kind: 'hybrid', score: 'mahalanobis', label: (q) => `hybrid${q} (Mahalanobis)` },
];
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#17becf', '#bcbd22', '#d62728', '#9467bd', '#8c564b'];
/** Colours of the further methods of a kind (the first keeps its template's colour). */
const MORE_COLORS = ['#e377c2', '#7f7f7f', '#393b79', '#637939', '#8c6d31', '#843c39', '#7b4173', '#3182bd'];

/** Three significant digits without trailing zeros (1/784 → 0.00128). */
const short3 = (v: string): string => (Number.isFinite(Number(v)) ? String(Number(Number(v).toPrecision(3))) : v);

/** The settings that tell a method from others of its kind, for labels: "μ2=0.00128", "ν=0.1", or its id. */
export function methodQualifier(id: string): string {
  const h = /^hybrid-mu1=([^-]+)-mu2=(.+)$/.exec(id);
  if (h) return `${h[1] === '1' ? '' : `μ1=${short3(h[1]!)} `}μ2=${short3(h[2]!)}`;
  const nu = /^soft-boundary-nu(.+)$/.exec(id);
  if (nu) return `ν=${short3(nu[1]!)}`;
  return id;
}

export interface Stat { n: number; mean: number; std: number }
/** Mean and sample standard deviation (n − 1; 0 for one value). */
export function stat(xs: number[]): Stat {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { n, mean, std };
}

export interface ClassRow {
  cls: number;
  /** Per column: the metrics of each seed's run. */
  cells: Map<string, ScoreMetrics[]>;
  /** Wall time of each record (all its methods), per record group (`Section.groups`). */
  seconds: Map<string, number[]>;
  f1AllAnomalous: number[];
}

/**
 * Records that ran the same methods: one study's cells. Studies summarised together (e.g. a
 * grid and an extension that reruns its cells with another method) are timed apart.
 */
export interface RecordGroup { key: string; label: string }

export interface Section {
  key: string;
  dataset: DatasetName;
  preprocessing: string;
  protocol: string;
  columns: Column[];
  rows: ClassRow[];
  groups: RecordGroup[];
  /** Distinct cells (dataset, preprocessing, protocol, class, seed); records may repeat one. */
  cells: number;
}

const colKey = (c: { method: string; score: string }): string => `${c.method}/${c.score}`;

/** Groups records into sections (dataset, preprocessing, protocol) and rows (class). */
export function buildSections(records: CellRecord[]): Section[] {
  const sections = new Map<string, Section>();
  /** Per section: its methods (id → kind) in the order first seen, and its distinct cells. */
  const methods = new Map<string, Map<string, string>>();
  const cellIds = new Map<string, Set<string>>();
  for (const r of records) {
    const key = `${r.dataset}|${r.preprocessing}|${r.protocol}`;
    let s = sections.get(key);
    if (!s) {
      s = { key, dataset: r.dataset as DatasetName, preprocessing: r.preprocessing, protocol: r.protocol, columns: [], rows: [], groups: [], cells: 0 };
      sections.set(key, s); methods.set(key, new Map()); cellIds.set(key, new Set());
    }
    cellIds.get(key)!.add(`${r.normalClass}|${r.seed}`);
    let row = s.rows.find((x) => x.cls === r.normalClass);
    if (!row) { row = { cls: r.normalClass, cells: new Map(), seconds: new Map(), f1AllAnomalous: [] }; s.rows.push(row); }
    const group = r.methods.map((m) => m.method).join(' + ');
    if (!s.groups.some((g) => g.key === group)) s.groups.push({ key: group, label: group });
    if (!row.seconds.has(group)) row.seconds.set(group, []);
    row.seconds.get(group)!.push(r.timings.seconds);
    row.f1AllAnomalous.push(r.f1AllAnomalous);
    for (const m of r.methods) {
      if (!methods.get(key)!.has(m.method)) methods.get(key)!.set(m.method, m.kind);
      for (const [score, metrics] of Object.entries(m.scores) as [ScoreName, ScoreMetrics][]) {
        const k = colKey({ method: m.method, score });
        if (!row.cells.has(k)) row.cells.set(k, []);
        row.cells.get(k)!.push(metrics);
      }
    }
  }
  for (const s of sections.values()) {
    s.rows.sort((a, b) => a.cls - b.cls);
    s.cells = cellIds.get(s.key)!.size;
    const ofKind = (kind: string): string[] => [...methods.get(s.key)!].filter(([, k]) => k === kind).map(([id]) => id);
    s.columns = [];
    let extra = 0;
    COLUMN_ORDER.forEach((t, ti) => {
      const ids = ofKind(t.kind);
      ids.forEach((method, j) => {
        if (!s.rows.some((r) => r.cells.has(colKey({ method, score: t.score })))) return;
        const q = ids.length > 1 ? ` ${methodQualifier(method)}` : '';
        s.columns.push({ kind: t.kind, method, score: t.score, label: t.label(q), color: j === 0 ? COLORS[ti]! : MORE_COLORS[extra++ % MORE_COLORS.length]! });
      });
    });
    // Group labels name methods as the columns do.
    for (const g of s.groups) {
      g.label = g.key.split(' + ').map((id) => {
        const kind = methods.get(s.key)!.get(id)!;
        return ofKind(kind).length > 1 ? `${kind} ${methodQualifier(id)}` : kind;
      }).join(' + ');
    }
  }
  const order = (d: string): number => ['mnist', 'fashion-mnist', 'cifar10'].indexOf(d);
  return [...sections.values()].sort((a, b) => order(a.dataset) - order(b.dataset) || a.protocol.localeCompare(b.protocol) || a.preprocessing.localeCompare(b.preprocessing));
}

const DATASET_TITLE: Record<string, string> = { mnist: 'MNIST', 'fashion-mnist': 'Fashion-MNIST', cifar10: 'CIFAR-10' };
/** A preset protocol's title with its epochs (pretraining + training) for the dataset, from the presets themselves. */
function protocolTitle(protocol: string, dataset: string): string {
  if (protocol !== 'paper' && protocol !== 'short') return protocol === 'quick' ? 'quick demo protocol' : `protocol ${protocol}`;
  if (!isTrainDatasetName(dataset)) return `${protocol} protocol`;
  const d = presetDefaults(protocol, dataset);
  return `${protocol} protocol (${d.aeEpochs} + ${d.epochs} epochs)`;
}
/** A short label of a section for plot titles. */
const shortTitle = (s: Section): string => `${DATASET_TITLE[s.dataset] ?? s.dataset}, ${s.protocol}${s.preprocessing === 'none' ? ', no preprocessing' : ''}`;
export const sectionTitle = (s: Section): string => `${DATASET_TITLE[s.dataset] ?? s.dataset}, ${protocolTitle(s.protocol, s.dataset)}, ${s.preprocessing === 'none' ? 'no preprocessing (pixels / 255)' : 'GCN + min-max preprocessing'}`;

const pct = (v: number, d = 1): string => (100 * v).toFixed(d);
const aurocStat = (ms: ScoreMetrics[] | undefined): Stat | null => (ms && ms.length ? stat(ms.map((m) => 100 * m.auroc)) : null);
const fmtStat = (s: Stat | null): string => (s ? `${s.mean.toFixed(1)} ± ${s.std.toFixed(1)} (${s.n})` : '–');

/** Per class, the seed-mean AUROC (%) of a column; null where the class lacks it. */
function classMeans(s: Section, c: Column): (number | null)[] {
  return s.rows.map((r) => aurocStat(r.cells.get(colKey(c)))?.mean ?? null);
}

/** The mean over classes of a column's per-class means, and over how many classes; null where no class has it. */
function meanOverClasses(s: Section, c: Column): { mean: number; classes: number } | null {
  const m = classMeans(s, c).filter((x): x is number => x !== null);
  return m.length ? { mean: m.reduce((a, b) => a + b, 0) / m.length, classes: m.length } : null;
}

export interface PairedTest { label: string; n: number; meanDiff: number; wins: number; pValue: number }

function pairedTests(s: Section): PairedTest[] {
  const all = (kind: string, score: ScoreName): Column[] => s.columns.filter((c) => c.kind === kind && c.score === score);
  const base = all('one-class', 'distance')[0];
  if (!base) return [];
  const minusBase = (c: Column): [Column, string] => [c, `${c.label} − ${base.label}`];
  const pairs: [Column, string][] = [
    ...all('hybrid', 'distance').map(minusBase),
    ...all('hybrid', 'combined').map(minusBase),
    ...all('one-class', 'mahalanobis').filter((c) => c.method === base.method).map((c): [Column, string] => [c, `Mahalanobis − distance (${base.label})`]),
    ...all('soft-boundary', 'distance').map(minusBase),
  ];
  const mb = classMeans(s, base);
  const out: PairedTest[] = [];
  for (const [a, label] of pairs) {
    const ma = classMeans(s, a);
    const d: number[] = [];
    ma.forEach((x, i) => { if (x !== null && mb[i] !== null) d.push(x - mb[i]!); });
    if (d.length === 0) continue;
    const w = wilcoxonSignedRank(d);
    out.push({ label, n: d.length, meanDiff: d.reduce((p, q) => p + q, 0) / d.length, wins: d.filter((x) => x > 0).length, pValue: w.pValue });
  }
  return out;
}

interface PaperComparison { column: Column; classes: number; within1: number; within2: number; ourMean: number; paperMean: number }

/** Whether the paper's Table 1 has a figure for the column's kind and score. */
const hasPaperColumn = (c: Column): boolean => c.score === 'distance' && (c.kind === 'one-class' || c.kind === 'soft-boundary');

function paperComparison(s: Section): PaperComparison[] {
  const out: PaperComparison[] = [];
  for (const col of s.columns.filter(hasPaperColumn)) {
    let classes = 0, within1 = 0, within2 = 0, ours = 0, paper = 0;
    for (const r of s.rows) {
      const st = aurocStat(r.cells.get(colKey(col))), p = paperCell(s.dataset, col.kind, r.cls);
      if (!st || !p) continue;
      classes++; ours += st.mean; paper += p.mean;
      const z = Math.abs(st.mean - p.mean) / p.std;
      if (z <= 1) within1++;
      if (z <= 2) within2++;
    }
    if (classes > 0) out.push({ column: col, classes, within1, within2, ourMean: ours / classes, paperMean: paper / classes });
  }
  return out;
}

/** The threshold table's row of a column: means over every cell of the section. */
function thresholdRow(s: Section, c: Column): { n: number; ap: number; f1Tau: number | null; fpr: (Stat & { min: number; max: number }) | null; alpha: number | null; bestF1: number; allAnomalous: number } {
  const ms = s.rows.flatMap((r) => r.cells.get(colKey(c)) ?? []);
  const taus = ms.filter((m) => m.atTau).map((m) => m.atTau!);
  const all = s.rows.flatMap((r) => r.f1AllAnomalous);
  return {
    n: ms.length,
    ap: stat(ms.map((m) => m.averagePrecision)).mean,
    f1Tau: taus.length ? stat(taus.map((t) => t.f1)).mean : null,
    fpr: taus.length ? { ...stat(taus.map((t) => t.observedFpr)), min: Math.min(...taus.map((t) => t.observedFpr)), max: Math.max(...taus.map((t) => t.observedFpr)) } : null,
    alpha: taus[0]?.alpha ?? null,
    bestF1: stat(ms.map((m) => m.bestF1Oracle)).mean,
    allAnomalous: stat(all).mean,
  };
}

function markdown(sections: Section[], records: number, regenerate: string): string {
  const L: string[] = [];
  const cells = sections.reduce((a, s) => a + s.cells, 0);
  L.push('# Study summary', '');
  L.push(`${cells} cells${records === cells ? '' : ` (${records} cell records: studies that rerun a cell with other methods add a record of the same cell, from the same pretrained autoencoder)`} (one cell = one dataset, preprocessing, protocol, normal class and seed; every method of a cell starts from the same pretrained autoencoder and validation split). AUROC in %, mean ± std over seeds (n = number of seeds). Paper: ${PAPER_CITATION}; Δ = ours − paper in units of the paper's σ. Seed: ${SEED_CITATION}. Regenerate: \`${regenerate}\`.`, '');
  for (const s of sections) {
    L.push(`## ${sectionTitle(s)}`, '');
    const cols = s.columns;
    const hasPaper = paperCell(s.dataset, 'one-class', 0) !== null;
    const comparisons = paperComparison(s);
    const head = ['class'];
    for (const c of cols) {
      head.push(c.label);
      if (hasPaper && hasPaperColumn(c)) head.push(`paper ${c.kind}`, 'Δ/σ');
    }
    L.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
    for (const r of s.rows) {
      const name = CLASS_NAMES[s.dataset]?.[r.cls];
      const cellsOut = [name && name !== String(r.cls) ? `${r.cls} ${name}` : String(r.cls)];
      for (const c of cols) {
        const st = aurocStat(r.cells.get(colKey(c)));
        cellsOut.push(fmtStat(st));
        if (hasPaper && hasPaperColumn(c)) {
          const p = paperCell(s.dataset, c.kind, r.cls)!;
          cellsOut.push(`${p.mean.toFixed(1)} ± ${p.std.toFixed(1)}`, st ? `${((st.mean - p.mean) / p.std) >= 0 ? '+' : ''}${((st.mean - p.mean) / p.std).toFixed(1)}` : '–');
        }
      }
      L.push(`| ${cellsOut.join(' | ')} |`);
    }
    const means = ['**mean over classes**'];
    for (const c of cols) {
      const m = meanOverClasses(s, c);
      means.push(m ? `**${m.mean.toFixed(1)}** (${m.classes} classes)` : '–');
      if (hasPaper && hasPaperColumn(c)) {
        const pm = comparisons.find((p) => p.column === c);
        means.push(pm ? `${pm.paperMean.toFixed(1)}` : '–', '');
      }
    }
    L.push(`| ${means.join(' | ')} |`, '');
    for (const p of comparisons) {
      L.push(`- ${p.column.label} against the paper: ${p.within1} of ${p.classes} classes within ±1σ, ${p.within2} within ±2σ; mean ${p.ourMean.toFixed(1)} vs ${p.paperMean.toFixed(1)} on the same classes.`);
    }
    // The seed repository's figures are 30 + 30-epoch runs: beside another protocol they compare nothing.
    const seed = s.protocol === 'short' ? (SEED_SUMMARY as Record<string, { baseline: number; hybrid: number; adaptive: number }>)[s.dataset] : undefined;
    if (seed) {
      const meanOf = (c: Column | undefined): string => (c ? meanOverClasses(s, c)?.mean.toFixed(1) : undefined) ?? '–';
      const first = (kind: string, score: ScoreName): Column | undefined => cols.find((x) => x.kind === kind && x.score === score);
      const hybrids = [...new Set(cols.filter((c) => c.kind === 'hybrid').map((c) => c.method))];
      const hybridMeans = hybrids.length === 0 ? 'hybrid – (distance) / – (combined)' : hybrids.map((m) => {
        const of = (score: ScoreName): Column | undefined => cols.find((x) => x.method === m && x.score === score);
        return `hybrid${hybrids.length > 1 ? ` ${methodQualifier(m)}` : ''} ${meanOf(of('distance'))} (distance) / ${meanOf(of('combined'))} (combined)`;
      }).join(', ');
      L.push(`- Seed repository's means: baseline ${pct(seed.baseline, 2)}, hybrid ${pct(seed.hybrid, 2)}, adaptive ${pct(seed.adaptive, 2)}; here: one-class ${meanOf(first('one-class', 'distance'))}, ${hybridMeans}, adaptive ${meanOf(first('one-class', 'mahalanobis'))}.`);
    }
    const tests = pairedTests(s);
    if (tests.length) {
      L.push('', '| paired difference (per-class means) | classes | mean Δ AUROC | better in | Wilcoxon p (two-sided) |', '|---|---|---|---|---|');
      for (const t of tests) L.push(`| ${t.label} | ${t.n} | ${t.meanDiff >= 0 ? '+' : ''}${t.meanDiff.toFixed(2)} | ${t.wins} of ${t.n} | ${t.pValue < 0.001 ? t.pValue.toExponential(1) : t.pValue.toFixed(3)} |`);
    }
    L.push('', '| score | runs | AP | F1 at τ | observed FPR at τ (mean, range) | α | best F1 (oracle, uses test labels) | F1 of "all anomalous" |', '|---|---|---|---|---|---|---|---|');
    for (const c of cols) {
      const t = thresholdRow(s, c);
      L.push(`| ${c.label} | ${t.n} | ${pct(t.ap)} | ${t.f1Tau === null ? '–' : pct(t.f1Tau)} | ${t.fpr ? `${pct(t.fpr.mean)} (${pct(t.fpr.min)}–${pct(t.fpr.max)})` : '–'} | ${t.alpha ?? '–'} | ${pct(t.bestF1)} | ${pct(t.allAnomalous)} |`);
    }
    L.push('');
    for (const g of s.groups) {
      const secs = s.rows.flatMap((r) => r.seconds.get(g.key) ?? []);
      const what = s.groups.length > 1 ? `Wall time per cell of ${g.label} (pretraining included)` : 'Wall time per cell (all methods)';
      L.push(`${what}: mean ${stat(secs).mean.toFixed(0)} s, total ${(secs.reduce((a, b) => a + b, 0) / 3600).toFixed(2)} h over ${secs.length} cells.`);
    }
    L.push('');
  }
  return `${L.join('\n')}\n`;
}

const CSV_HEAD = ['dataset', 'preprocessing', 'protocol', 'class', 'method', 'method_id', 'score', 'n', 'auroc_mean', 'auroc_std', 'ap_mean', 'f1_at_tau_mean', 'observed_fpr_mean', 'alpha', 'best_f1_oracle_mean', 'f1_all_anomalous', 'paper_mean', 'paper_std', 'delta_in_paper_sigma', 'seconds_per_cell_mean'];

/** The wall times of the records that hold the column's method. */
const secondsOf = (s: Section, r: ClassRow, c: Column): number[] =>
  s.groups.filter((g) => g.key.split(' + ').includes(c.method)).flatMap((g) => r.seconds.get(g.key) ?? []);

function csv(sections: Section[]): string {
  const rows = [CSV_HEAD.join(',')];
  const num = (v: number | null | undefined, d = 4): string => (v === null || v === undefined || !Number.isFinite(v) ? '' : v.toFixed(d));
  for (const s of sections) {
    for (const r of s.rows) {
      for (const c of s.columns) {
        const ms = r.cells.get(colKey(c));
        if (!ms?.length) continue;
        const au = stat(ms.map((m) => 100 * m.auroc));
        const taus = ms.filter((m) => m.atTau).map((m) => m.atTau!);
        const p = c.score === 'distance' ? paperCell(s.dataset, c.kind, r.cls) : null;
        rows.push([
          s.dataset, s.preprocessing, s.protocol, r.cls, c.kind, c.method, c.score, au.n, num(au.mean, 3), num(au.std, 3),
          num(100 * stat(ms.map((m) => m.averagePrecision)).mean, 3),
          taus.length ? num(100 * stat(taus.map((t) => t.f1)).mean, 3) : '', taus.length ? num(100 * stat(taus.map((t) => t.observedFpr)).mean, 3) : '',
          taus[0]?.alpha ?? '', num(100 * stat(ms.map((m) => m.bestF1Oracle)).mean, 3), num(100 * stat(r.f1AllAnomalous).mean, 3),
          p ? p.mean : '', p ? p.std : '', p ? num((au.mean - p.mean) / p.std, 2) : '', num(stat(secondsOf(s, r, c)).mean, 1),
        ].join(','));
      }
    }
  }
  return `${rows.join('\n')}\n`;
}

/** Per-class AUROC bars (mean over seeds) with ±std error bars; the paper's values as ticks. */
export function aurocBarsSvg(s: Section, id: string): string {
  const cols = s.columns.filter((c) => c.score !== 'reconstruction');
  const vals = s.rows.flatMap((r) => cols.map((c) => aurocStat(r.cells.get(colKey(c)))).filter((x): x is Stat => x !== null).map((x) => x.mean - x.std));
  const lo = Math.max(0, Math.floor(Math.min(...vals, ...s.rows.map((r) => paperCell(s.dataset, 'one-class', r.cls)?.mean ?? 100)) / 10) * 10 - 10);
  const f = new Frame({ id, title: `AUROC per normal class (mean ± std over seeds): ${shortTitle(s)}`, x: { label: 'normal class', min: -0.5, max: 9.5, exact: true, integer: true, ticks: 10 }, y: { label: 'test AUROC (%)', min: lo, max: 100, exact: true }, width: 900, height: 420, legendAbove: true, legendRows: 2 });
  const w = 0.8 / cols.length;
  s.rows.forEach((r) => {
    cols.forEach((c, k) => {
      const st = aurocStat(r.cells.get(colKey(c)));
      if (!st) return;
      const x0 = r.cls - 0.4 + k * w;
      f.bar(x0, x0 + w * 0.9, st.mean, c.color, lo, `${c.label} class ${r.cls}`);
      if (st.n > 1) f.errorBar(x0 + w * 0.45, st.mean - st.std, st.mean + st.std);
      const p = hasPaperColumn(c) ? paperCell(s.dataset, c.kind, r.cls) : null;
      if (p) f.tick(x0, x0 + w * 0.9, p.mean, '#000');
    });
  });
  const items = cols.map((c) => ({ label: c.label, color: c.color, kind: 'box' as const }));
  if (paperCell(s.dataset, 'one-class', 0)) items.push({ label: 'paper (Table 1)', color: '#000', kind: 'line' as const } as never);
  f.legend(items, 'above');
  return f.render();
}

/** Mean ROC curve (TPR averaged at each FPR of the grid over every cell) per column. */
export function rocSvg(s: Section, id: string): string {
  const f = new Frame({ id, title: `Mean ROC curves: ${shortTitle(s)}`, x: { label: 'false-positive rate', min: 0, max: 1, exact: true }, y: { label: 'true-positive rate', min: 0, max: 1, exact: true }, width: 560, height: 460 });
  const grid = Array.from({ length: ROC_GRID }, (_, g) => g / (ROC_GRID - 1));
  const items: { label: string; color: string; kind: 'line' }[] = [];
  f.line([0, 1], [0, 1], { color: '#999', width: 1, dash: '4 4' });
  for (const c of s.columns) {
    const curves = s.rows.flatMap((r) => (r.cells.get(colKey(c)) ?? []).map((m) => m.roc));
    if (!curves.length) continue;
    const mean = grid.map((_, g) => curves.reduce((a, cv) => a + cv[g]!, 0) / curves.length);
    const color = c.color;
    f.line(grid, mean, { color, name: c.label });
    items.push({ label: `${c.label} (${curves.length} runs)`, color, kind: 'line' });
  }
  f.legend(items, 'bottom-right');
  return f.render();
}

/** Wall time per cell (mean over seeds, all methods of the record), per class; one bar per record group. */
export function timeSvg(s: Section, id: string): string {
  const means = s.rows.map((r) => s.groups.map((g) => (r.seconds.get(g.key)?.length ? stat(r.seconds.get(g.key)!) : null)));
  const max = Math.max(...means.flat().map((m) => (m ? m.mean + m.std : 0)), 1);
  const many = s.groups.length > 1;
  const f = new Frame({ id, title: `Wall time per cell: ${shortTitle(s)}`, x: { label: 'normal class', min: -0.5, max: 9.5, exact: true, integer: true, ticks: 10 }, y: { label: 'seconds (all methods of a cell)', min: 0, max: max * 1.1 }, width: 560, height: many ? 340 : 300, ...(many ? { legendAbove: true, legendRows: s.groups.length } : {}) });
  const grays = ['#7f7f7f', '#c7c7c7', '#525252', '#a5a5a5'];
  const w = 0.7 / s.groups.length;
  s.rows.forEach((r, i) => {
    s.groups.forEach((_, k) => {
      const m = means[i]![k];
      if (!m) return;
      const x0 = r.cls - 0.35 + k * w;
      f.bar(x0, x0 + w, m.mean, grays[k % grays.length]!, 0);
      if (m.n > 1) f.errorBar(x0 + w / 2, m.mean - m.std, m.mean + m.std);
    });
  });
  if (many) f.legend(s.groups.map((g, k) => ({ label: g.label, color: grays[k % grays.length]!, kind: 'box' as const })), 'above');
  return f.render();
}

/** Minimal markdown (headings, paragraphs, lists, pipe tables, **bold**, `code`) to HTML: the page shows the same text as summary.md. */
export function markdownToHtml(md: string): string {
  const inline = (t: string): string => esc(t).replace(/\*\*(.+?)\*\*/g, '<b>$1</b>').replace(/`(.+?)`/g, '<code>$1</code>');
  const out: string[] = [];
  const lines = md.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith('|')) {
      const rows: string[][] = [];
      while (i < lines.length && lines[i]!.startsWith('|')) { rows.push(lines[i]!.slice(1, -1).split('|').map((c) => c.trim())); i++; }
      i--;
      const [head, , ...body] = rows;
      out.push(`<table><thead><tr>${head!.map((c) => `<th>${inline(c)}</th>`).join('')}</tr></thead><tbody>${body.map((r) => `<tr>${r.map((c) => `<td>${inline(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`);
    } else if (l.startsWith('## ')) out.push(`<h2>${inline(l.slice(3))}</h2>`);
    else if (l.startsWith('# ')) out.push(`<h1>${inline(l.slice(2))}</h1>`);
    else if (l.startsWith('- ')) out.push(`<li>${inline(l.slice(2))}</li>`);
    else if (l.trim()) out.push(`<p>${inline(l)}</p>`);
  }
  return out.join('\n');
}

function html(md: string, sections: Section[]): string {
  // The section's plots follow its text: split the rendered page at each section heading.
  const parts = markdownToHtml(md).split(/(?=<h2>)/);
  const body = parts.map((p, i) => {
    const s = sections[i - 1];
    if (!s) return p;
    const id = s.key.replace(/[^a-z0-9]+/gi, '-');
    return `${p}<div class="plots">${aurocBarsSvg(s, `bars-${id}`)}${rocSvg(s, `roc-${id}`)}${timeSvg(s, `time-${id}`)}</div>`;
  }).join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>svdd-ts study summary</title><style>
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1250px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.8em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.plots svg{margin:.4em .4em .4em 0;vertical-align:top}code{background:#f3f3f3;padding:0 3px}
</style></head><body>${body}</body></html>\n`;
}

export interface SummaryFiles { cells: number; records: number; files: string[] }

export interface RenderedSummary { markdown: string; csv: string; html: string; sections: Section[] }

/**
 * The summary of cell records. `regenerate` is the command line that makes it, printed in its
 * header (default: `svdd study summarize` over `results/short` and `results/table1`).
 */
export function renderSummary(records: CellRecord[], regenerate = 'node bin/svdd.js study summarize results/short results/table1 --out results'): RenderedSummary {
  const sections = buildSections(records);
  const md = markdown(sections, records.length, regenerate);
  return { markdown: md, csv: csv(sections), html: html(md, sections), sections };
}

/**
 * Reads the records of every study directory and writes the summary files into `out`. `names`
 * are the directories and output as the user gave them, for the header's command line.
 */
export function writeSummary(dirs: string[], out: string, names?: { dirs: string[]; out: string }): SummaryFiles {
  const records = dirs.flatMap((d) => readRecords(d));
  const regenerate = names ? `node bin/svdd.js study summarize ${names.dirs.join(' ')} --out ${names.out}` : undefined;
  const r = renderSummary(records, regenerate);
  mkdirSync(out, { recursive: true });
  const files = [join(out, 'summary.md'), join(out, 'summary.csv'), join(out, 'summary.html')];
  writeFileAtomic(files[0]!, r.markdown);
  writeFileAtomic(files[1]!, r.csv);
  writeFileAtomic(files[2]!, r.html);
  return { cells: r.sections.reduce((a, s) => a + s.cells, 0), records: records.length, files };
}
