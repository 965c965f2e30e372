/**
 * The library's training run speaks in its own terms: settings by their config keys, problems as
 * RunError (an SvddError), never the CLI's UsageError or flag names; svdd train names flags.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, flagOf, validateConfig } from '../src/svdd/config.ts';
import { RunError, SvddError } from '../src/svdd/errors.ts';
import { runTraining } from '../src/svdd/run.ts';

describe('training run errors: library terms, typed', () => {
  it('validateConfig names settings by key, or by flag when the CLI asks', () => {
    const cfg = { ...defaultConfig('mnist', 1, 'quick'), net: 'cifar10_LeNet' as const, hybrid: true, objective: 'soft-boundary' as const };
    expect(validateConfig(cfg)).to.deep.equal([
      '"net" cifar10_LeNet does not fit mnist images (use mnist_LeNet)',
      '"hybrid" trains the one-class objective; drop "objective" soft-boundary',
    ]);
    expect(validateConfig(cfg, flagOf)).to.deep.equal([
      '--net cifar10_LeNet does not fit mnist images (use mnist_LeNet)',
      '--hybrid trains the one-class objective; drop --objective soft-boundary',
    ]);
  });

  it('runTraining refuses bad settings and a directory it must not write as RunError, with no flag in the message', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svdd-run-errors-'));
    try {
      const cfg = { ...defaultConfig('mnist', 1, 'quick'), subset: 50, testSubset: 50, aeEpochs: 1, epochs: 1, backend: 'ts' };
      const cases: [Parameters<typeof runTraining>[0], string, RegExp][] = [
        [{ ...cfg, lr: -1 }, join(dir, 'a'), /"lr"/],
        [cfg, dir, /not empty/],
      ];
      writeFileSync(join(dir, 'notes.txt'), 'x');
      for (const [c, out, pattern] of cases) {
        let err: unknown = null;
        try { await runTraining(c, out, { log: () => undefined }, { checkpointEvery: 0 }); } catch (e) { err = e; }
        expect(err).to.be.instanceOf(RunError);
        expect(err).to.be.instanceOf(SvddError);
        expect((err as Error).message).to.match(pattern);
        expect((err as Error).message).to.not.match(/--[a-z]/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
