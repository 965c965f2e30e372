/** `svdd test --model DIR`: re-evaluates a saved model on the test set. */
import { join } from 'node:path';
import { writeFileAtomic } from '../tensor/io/atomic.ts';
import { BACKEND_NAMES, MAX_WASM_THREADS, useBackend } from '../tensor/backends.ts';
import { evaluate } from '../svdd/evaluate.ts';
import { DeepSVDD, runAccess } from '../api/deep-svdd.ts';
import { ModelError, loadModelData, readRunConfig } from '../svdd/model.ts';
import { fsErrorMessage, isFsError } from '../svdd/run-dir.ts';
import { UsageError, logEvaluation, perSampleScores, toImageSet } from '../svdd/run.ts';
import { parseNumber } from './args.ts';

export const TEST_HELP = `svdd test --model DIR [--data-dir DIR] [--test-subset N] [--out FILE] [--backend ${BACKEND_NAMES.join('|')}] [--threads T]
  re-evaluates the model saved in DIR (a finished run) on the test set of its dataset, with the
  preprocessing constants saved with it; prints the metrics and writes DIR/test_results.json

  --data-dir DIR    the dataset's files (default: the run's own --data-dir, from its config.json)
  --test-subset N   the first N test images (default: the run's own --test-subset)
  --out FILE        where to write the scores and metrics (default DIR/test_results.json)
  --backend B       auto (default: the fastest available) | wasm | ts | gpujs; env SVDD_BACKEND
  --threads T       worker threads of the wasm backend, 1 to 64 (default: all cores); env SVDD_THREADS
`;

export async function testCommand(values: Record<string, string | boolean | undefined>, out: (text: string) => void): Promise<void> {
  if (typeof values.model !== 'string') throw new UsageError('svdd test: --model DIR is required');
  const threads = typeof values.threads === 'string' ? parseNumber('--threads', values.threads, { integer: true, min: 1, max: MAX_WASM_THREADS }) : null;
  let testSubset = typeof values['test-subset'] === 'string' ? parseNumber('--test-subset', values['test-subset'], { integer: true, min: 2 }) : undefined;
  let dataDir = typeof values['data-dir'] === 'string' ? values['data-dir'] : undefined;
  if (values.out !== undefined && (typeof values.out !== 'string' || values.out === '')) throw new UsageError('svdd test: --out needs a file name');
  const resultsPath = typeof values.out === 'string' ? values.out : join(values.model, 'test_results.json');
  await useBackend(typeof values.backend === 'string' ? values.backend : 'auto', threads);
  const estimator = await DeepSVDD.load(values.model);
  const model = runAccess.model(estimator);
  // The run's own data directory and test subset, unless given: the run's test set, as it was scored.
  const cfg = readRunConfig(values.model);
  if (dataDir === undefined && typeof cfg?.dataDir === 'string' && cfg.dataDir !== '') dataDir = cfg.dataDir;
  if (testSubset === undefined && typeof cfg?.testSubset === 'number' && Number.isInteger(cfg.testSubset) && cfg.testSubset >= 2) {
    testSubset = cfg.testSubset;
    out(`test subset: the first ${testSubset} test images, as the run was evaluated (--test-subset N to change it)\n`);
  }
  const { data } = loadModelData(model.meta, dataDir, testSubset);
  const scores = runAccess.scores(estimator, toImageSet(data.test, data));
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
