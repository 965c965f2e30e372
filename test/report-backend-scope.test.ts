/**
 * The report's latent projection chooses a backend for its encoding only: the backend the caller
 * had active is active again afterwards, also when the projection fails.
 */
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../src/svdd/config.ts';
import { latentProjection, readRunDir } from '../src/svdd/report/report.ts';
import { runTraining } from '../src/svdd/run.ts';
import { engine } from '../src/tensor/engine.ts';

describe('report: backend scope of the latent projection', function () {
  this.timeout(180000);
  let tmp: string;
  let run: string;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'svdd-report-scope-'));
    run = join(tmp, 'run');
    const cfg = { ...defaultConfig('mnist', 1, 'quick'), subset: 100, testSubset: 50, aeEpochs: 1, epochs: 1, backend: 'ts' };
    await runTraining(cfg, run, { log: () => {} }, { checkpointEvery: 0 });
  });

  after(async () => { rmSync(tmp, { recursive: true, force: true }); await engine.dispose(); });

  it('encodes on the backend asked for and leaves the caller\'s active', async () => {
    await engine.use('wasm', 1);
    const seen = new Set<string>();
    const own = Object.getOwnPropertyDescriptor(engine, 'kernels');
    const original = engine.kernels;
    engine.kernels = function (this: typeof engine, dtype) { seen.add(this.backend.name); return original.call(this, dtype); };
    let lat;
    try { lat = await latentProjection(readRunDir(run), { backend: 'ts' }); } finally {
      if (own) Object.defineProperty(engine, 'kernels', own); else delete (engine as Partial<typeof engine>).kernels;
    }
    expect(lat.count).to.equal(50);
    expect([...seen]).to.deep.equal(['ts']);
    expect(engine.backend.name).to.equal('wasm');
  });

  it('leaves the caller\'s backend active when the projection fails', async () => {
    await engine.use('wasm', 1);
    let thrown: unknown = null;
    // A run directory without its model: loading the model fails inside the scope.
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    try { await latentProjection({ ...readRunDir(run), dir: empty }, { backend: 'ts' }); } catch (e) { thrown = e; }
    expect(String(thrown)).to.match(/ModelError/);
    expect(engine.backend.name).to.equal('wasm');
  });
});
