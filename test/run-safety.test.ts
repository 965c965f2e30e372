/**
 * Issue 11, items 8–12 and the run-directory fixes of its "also fix" list: divergence stops a run
 * in one line without a model; a last batch of one image and a validation set too small for α;
 * file-system errors in one line; one writer per run directory; a run is complete only at its end.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, errorLines, TINY, type CliRun } from './cli-run.ts';

function expectOneLine(r: CliRun, ...patterns: RegExp[]): void {
  if (r.threw) throw new Error(`escaped exception (a stack trace for a user): ${r.threw.stack}`);
  expect(r.code, `exit status; stderr: ${r.err}`).to.equal(2);
  const lines = errorLines(r);
  expect(lines.length, r.err).to.equal(1);
  for (const p of patterns) expect(p.test(lines[0]!), `${p} in ${lines[0]}`).to.equal(true);
}

describe('divergence: a non-finite loss or weight stops the run in one line, with no model', function () {
  this.timeout(300000);
  let tmp = '';
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'svdd-diverge-')); });
  after(() => { rmSync(tmp, { recursive: true, force: true }); });

  const probes: [string, string[], RegExp][] = [
    ['training (one-class)', ['--lr', '1e30'], /^svdd: training/],
    ['training with --threshold adaptive (the Gaussian fit)', ['--lr', '1e30', '--threshold', 'adaptive'], /\btrain/],
    ['training with a validation split (the thresholds)', ['--lr', '1e30', '--val-fraction', '0.1'], /\btrain/],
    ['pretraining', ['--ae-lr', '1e30'], /pretrain/],
    ['hybrid training', ['--hybrid', '--lr', '1e30'], /hybrid/],
    ['soft-boundary training over several epochs', ['--objective', 'soft-boundary', '--warm-up-epochs', '0', '--lr', '1e30', '--epochs', '3'], /\btrain/],
  ];
  for (const [what, flags, phase] of probes) {
    it(what, async () => {
      const out = join(tmp, what.replace(/\W+/g, '_'));
      const r = await runCli(['train', ...TINY, ...flags, '--out', out]);
      expectOneLine(r, /diverged/, phase);
      for (const f of ['model.json', 'model.safetensors', 'results.json', 'checkpoint.safetensors']) {
        expect(existsSync(join(out, f)), `${f} in ${readdirSync(out).join(', ')}`).to.equal(false);
      }
    });
  }
});
