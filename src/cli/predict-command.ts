/** `svdd predict --model DIR --input FILE…`: scores new images and decides normal / anomalous. */
import { BACKEND_NAMES } from '../tensor/backends.ts';
import { engine } from '../tensor/engine.ts';
import { backendFlag, threadsFlag } from './common-flags.ts';
import { ModelError, loadModel } from '../svdd/model.ts';
import { describeThreshold, predictFiles, type PredictionReport } from '../svdd/predict.ts';
import { DataError } from '../svdd/data/errors.ts';
import { UsageError } from './usage-error.ts';
import { defineCommand, invoke, processIo, type CliIo, type FlagTable, type Parsed } from './command.ts';
import { progressLine } from './progress.ts';

const DESCRIPTION = `  scores images with the model saved in DIR and decides normal / anomalous with the threshold
  saved with it (anomalous when score > τ; the quantile threshold is preferred over χ²)`;

const NOTES = `  a file that cannot be read (missing, malformed, wrong size) gets one line on stderr and is
  skipped; the others are scored, and the command then exits with status 2. Only regular files
  are read; PNGs of more than SVDD_MAX_PNG_PIXELS pixels (default 4096×4096) and inputs of more
  than SVDD_MAX_INPUT_BYTES bytes (default 1 GiB) are refused.

  images are preprocessed as the training data: pixel/255, global contrast normalisation (L1)
  per image, then min-max scaling with the model's saved constants.`;

const PREDICT_FLAGS = {
  model: { kind: 'string', arg: 'DIR', required: true, help: 'the model directory (a finished svdd train run, or DeepSVDD.save)' },
  input: { kind: 'strings', arg: 'FILE', help: 'a PNG (grayscale or RGB, of the model\'s input size; any size for a --dataset folder\nmodel), an IDX image file or a CIFAR-10 .bin batch (every image in it); repeat the flag\nor list several files' },
  score: { kind: { choices: ['svdd', 'mahalanobis'] as const }, arg: 'S', help: 'svdd | mahalanobis (default: the model\'s decision score)' },
  json: { kind: 'boolean', help: 'print one JSON object instead of one line per image' },
  backend: backendFlag,
  threads: threadsFlag,
} as const satisfies FlagTable;

export const predict = defineCommand({
  name: 'predict',
  synopsis: 'svdd predict --model DIR --input FILE...',
  summary: 'score images, decide with the saved threshold',
  usage: `svdd predict --model DIR --input FILE... [--score svdd|mahalanobis] [--json] [--backend ${BACKEND_NAMES.join('|')}] [--threads T]`,
  description: DESCRIPTION,
  notes: NOTES,
  flags: PREDICT_FLAGS,
  positionals: { min: 0, max: Infinity, what: 'input files after --input' },
  run: (p, io) => predictFromFiles(p, io),
});

function formatReport(r: Omit<PredictionReport, 'failures'>): string {
  const width = Math.max(...r.predictions.map((p) => p.input.length));
  return r.predictions.map((p) => `${p.input.padEnd(width)}  ${p.score.toPrecision(6).padStart(12)}${p.decision ? `  ${p.decision}` : ''}\n`).join('');
}

/** `svdd predict` with argv, output on this process's stdout and stderr (`stderr` gets the progress line when it is a terminal). */
export async function predictCommand(argv: string[], stderr: NodeJS.WriteStream = process.stderr): Promise<void> {
  await invoke(predict, argv, { ...processIo, stderrStream: stderr });
}

async function predictFromFiles({ values, positionals }: Parsed<typeof PREDICT_FLAGS>, io: CliIo): Promise<void> {
  // Files after the first --input (shell globs) arrive as positionals.
  const inputs = [...(values.input ?? []), ...positionals];
  if (inputs.length === 0) throw new UsageError('svdd predict: --input FILE is required (a PNG, an IDX image file or a CIFAR-10 batch)');
  if ((values.input ?? []).length === 0) throw new UsageError(`svdd predict: unexpected argument '${positionals[0]}' (input files follow --input)`);
  // The backend for loading and scoring only: the caller's is active again afterwards.
  const predicted = await engine.withBackend(values.backend, () => {
    const model = loadModel(values.model);
    const progress = progressLine(io.stderrStream, 'predict');
    try {
      return predictFiles(model, inputs, values.score, progress.onProgress);
    } finally {
      progress.clear();
    }
  }, values.threads ?? null);
  const { failures, ...report } = predicted;
  if (values.json) {
    const all = failures.length > 0 ? { ...report, failures } : report;
    io.out(`${JSON.stringify({ model: values.model, ...all }, null, 2)}\n`);
  } else {
    io.out(formatReport(report));
    const th = report.threshold;
    if (report.predictions.length === 0) {
      // Nothing was scored: the lines below say why.
    } else if (th) {
      const flagged = report.predictions.filter((p) => p.decision === 'anomalous').length;
      io.err(`${report.predictions.length} image(s), ${report.score} score, anomalous when score > τ = ${th.tau.toPrecision(6)} (${describeThreshold(th)}): ${flagged} anomalous\n`);
    } else {
      io.err(`no decision threshold for the ${report.score} score was saved with this model, so only scores are printed (train with --threshold adaptive to get one${report.score === 'svdd' ? '; a model trained now always has a rule: τ from --val-fraction, else --contamination' : ''})\n`);
    }
  }
  // A score that is not a finite number is decided anomalous (decide fails closed); say so and fail.
  const nonFinite = report.predictions.filter((p) => !Number.isFinite(p.score)).length;
  if (nonFinite > 0 && failures.length === 0) {
    throw new ModelError(`${nonFinite} of ${report.predictions.length} image(s) got a score that is not a finite number; they are reported anomalous, but the model is broken (retrain it)`);
  }
  if (failures.length > 0) {
    // One line per unreadable file, then a summary that makes the command exit non-zero.
    for (const f of failures) io.err(`svdd: ${f.error}\n`);
    const scored = report.predictions.length;
    throw new DataError(`${failures.length} of ${inputs.length} input files could not be read (listed above)`
      + (scored > 0 ? `; the ${scored} image(s) of the others were scored` : '; nothing was scored'));
  }
}
