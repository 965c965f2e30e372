/**
 * The contention stress suite (test/stress/contention.ts) at its short fixed setting: every threaded
 * wasm kernel repeated with 2 threads while 2 busy-loop processes compete for the cores and the main
 * thread is stalled at the runtime's scheduling points; each result bitwise equal to the first and
 * close to the `ts` reference; two CIFAR-10 training runs from one seed byte-identical.
 * `npm run stress` runs the longer version.
 */
import { expect } from 'chai';
import { shutdownBackends, useBackend } from '../src/tensor/backends.ts';
import { wasmFeatures } from '../src/tensor/kernels/wasm/index.ts';
import { CI_OPTIONS, formatReport, runStress } from './stress/contention.ts';

describe('contention stress: threaded wasm kernels and CIFAR-10 training under busy loops', function () {
  this.timeout(300000);
  before(function () { if (!wasmFeatures().threads) this.skip(); });
  after(async () => { await useBackend('ts'); await shutdownBackends(); });

  it(`${CI_OPTIONS.repeats} repeats of every kernel case (batch ${CI_OPTIONS.batch}) and ${CI_OPTIONS.trainSteps} training steps twice, all identical`, async () => {
    const report = await runStress(CI_OPTIONS);
    expect(report.failures, formatReport(report)).to.deep.equal([]);
    expect(report.kernels.length).to.be.greaterThan(30);
    expect(report.training.map((t) => t.identical)).to.deep.equal([true, true]);
  });
});
