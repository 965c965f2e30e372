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
import { CLASS_NAMES, type DatasetName } from '../data/datasets.ts';
import { esc, Frame } from '../report/svg.ts';
import type { CellRecord, ScoreMetrics, ScoreName } from './records.ts';
import { ROC_GRID } from './records.ts';
import { PAPER_CITATION, SEED_CITATION, SEED_SUMMARY, paperCell } from './reference.ts';
import { readRecords } from './runner.ts';
import { wilcoxonSignedRank } from './wilcoxon.ts';

/** A column of the tables: one score of one method kind. */
export interface Column { kind: string; score: ScoreName; label: string }

const COLUMN_ORDER: Column[] = [
  { kind: 'one-class', score: 'distance', label: 'one-class' },
  { kind: 'soft-boundary', score: 'distance', label: 'soft-boundary' },
  { kind: 'hybrid', score: 'distance', label: 'hybrid (distance)' },
  { kind: 'hybrid', score: 'combined', label: 'hybrid (combined)' },
  { kind: 'hybrid', score: 'reconstruction', label: 'hybrid (reconstruction)' },
  { kind: 'one-class', score: 'mahalanobis', label: 'adaptive (one-class, Mahalanobis)' },
  { kind: 'soft-boundary', score: 'mahalanobis', label: 'soft-boundary (Mahalanobis)' },
  { kind: 'hybrid', score: 'mahalanobis', label: 'hybrid (Mahalanobis)' },
];
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#17becf', '#bcbd22', '#d62728', '#9467bd', '#8c564b'];

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
  seconds: number[];
  f1AllAnomalous: number[];
}

export interface Section {
  key: string;
  dataset: DatasetName;
  preprocessing: string;
  protocol: string;
  columns: Column[];
  rows: ClassRow[];
}

const colKey = (c: Column): string => `${c.kind}/${c.score}`;

/** Groups records into sections (dataset, preprocessing, protocol) and rows (class). */
export function buildSections(records: CellRecord[]): Section[] {
  const sections = new Map<string, Section>();
  for (const r of records) {
    const key = `${r.dataset}|${r.preprocessing}|${r.protocol}`;
    let s = sections.get(key);
    if (!s) { s = { key, dataset: r.dataset as DatasetName, preprocessing: r.preprocessing, protocol: r.protocol, columns: [], rows: [] }; sections.set(key, s); }
    let row = s.rows.find((x) => x.cls === r.normalClass);
    if (!row) { row = { cls: r.normalClass, cells: new Map(), seconds: [], f1AllAnomalous: [] }; s.rows.push(row); }
    row.seconds.push(r.timings.seconds);
    row.f1AllAnomalous.push(r.f1AllAnomalous);
    for (const m of r.methods) {
      for (const [score, metrics] of Object.entries(m.scores) as [ScoreName, ScoreMetrics][]) {
        const k = `${m.kind}/${score}`;
        if (!row.cells.has(k)) row.cells.set(k, []);
        row.cells.get(k)!.push(metrics);
      }
    }
  }
  for (const s of sections.values()) {
    s.rows.sort((a, b) => a.cls - b.cls);
    s.columns = COLUMN_ORDER.filter((c) => s.rows.some((r) => r.cells.has(colKey(c))));
  }
  const order = (d: string): number => ['mnist', 'fashion-mnist', 'cifar10'].indexOf(d);
  return [...sections.values()].sort((a, b) => order(a.dataset) - order(b.dataset) || a.protocol.localeCompare(b.protocol) || a.preprocessing.localeCompare(b.preprocessing));
}

