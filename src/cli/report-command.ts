/** `svdd report DIR`: writes DIR/report.html and DIR/plots/*.svg for a finished run. */
import { parseArgs } from 'node:util';
import { UsageError } from '../svdd/run.ts';
import { writeReport, type LogAxis } from '../svdd/report/report.ts';
import { BACKEND_NAMES } from '../tensor/backends.ts';
import { parseChoice } from './args.ts';
import { progressLine } from './progress.ts';

export const REPORT_HELP = `svdd report DIR [--data-dir DIR] [--backend ${BACKEND_NAMES.join('|')}] [--log-x auto|on|off] [--no-latent]
  writes DIR/report.html (one self-contained page: metrics, thresholds, ROC/PR curves, score
  histograms, loss curves, latent PCA, image grids, Grad-CAM when DIR/explain has it) and every
  plot as a standalone SVG in DIR/plots/
  --data-dir DIR   dataset location for the latent codes (default: the run's, then the usual place)
  --backend NAME   compute backend for encoding the test set (default auto)
  --log-x MODE     log-scale score histograms: auto (when scores span orders of magnitude), on, off
  --no-latent      skip the latent PCA (needs neither the model weights nor the dataset)
`;

/** `stderr` gets the progress line when it is a terminal. */
export async function reportCommand(argv: string[], stderr: NodeJS.WriteStream = process.stderr): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: { 'data-dir': { type: 'string' }, backend: { type: 'string' }, 'log-x': { type: 'string' }, 'no-latent': { type: 'boolean' }, help: { type: 'boolean' } },
    });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
  const { values, positionals } = parsed;
  if (values.help) { process.stdout.write(REPORT_HELP); return; }
  if (positionals.length !== 1) throw new UsageError(`svdd report: expected one run directory, got ${positionals.length}\n${REPORT_HELP}`);
  const logX = values['log-x'] === undefined ? 'auto' : parseChoice<LogAxis>('--log-x', values['log-x'], ['auto', 'on', 'off']);
  const backend = values.backend === undefined ? 'auto' : parseChoice('--backend', values.backend, BACKEND_NAMES);
  const progress = progressLine(stderr, 'report');
  let out;
  try {
    out = await writeReport(positionals[0]!, { dataDir: values['data-dir'], backend, logX, latent: !values['no-latent'], onProgress: progress.onProgress });
  } finally {
    progress.clear();
  }
  if (out.latentError) process.stderr.write(`svdd report: no latent PCA: ${out.latentError}\n`);
  process.stdout.write(`${out.html}\n${out.plots.length} plots in ${out.plots.length ? out.plots[0]!.replace(/[^/\\]+$/, '') : '(none)'}\n`);
}
