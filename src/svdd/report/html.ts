/**
 * The report page: every section of it as HTML, with the plots drawn inline and returned as
 * standalone SVGs; built from a run directory's contents, with no file access.
 */
import { CLASS_NAMES, type DatasetName } from '../data/datasets.ts';
import { auroc, quantileLinear } from '../metrics.ts';
import type { RunResults } from '../run.ts';
import { esc } from './svg.ts';
import { CSS } from './css.ts';
import { isNum, num, pct } from './format.ts';
import { EXPLAIN_FIGURE_FILE, EXPLAIN_FIGURE_NORMAL_FILE, GRADCAM_FILE, GRADCAM_NORMAL_FILE, type LatentProjection, type RunDir } from './load.ts';
import { histogramPlot, lossPlot, pcaPlot, prPlot, rocPlot, series, type LogAxis, type Plot, type Series } from './plots.ts';

/** Section headings of the page, in order (tests and readers rely on them). */
export const REPORT_SECTIONS = [
  'Summary', 'Detection metrics', 'Label-free thresholds', 'ROC and precision-recall curves',
  'Score distributions', 'Training curves', 'Latent space (PCA)', 'Most normal and most anomalous test images',
  'Grad-CAM of the top anomalies', 'Per-class detection', 'Configuration', 'Log',
] as const;

export interface ReportOptions {
  /** Log-scale x in the score histograms: 'auto' when positive scores span orders of magnitude. */
  logX?: LogAxis;
}

export interface RenderedReport {
  html: string;
  /** Standalone SVG files, by file name (under plots/). */
  plots: { name: string; svg: string }[];
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
