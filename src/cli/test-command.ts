/** `svdd test --model DIR`: re-evaluates a saved model on the test set. */
import { join } from 'node:path';
import { writeFileAtomic } from '../tensor/io/atomic.ts';
import { MAX_WASM_THREADS, useBackend } from '../tensor/backends.ts';
import { evaluate, scoreImages } from '../svdd/evaluate.ts';
import { loadModel, loadModelData } from '../svdd/model.ts';
import { UsageError, logEvaluation, perSampleScores, toImageSet } from '../svdd/run.ts';
import { parseNumber } from './args.ts';

export const TEST_HELP = `svdd test --model DIR [--data-dir DIR] [--test-subset N] [--backend auto|wasm|ts|gpujs] [--threads T]
  re-evaluates the model saved in DIR on the test set of its dataset, with the preprocessing
  constants saved with it; prints the metrics and writes DIR/test_results.json

  --data-dir DIR    the dataset's files (default: the run's own --data-dir, from its config.json)
  --test-subset N   the first N test images (default: the run's own --test-subset)
  --backend B       auto (default: the fastest available) | wasm | ts | gpujs; env SVDD_BACKEND
  --threads T       worker threads of the wasm backend, 1 to 64 (default: all cores); env SVDD_THREADS
`;

export async function testCommand(values: Record<string, string | boolean | undefined>, out: (text: string) => void): Promise<void> {
  if (typeof values.model !== 'string') throw new UsageError('svdd test: --model DIR is required');
  const threads = typeof values.threads === 'string' ? parseNumber('--threads', values.threads, { integer: true, min: 1, max: MAX_WASM_THREADS }) : null;
  await useBackend(typeof values.backend === 'string' ? values.backend : 'auto', threads);
  const model = loadModel(values.model);
  const testSubset = typeof values['test-subset'] === 'string' ? parseNumber('--test-subset', values['test-subset'], { integer: true, min: 2 }) : undefined;
  const { data } = loadModelData(model.meta, typeof values['data-dir'] === 'string' ? values['data-dir'] : undefined, testSubset);
  const scores = scoreImages(model, toImageSet(data.test, data));
  const evaluation = evaluate(model, scores, data.test.labels);
  logEvaluation((l) => out(`${l}\n`), evaluation);
  writeFileAtomic(join(values.model, 'test_results.json'), `${JSON.stringify({ evaluation, scores: perSampleScores(data, scores) })}\n`);
}