const DATASET_TITLE: Record<string, string> = { mnist: 'MNIST', 'fashion-mnist': 'Fashion-MNIST', cifar10: 'CIFAR-10' };
const PROTOCOL_TITLE: Record<string, string> = { paper: 'paper protocol', short: 'short protocol (30 + 30 epochs)', quick: 'quick demo protocol' };
/** A short label of a section for plot titles. */
const shortTitle = (s: Section): string => `${DATASET_TITLE[s.dataset] ?? s.dataset}, ${s.protocol}${s.preprocessing === 'none' ? ', no preprocessing' : ''}`;
export const sectionTitle = (s: Section): string => `${DATASET_TITLE[s.dataset] ?? s.dataset}, ${PROTOCOL_TITLE[s.protocol] ?? `protocol ${s.protocol}`}, ${s.preprocessing === 'none' ? 'no preprocessing (pixels / 255)' : 'GCN + min-max preprocessing'}`;

const pct = (v: number, d = 1): string => (100 * v).toFixed(d);
const aurocStat = (ms: ScoreMetrics[] | undefined): Stat | null => (ms && ms.length ? stat(ms.map((m) => 100 * m.auroc)) : null);
const fmtStat = (s: Stat | null): string => (s ? `${s.mean.toFixed(1)} ± ${s.std.toFixed(1)} (${s.n})` : '–');

/** Per class, the seed-mean AUROC (%) of a column; null where the class lacks it. */
function classMeans(s: Section, c: Column): (number | null)[] {
  return s.rows.map((r) => aurocStat(r.cells.get(colKey(c)))?.mean ?? null);
}

export interface PairedTest { label: string; n: number; meanDiff: number; wins: number; pValue: number }

function pairedTests(s: Section): PairedTest[] {
  const find = (kind: string, score: ScoreName): Column | undefined => s.columns.find((c) => c.kind === kind && c.score === score);
  const base = find('one-class', 'distance');
  if (!base) return [];
  const pairs: [Column | undefined, Column, string][] = [
    [find('hybrid', 'distance'), base, 'hybrid (distance) − one-class'],
    [find('hybrid', 'combined'), base, 'hybrid (combined) − one-class'],
    [find('one-class', 'mahalanobis'), base, 'Mahalanobis − distance (one-class)'],
    [find('soft-boundary', 'distance'), base, 'soft-boundary − one-class'],
  ];
  const out: PairedTest[] = [];
  for (const [a, b, label] of pairs) {
    if (!a) continue;
    const ma = classMeans(s, a), mb = classMeans(s, b);
    const d: number[] = [];
    ma.forEach((x, i) => { if (x !== null && mb[i] !== null) d.push(x - mb[i]!); });
    if (d.length === 0) continue;
    const w = wilcoxonSignedRank(d);
    out.push({ label, n: d.length, meanDiff: d.reduce((p, q) => p + q, 0) / d.length, wins: d.filter((x) => x > 0).length, pValue: w.pValue });
  }
  return out;
}

interface PaperComparison { kind: string; classes: number; within1: number; within2: number; ourMean: number; paperMean: number }

