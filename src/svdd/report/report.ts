/**
 * `svdd report`: one self-contained HTML page for a run directory (metrics, thresholds, curves,
 * score histograms, training curves, a PCA of the test latent codes, image grids, Grad-CAM) plus
 * every plot as a standalone SVG under plots/. Nothing in the page refers to the network or to
 * other files, so it can be mailed or archived on its own.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../tensor/io/atomic.ts';
import { removeDeadTemporaries } from '../run-dir.ts';
import { latentProjection, readRunDir, type LatentOptions, type LatentProjection } from './load.ts';
import { renderReport, type ReportOptions } from './html.ts';

export {
  EXPLAIN_FIGURE_FILE, EXPLAIN_FIGURE_NORMAL_FILE, EXPLAIN_INDEX_FILE, GRADCAM_FILE, GRADCAM_NORMAL_FILE,
  latentProjection, readRunDir, type LatentOptions, type LatentProjection, type RunConfigJson, type RunDir,
} from './load.ts';
export { REPORT_SECTIONS, renderReport, type RenderedReport, type ReportOptions } from './html.ts';
export { wantsLogAxis, type LogAxis } from './plots.ts';

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
