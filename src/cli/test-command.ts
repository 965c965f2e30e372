/** `svdd test --model DIR`: re-evaluates a saved model on the test set. */
import { join } from 'node:path';
import { writeFileAtomic } from '../tensor/io/atomic.ts';
import { BACKEND_NAMES } from '../tensor/backends.ts';
import { engine } from '../tensor/engine.ts';
import { evaluate } from '../svdd/evaluate.ts';
import { DeepSVDD, runAccess } from '../api/deep-svdd.ts';
import { ModelError, loadModelData, readRunConfig, runTestSubsetNote } from '../svdd/model.ts';
import { fsErrorMessage, isFsError } from '../svdd/run-dir.ts';
import { logEvaluation, perSampleScores, toImageSet } from '../svdd/run.ts';
import { UsageError } from './usage-error.ts';
import { defineCommand, type CliIo, type FlagTable, type Parsed } from './command.ts';
import { backendFlag, threadsFlag } from './common-flags.ts';
import { progressLine } from './progress.ts';

const TEST_FLAGS = {
  model: { kind: 'string', arg: 'DIR', required: true, help: 'the model directory (a finished svdd train run)' },
  'data-dir': { kind: 'string', arg: 'DIR', help: 'the dataset\'s files (default: the run\'s own --data-dir, from its config.json)' },
  'test-subset': { kind: 'int', min: 2, arg: 'N', help: 'the first N test images (default: the run\'s own --test-subset)' },
  out: { kind: 'string', arg: 'FILE', nonEmpty: true, help: 'where to write the scores and metrics (default DIR/test_results.json)' },
  backend: backendFlag,
  threads: threadsFlag,
} as const satisfies FlagTable;

export const test = defineCommand({
  name: 'test',
  synopsis: 'svdd test --model DIR',
  summary: 're-evaluate a saved model on its test set',
  usage: `svdd test --model DIR [--data-dir DIR] [--test-subset N] [--out FILE] [--backend ${BACKEND_NAMES.join('|')}] [--threads T]`,
  description: `  re-evaluates the model saved in DIR (a finished run) on the test set of its dataset, with the
  preprocessing constants saved with it; prints the metrics and writes DIR/test_results.json`,
  flags: TEST_FLAGS,
  run: (p, io) => testModel(p, io),
});

async function testModel(p: Parsed<typeof TEST_FLAGS>, io: CliIo): Promise<void> {
  // The backend for this command only: the caller's is active again afterwards.
  await engine.withBackend(p.values.backend, () => testOnBackend(p, io), p.values.threads ?? null);
}

async function testOnBackend({ values }: Parsed<typeof TEST_FLAGS>, io: CliIo): Promise<void> {
  const out = io.out;
  let testSubset = values['test-subset'];
  let dataDir = values['data-dir'];
  const resultsPath = values.out ?? join(values.model, 'test_results.json');
  const estimator = await DeepSVDD.load(values.model);
  const model = runAccess.model(estimator);
  // The run's own data directory and test subset, unless given: the run's test set, as it was scored.
  const run = readRunConfig(values.model);
  dataDir ??= run.dataDir;
  if (testSubset === undefined && run.testSubset !== undefined) {
    testSubset = run.testSubset;
    out(runTestSubsetNote(testSubset));
  }
  const { data } = loadModelData(model.meta, dataDir, testSubset);
  const progress = progressLine(io.stderrStream, 'test');
  let scores;
  try {
    scores = runAccess.scores(estimator, toImageSet(data.test, data), progress.onProgress);
  } finally {
    progress.clear();
  }
  const evaluation = evaluate(model, scores, data.test.labels);
  logEvaluation((l) => out(`${l}\n`), evaluation);
  const nonFinite = scores.svdd.filter((v) => !Number.isFinite(v)).length;
  if (nonFinite > 0) throw new ModelError(`${nonFinite} of ${scores.svdd.length} test scores are not finite numbers (counted as anomalous at every threshold); the model is broken, retrain it`);
  try {
    writeFileAtomic(resultsPath, `${JSON.stringify({ evaluation, scores: perSampleScores(data, scores) })}\n`);
  } catch (e) {
    if (!isFsError(e)) throw e;
    throw new UsageError(`${fsErrorMessage(e)}; the metrics above are complete: write them elsewhere with --out FILE`);
  }
}