function paperComparison(s: Section): PaperComparison[] {
  const out: PaperComparison[] = [];
  for (const kind of ['one-class', 'soft-boundary']) {
    const col = s.columns.find((c) => c.kind === kind && c.score === 'distance');
    if (!col) continue;
    let classes = 0, within1 = 0, within2 = 0, ours = 0, paper = 0;
    for (const r of s.rows) {
      const st = aurocStat(r.cells.get(colKey(col))), p = paperCell(s.dataset, kind, r.cls);
      if (!st || !p) continue;
      classes++; ours += st.mean; paper += p.mean;
      const z = Math.abs(st.mean - p.mean) / p.std;
      if (z <= 1) within1++;
      if (z <= 2) within2++;
    }
    if (classes > 0) out.push({ kind, classes, within1, within2, ourMean: ours / classes, paperMean: paper / classes });
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

function markdown(sections: Section[], cells: number): string {
  const L: string[] = [];
  L.push('# Study summary', '');
  L.push(`${cells} cells (one cell = one dataset, preprocessing, protocol, normal class and seed; every method of a cell starts from the same pretrained autoencoder and validation split). AUROC in %, mean ± std over seeds (n = number of seeds). Paper: ${PAPER_CITATION}; Δ = ours − paper in units of the paper's σ. Seed: ${SEED_CITATION}. Regenerate: \`node bin/svdd.js study summarize results/short results/table1 --out results\`.`, '');
  for (const s of sections) {
    L.push(`## ${sectionTitle(s)}`, '');
    const cols = s.columns;
    const hasPaper = paperCell(s.dataset, 'one-class', 0) !== null;
    const head = ['class'];
    for (const c of cols) {
      head.push(c.label);
      if (hasPaper && c.score === 'distance' && (c.kind === 'one-class' || c.kind === 'soft-boundary')) head.push(`paper ${c.kind}`, 'Δ/σ');
    }
    L.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
    for (const r of s.rows) {
      const name = CLASS_NAMES[s.dataset]?.[r.cls];
      const cellsOut = [name && name !== String(r.cls) ? `${r.cls} ${name}` : String(r.cls)];
      for (const c of cols) {
        const st = aurocStat(r.cells.get(colKey(c)));
        cellsOut.push(fmtStat(st));
        if (hasPaper && c.score === 'distance' && (c.kind === 'one-class' || c.kind === 'soft-boundary')) {
          const p = paperCell(s.dataset, c.kind, r.cls)!;
          cellsOut.push(`${p.mean.toFixed(1)} ± ${p.std.toFixed(1)}`, st ? `${((st.mean - p.mean) / p.std) >= 0 ? '+' : ''}${((st.mean - p.mean) / p.std).toFixed(1)}` : '–');
        }
      }
      L.push(`| ${cellsOut.join(' | ')} |`);
    }
    const means = ['**mean over classes**'];
    for (const c of cols) {
      const m = classMeans(s, c).filter((x): x is number => x !== null);
      means.push(m.length ? `**${(m.reduce((a, b) => a + b, 0) / m.length).toFixed(1)}** (${m.length} classes)` : '–');
      if (hasPaper && c.score === 'distance' && (c.kind === 'one-class' || c.kind === 'soft-boundary')) {
        const pm = paperComparison(s).find((p) => p.kind === c.kind);
        means.push(pm ? `${pm.paperMean.toFixed(1)}` : '–', '');
      }
    }
    L.push(`| ${means.join(' | ')} |`, '');
    for (const p of paperComparison(s)) {
      L.push(`- ${p.kind} against the paper: ${p.within1} of ${p.classes} classes within ±1σ, ${p.within2} within ±2σ; mean ${p.ourMean.toFixed(1)} vs ${p.paperMean.toFixed(1)} on the same classes.`);
    }
    const seed = (SEED_SUMMARY as Record<string, { baseline: number; hybrid: number; adaptive: number }>)[s.dataset];
    if (seed) {
      const meanOf = (kind: string, score: ScoreName): string => {
        const c = cols.find((x) => x.kind === kind && x.score === score);
        const m = c ? classMeans(s, c).filter((x): x is number => x !== null) : [];
        return m.length ? (m.reduce((a, b) => a + b, 0) / m.length).toFixed(1) : '–';
      };
      L.push(`- Seed repository's means: baseline ${pct(seed.baseline, 2)}, hybrid ${pct(seed.hybrid, 2)}, adaptive ${pct(seed.adaptive, 2)}; here: one-class ${meanOf('one-class', 'distance')}, hybrid ${meanOf('hybrid', 'distance')} (distance) / ${meanOf('hybrid', 'combined')} (combined), adaptive ${meanOf('one-class', 'mahalanobis')}.`);
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
    const secs = s.rows.flatMap((r) => r.seconds);
    L.push('', `Wall time per cell (all methods): mean ${stat(secs).mean.toFixed(0)} s, total ${(secs.reduce((a, b) => a + b, 0) / 3600).toFixed(2)} h over ${secs.length} cells.`, '');
  }
  return `${L.join('\n')}\n`;
}

const CSV_HEAD = ['dataset', 'preprocessing', 'protocol', 'class', 'method', 'score', 'n', 'auroc_mean', 'auroc_std', 'ap_mean', 'f1_at_tau_mean', 'observed_fpr_mean', 'alpha', 'best_f1_oracle_mean', 'f1_all_anomalous', 'paper_mean', 'paper_std', 'delta_in_paper_sigma', 'seconds_per_cell_mean'];

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
          s.dataset, s.preprocessing, s.protocol, r.cls, c.kind, c.score, au.n, num(au.mean, 3), num(au.std, 3),
          num(100 * stat(ms.map((m) => m.averagePrecision)).mean, 3),
          taus.length ? num(100 * stat(taus.map((t) => t.f1)).mean, 3) : '', taus.length ? num(100 * stat(taus.map((t) => t.observedFpr)).mean, 3) : '',
          taus[0]?.alpha ?? '', num(100 * stat(ms.map((m) => m.bestF1Oracle)).mean, 3), num(100 * stat(r.f1AllAnomalous).mean, 3),
          p ? p.mean : '', p ? p.std : '', p ? num((au.mean - p.mean) / p.std, 2) : '', num(stat(r.seconds).mean, 1),
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
      f.bar(x0, x0 + w * 0.9, st.mean, COLORS[COLUMN_ORDER.findIndex((x) => colKey(x) === colKey(c))]!, lo, `${c.label} class ${r.cls}`);
      if (st.n > 1) f.errorBar(x0 + w * 0.45, st.mean - st.std, st.mean + st.std);
      const p = c.score === 'distance' ? paperCell(s.dataset, c.kind, r.cls) : null;
      if (p) f.tick(x0, x0 + w * 0.9, p.mean, '#000');
    });
  });
  const items = cols.map((c) => ({ label: c.label, color: COLORS[COLUMN_ORDER.findIndex((x) => colKey(x) === colKey(c))]!, kind: 'box' as const }));
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
    const color = COLORS[COLUMN_ORDER.findIndex((x) => colKey(x) === colKey(c))]!;
    f.line(grid, mean, { color, name: c.label });
    items.push({ label: `${c.label} (${curves.length} runs)`, color, kind: 'line' });
  }
  f.legend(items, 'bottom-right');
  return f.render();
}

