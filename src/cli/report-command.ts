/** `svdd report DIR`: writes DIR/report.html and DIR/plots/*.svg for a finished run. */
import { writeReport, type LogAxis } from '../svdd/report/report.ts';
import { BACKEND_NAMES } from '../tensor/backends.ts';
import { defineCommand, invoke, processIo, type CliIo, type FlagTable, type Parsed } from './command.ts';
import { progressLine } from './progress.ts';

const REPORT_FLAGS = {
  'data-dir': { kind: 'string', arg: 'DIR', help: 'dataset location for the latent codes (default: the run\'s, then the usual place)' },
  backend: { kind: { choices: BACKEND_NAMES }, arg: 'NAME', default: 'auto', help: 'compute backend for encoding the test set (default auto)' },
  'log-x': { kind: { choices: ['auto', 'on', 'off'] as const satisfies readonly LogAxis[] }, arg: 'MODE', default: 'auto', help: 'log-scale score histograms: auto (when scores span orders of magnitude), on, off' },
  'no-latent': { kind: 'boolean', help: 'skip the latent PCA (needs neither the model weights nor the dataset)' },
} as const satisfies FlagTable;

export const report = defineCommand({
  name: 'report',
  synopsis: 'svdd report DIR',
  summary: 'DIR/report.html with plots',
  usage: `svdd report DIR [--data-dir DIR] [--backend ${BACKEND_NAMES.join('|')}] [--log-x auto|on|off] [--no-latent]`,
  description: `  writes DIR/report.html (one self-contained page: metrics, thresholds, ROC/PR curves, score
  histograms, loss curves, latent PCA, image grids, Grad-CAM when DIR/explain has it) and every
  plot as a standalone SVG in DIR/plots/`,
  flags: REPORT_FLAGS,
  positionals: { min: 1, max: 1, what: 'one run directory' },
  helpColumn: 19,
  run: (p, io) => writeRunReport(p, io),
});

/** `svdd report` with argv, output on this process's stdout and stderr (`stderr` gets the progress line when it is a terminal). */
export async function reportCommand(argv: string[], stderr: NodeJS.WriteStream = process.stderr): Promise<void> {
  await invoke(report, argv, { ...processIo, stderrStream: stderr });
}

async function writeRunReport({ values, positionals }: Parsed<typeof REPORT_FLAGS>, io: CliIo): Promise<void> {
  const progress = progressLine(io.stderrStream, 'report');
  let out;
  try {
    out = await writeReport(positionals[0]!, { dataDir: values['data-dir'], backend: values.backend, logX: values['log-x'], latent: !values['no-latent'], onProgress: progress.onProgress });
  } finally {
    progress.clear();
  }
  if (out.latentError) io.err(`svdd report: no latent PCA: ${out.latentError}\n`);
  io.out(`${out.html}\n${out.plots.length} plots in ${out.plots.length ? out.plots[0]!.replace(/[^/\\]+$/, '') : '(none)'}\n`);
}
