/**
 * The commands choose a backend for their own work only: `svdd train` (runTraining), `svdd test`,
 * `svdd predict` and `svdd explain` run on the backend asked for, and afterwards the backend the
 * caller had active is active again, as chosen as before (also when the command fails). A program
 * or a study that calls them in-process keeps its own backend.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { invoke, type CliIo } from '../src/cli/command.ts';
import { explainCli } from '../src/cli/explain-command.ts';
import { predict } from '../src/cli/predict-command.ts';
import { test as testCommand } from '../src/cli/test-command.ts';
import { defaultConfig } from '../src/svdd/config.ts';
import { loadRaw } from '../src/svdd/data/datasets.ts';
import { runTraining } from '../src/svdd/run.ts';
import { engine } from '../src/tensor/engine.ts';
import { kernelBackends } from './backend-spy.ts';

const quiet: CliIo = { out: () => {}, err: () => {}, stderrStream: { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream };

/** An IDX image file of the first n MNIST test images. */
function writeIdx(path: string, n: number): void {
  const images = loadRaw('mnist').test.images.subarray(0, n * 784);
  const header = Buffer.alloc(16);
  header.writeUInt32BE(0x803, 0); header.writeUInt32BE(n, 4); header.writeUInt32BE(28, 8); header.writeUInt32BE(28, 12);
  writeFileSync(path, Buffer.concat([header, Buffer.from(images)]));
}

describe('CLI: the commands choose a backend for their own work only', function () {
  this.timeout(600000);
  let tmp: string, model: string;
  const small = { ...defaultConfig('mnist', 1, 'quick'), subset: 100, testSubset: 50, aeEpochs: 1, epochs: 1 };

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'svdd-cli-scope-'));
    model = join(tmp, 'model');
    await runTraining({ ...small, backend: 'ts' }, model, { log: () => {} }, { checkpointEvery: 0 });
    writeIdx(join(tmp, 'images.idx'), 4);
  });

  after(async () => { rmSync(tmp, { recursive: true, force: true }); await engine.dispose(); });

  const commands: [string, () => Promise<number>][] = [
    ['test', () => invoke(testCommand, ['--model', model, '--backend', 'ts', '--out', join(tmp, 'test.json')], quiet)],
    ['predict', () => invoke(predict, ['--model', model, '--input', join(tmp, 'images.idx'), '--json', '--backend', 'ts'], quiet)],
    ['explain', () => invoke(explainCli, ['--model', model, '--index', '0,1', '--backend', 'ts', '--out', join(tmp, 'explain')], quiet)],
  ];

  for (const [name, run] of commands) {
    it(`svdd ${name} --backend ts runs on ts and leaves the caller's wasm active`, async () => {
      await engine.use('wasm', 1);
      expect(await kernelBackends(run)).to.deep.equal(['ts']);
      expect([engine.backend.name, engine.backendChosen, engine.threadsOf('wasm')]).to.deep.equal(['wasm', true, 1]);
    });
  }

  it('a command that fails on its backend leaves the caller\'s active too', async () => {
    await engine.use('wasm', 1);
    let thrown: unknown = null;
    try {
      await invoke(testCommand, ['--model', model, '--backend', 'ts', '--data-dir', join(tmp, 'no-such-dir'), '--out', join(tmp, 'x.json')], quiet);
    } catch (e) { thrown = e; }
    expect(thrown).to.be.instanceOf(Error);
    expect([engine.backend.name, engine.backendChosen]).to.deep.equal(['wasm', true]);
  });

  it('a command run where no backend was chosen leaves none chosen', async () => {
    await engine.dispose();
    await invoke(testCommand, ['--model', model, '--backend', 'ts', '--out', join(tmp, 'test.json')], quiet);
    expect([engine.backend.name, engine.backendChosen]).to.deep.equal(['ts', false]);
  });

  it('runTraining on ts inside a program that chose wasm trains on ts, records ts, and leaves wasm active', async () => {
    await engine.use('wasm', 1);
    const out = join(tmp, 'run-ts');
    const lines: string[] = [];
    const seen = await kernelBackends(() => runTraining({ ...small, backend: 'ts' }, out, { log: (l) => lines.push(l) }, { checkpointEvery: 0 }));
    expect(seen).to.deep.equal(['ts']);
    expect([engine.backend.name, engine.backendChosen, engine.threadsOf('wasm')]).to.deep.equal(['wasm', true, 1]);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).backend).to.equal('ts');
    expect(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).backend).to.equal('ts');
    expect(lines.some((l) => l.includes('| backend ts'))).to.equal(true);
  });

  it('runTraining on wasm with 1 thread inside a program on ts trains on wasm, records it, and leaves ts active', async () => {
    await engine.use('ts');
    const out = join(tmp, 'run-wasm');
    const lines: string[] = [];
    const seen = await kernelBackends(() => runTraining({ ...small, backend: 'wasm', threads: 1 }, out, { log: (l) => lines.push(l) }, { checkpointEvery: 0 }));
    expect(seen).to.deep.equal(['wasm']);
    expect([engine.backend.name, engine.backendChosen, engine.threadsOf('wasm')]).to.deep.equal(['ts', true, 1]);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).backend).to.equal('wasm');
    expect(lines.some((l) => l.includes('| backend wasm'))).to.equal(true);
  });
});