/** Wall time per cell (mean over seeds, all methods), per class. */
export function timeSvg(s: Section, id: string): string {
  const means = s.rows.map((r) => stat(r.seconds));
  const max = Math.max(...means.map((m) => m.mean + m.std), 1);
  const f = new Frame({ id, title: `Wall time per cell: ${shortTitle(s)}`, x: { label: 'normal class', min: -0.5, max: 9.5, exact: true, integer: true, ticks: 10 }, y: { label: 'seconds (all methods of a cell)', min: 0, max: max * 1.1 }, width: 560, height: 300 });
  s.rows.forEach((r, i) => {
    f.bar(r.cls - 0.35, r.cls + 0.35, means[i]!.mean, '#7f7f7f', 0);
    if (means[i]!.n > 1) f.errorBar(r.cls, means[i]!.mean - means[i]!.std, means[i]!.mean + means[i]!.std);
  });
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

export interface SummaryFiles { cells: number; files: string[] }

/** Reads the records of every study directory and writes the summary files into `out`. */
export function writeSummary(dirs: string[], out: string): SummaryFiles {
  const records = dirs.flatMap((d) => readRecords(d));
  const sections = buildSections(records);
  mkdirSync(out, { recursive: true });
  const md = markdown(sections, records.length);
  const files = [join(out, 'summary.md'), join(out, 'summary.csv'), join(out, 'summary.html')];
  writeFileAtomic(files[0]!, md);
  writeFileAtomic(files[1]!, csv(sections));
  writeFileAtomic(files[2]!, html(md, sections));
  return { cells: records.length, files };
}
