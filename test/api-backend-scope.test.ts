/**
 * The estimator's backend scope: every DeepSVDD call runs inside withBackend of its `backend`
 * option and leaves the caller's backend active afterwards; with the option unset it runs on the
 * backend the program chose on the default engine (an enclosing withBackend, engine.use), and on
 * 'auto' when the program chose none.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeepSVDD, type ImageArray } from '../src/index.ts';
import { engine, withBackend } from '../src/tensor/engine.ts';
import { kernelBackends } from './backend-spy.ts';

/** Small random images [n, 1, 28, 28], seeded. */
function images(n: number, seed: number): ImageArray {
  let s = seed;
  const data = Uint8Array.from({ length: n * 784 }, () => { s = (s * 1103515245 + 12345) >>> 0; return s >>> 24; });
  return { data, shape: [n, 1, 28, 28] };
}

describe('DeepSVDD backend scope', function () {
  this.timeout(600000);
  const train = images(8, 1), test = images(3, 2);
  const small = { pretrain: false as const, epochs: 1, batchSize: 4 };
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'svdd-scope-')); });
  after(async () => { rmSync(dir, { recursive: true, force: true }); await engine.dispose(); });

  it('with backend unset, a fit and every later call inside withBackend run on that backend', async () => {
    await engine.use('wasm', 1);
    const model = new DeepSVDD(small);
    await withBackend('ts', async () => {
      expect(await kernelBackends(() => model.fit(train))).to.deep.equal(['ts']);
      expect(engine.backend.name).to.equal('ts');
      expect(await kernelBackends(() => model.decisionFunction(test))).to.deep.equal(['ts']);
      expect(await kernelBackends(() => model.explain(test))).to.deep.equal(['ts']);
    });
    expect(engine.backend.name).to.equal('wasm');
    // Outside the scope the program's own choice, wasm, is inherited.
    expect(await kernelBackends(() => model.predict(test))).to.deep.equal(['wasm']);
  });

  it('with a backend set, every call runs on it and the previously active backend is active again afterwards', async () => {
    await engine.use('wasm', 1);
    const model = new DeepSVDD({ ...small, backend: 'ts' });
    expect(await kernelBackends(() => model.fit(train))).to.deep.equal(['ts']);
    expect(engine.backend.name).to.equal('wasm');
    expect(await kernelBackends(() => model.decisionFunction(test))).to.deep.equal(['ts']);
    expect(engine.backend.name).to.equal('wasm');
    expect(await kernelBackends(() => model.predict(test))).to.deep.equal(['ts']);
    expect(await kernelBackends(() => model.explain(test, { method: 'gradxinput' }))).to.deep.equal(['ts']);
    await model.save(join(dir, 'm'));
    expect(engine.backend.name).to.equal('wasm');
    const loaded = await DeepSVDD.load(join(dir, 'm'), { backend: 'ts' });
    expect(engine.backend.name).to.equal('wasm');
    expect(Array.from(await loaded.decisionFunction(test))).to.deep.equal(Array.from(await model.decisionFunction(test)));
    expect(engine.backend.name).to.equal('wasm');
    // Inside an enclosing scope the estimator's own backend wins, and the scope's is restored.
    await withBackend('wasm', async () => {
      expect(await kernelBackends(() => model.decisionFunction(test))).to.deep.equal(['ts']);
      expect(engine.backend.name).to.equal('wasm');
    }, 1);
  });

  it("with backend unset and no backend chosen by the program, runs on 'auto' and leaves the engine as it was", async () => {
    await engine.dispose();
    expect(engine.backendChosen).to.equal(false);
    const auto = await withBackend('auto', () => engine.backend.name);
    expect(engine.backendChosen).to.equal(false);
    const model = new DeepSVDD(small);
    expect(await kernelBackends(() => model.fit(train))).to.deep.equal([auto]);
    expect(engine.backend.name).to.equal('ts');
    expect(engine.backendChosen).to.equal(false);
  });

  it('a backend that cannot start is refused before anything runs, and the caller\'s backend stays active', async () => {
    await engine.use('ts');
    const saved = process.env.SVDD_THREADS;
    process.env.SVDD_THREADS = 'many';
    try {
      let thrown: unknown = null;
      const ran = await kernelBackends(async () => {
        try { await new DeepSVDD({ ...small, backend: 'wasm' }).fit(train); } catch (e) { thrown = e; }
      });
      expect(String(thrown)).to.match(/OptionError: option backend 'wasm': SVDD_THREADS must be an integer/);
      expect(ran.length, 'kernels ran').to.equal(0);
      expect(engine.backend.name).to.equal('ts');
    } finally { if (saved === undefined) delete process.env.SVDD_THREADS; else process.env.SVDD_THREADS = saved; }
  });
});
