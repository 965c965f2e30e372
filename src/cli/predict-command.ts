/** `svdd predict --model DIR --input FILE…`: scores new images and decides normal / anomalous. */
import { parseArgs } from 'node:util';
import { BACKEND_NAMES, useBackend } from '../tensor/backends.ts';
import { loadModel } from '../svdd/model.ts';
import { predictFiles, type DecisionScore, type PredictionReport } from '../svdd/predict.ts';
import { UsageError } from '../svdd/run.ts';
import { parseChoice } from './args.ts';

export const PREDICT_HELP = `svdd predict --model DIR --input FILE... [--score svdd|mahalanobis] [--json] [--backend auto|wasm|ts]
  scores images with the model saved in DIR and decides normal / anomalous with the threshold
  saved with it (anomalous when score > τ; the quantile threshold is preferred over χ²)

  --input FILE      a PNG (grayscale or RGB, of the model's input size), an IDX image file or a
                    CIFAR-10 .bin batch (every image in it); repeat the flag or list several files
  --score S         svdd | mahalanobis (default: the model's decision score)
  --json            print one JSON object instead of one line per image
  --backend B       compute backend (default auto)

  images are preprocessed as the training data: pixel/255, global contrast normalisation (L1)
  per image, then min-max scaling with the model's saved constants.
`;

const OPTIONS = {
  model: { type: 'string' },
  input: { type: 'string', multiple: true },
  score: { type: 'string' },
  json: { type: 'boolean' },
  backend: { type: 'string' },
  help: { type: 'boolean' },
} as const;

function formatReport(r: PredictionReport): string {
  const width = Math.max(...r.predictions.map((p) => p.input.length));
  return r.predictions.map((p) => `${p.input.padEnd(width)}  ${p.score.toPrecision(6).padStart(12)}${p.decision ? `  ${p.decision}` : ''}\n`).join('');
}

export async function predictCommand(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
  const { values, positionals } = parsed;
  if (values.help) { process.stdout.write(PREDICT_HELP); return; }
  if (typeof values.model !== 'string') throw new UsageError('svdd predict: --model DIR is required');
  // Files after the first --input (shell globs) arrive as positionals.
  const inputs = [...(values.input ?? []), ...positionals];
  if (inputs.length === 0) throw new UsageError('svdd predict: --input FILE is required (a PNG, an IDX image file or a CIFAR-10 batch)');
  if ((values.input ?? []).length === 0) throw new UsageError(`svdd predict: unexpected argument '${positionals[0]}' (input files follow --input)`);
  const score = values.score === undefined ? undefined : parseChoice<DecisionScore>('--score', values.score, ['svdd', 'mahalanobis']);
  await useBackend(parseChoice('--backend', values.backend ?? 'auto', BACKEND_NAMES));
  const model = loadModel(values.model);
  const report = predictFiles(model, inputs, score);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ model: values.model, ...report }, null, 2)}\n`);
    return;
  }
  process.stdout.write(formatReport(report));
  const th = report.threshold;
  if (th) {
    const flagged = report.predictions.filter((p) => p.decision === 'anomalous').length;
    process.stderr.write(`${report.predictions.length} image(s), ${report.score} score, anomalous when score > τ = ${th.tau.toPrecision(6)} (${th.method}, α ${th.alpha}): ${flagged} anomalous\n`);
  } else {
    process.stderr.write(`no decision threshold for the ${report.score} score was saved with this model, so only scores are printed (train with --threshold adaptive to get one)\n`);
  }
}
