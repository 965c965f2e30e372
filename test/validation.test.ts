/**
 * Issue 11, items 1, 3 and 5 and the flag hygiene of its "also fix" list: every thread count,
 * config value and model.json field is checked by type and range before any work, and a bad one
 * is one line on stderr with exit status 2 (never a stack, never a run on a value it should refuse).
 */
import { expect } from 'chai';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, errorLines, mnistPng, TINY, type CliRun } from './cli-run.ts';
import { buildTrainConfig } from '../src/cli/train-flags.ts';
import { createWasmBackend } from '../src/tensor/kernels/wasm/index.ts';
import { MAX_WASM_THREADS } from '../src/tensor/kernels/wasm/runtime.ts';
import { NET_NAMES, NET_SHAPES, buildEncoder } from '../src/svdd/networks.ts';

/** Exit 2, no exception, and one 'svdd:' line (per problem) matching each pattern. */
function expectOneLine(r: CliRun, ...patterns: RegExp[]): void {
  if (r.threw) throw new Error(`escaped exception (a stack trace for a user): ${r.threw.stack}`);
  expect(r.code, `exit status; stderr: ${r.err}`).to.equal(2);
  const lines = errorLines(r);
  expect(lines.length, r.err).to.be.at.least(1);
  for (const p of patterns) expect(lines.some((l) => p.test(l)), `${p} in ${JSON.stringify(lines)}`).to.equal(true);
}

describe('validation: thread counts (flag, config, environment) and the runtime cap', function () {
  this.timeout(300000);
  let tmp = '';
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'svdd-threads-')); });
  after(() => { rmSync(tmp, { recursive: true, force: true }); });

  for (const v of ['0', '127', '999', '-1', '2.5', 'abc']) {
    it(`--threads ${v} is one line, before any work`, async () => {
      const out = join(tmp, `flag-${v}`);
      const r = await runCli(['train', ...TINY, '--threads', v, '--out', out]);
      expectOneLine(r, /--threads/);
      expect(existsSync(out)).to.equal(false);
    });
  }

  it('"threads": "abc" in a config file is one line', async () => {
    const cfg = join(tmp, 'threads.json');
    writeFileSync(cfg, JSON.stringify({ threads: 'abc' }));
    const r = await runCli(['train', ...TINY.filter((_, i, a) => a[i] !== '--threads' && a[i - 1] !== '--threads'), '--config', cfg, '--out', join(tmp, 'cfg')]);
    expectOneLine(r, /threads/);
    expect(existsSync(join(tmp, 'cfg'))).to.equal(false);
  });

  for (const v of ['abc', '0', '65', '1e3', ' 2']) {
    it(`SVDD_THREADS=${JSON.stringify(v)} is one line for train and test`, async () => {
      const noThreads = TINY.filter((_, i, a) => a[i] !== '--threads' && a[i - 1] !== '--threads');
      const r = await runCli(['train', ...noThreads, '--backend', 'wasm', '--out', join(tmp, `env-${v.trim()}`)], { SVDD_THREADS: v, SVDD_BACKEND: undefined });
      expectOneLine(r, /SVDD_THREADS/);
      const t = await runCli(['test', '--model', join(tmp, 'nowhere'), '--backend', 'wasm'], { SVDD_THREADS: v });
      expectOneLine(t, /SVDD_THREADS/);
    });
  }

  it(`the wasm runtime refuses more than ${MAX_WASM_THREADS} threads (its control block has room for a fixed number)`, async () => {
    expect(MAX_WASM_THREADS).to.equal(64);
    let err: Error | null = null;
    try { await createWasmBackend({ threads: MAX_WASM_THREADS + 1 }); } catch (e) { err = e as Error; }
    expect(err?.message ?? '').to.match(/at most 64 threads/);
  });
});

describe('validation: training config values by type and range, before any work', function () {
  this.timeout(300000);
  let tmp = '';
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'svdd-config-')); });
  after(() => { rmSync(tmp, { recursive: true, force: true }); });

  const badFiles: [string, unknown, RegExp][] = [
    ['hybrid "false"', { hybrid: 'false' }, /hybrid.*boolean/],
    ['objective foo', { objective: 'foo' }, /objective.*one-class.*soft-boundary/],
    ['optimizer sgd', { optimizer: 'sgd' }, /optimizer.*adam.*amsgrad/],
    ['lr as a string', { lr: '1e-4' }, /lr.*number/],
    ['lr 1e400 (Infinity)', { lr: 1e400 }, /lr/],
    ['milestones as a string', { milestones: '50' }, /milestones/],
    ['milestones with a string', { milestones: [50, 'x'] }, /milestones/],
    ['milestones negative', { milestones: [-1] }, /milestones/],
    ['pretrain "no"', { pretrain: 'no' }, /pretrain.*boolean/],
    ['chi2 1', { chi2: 1 }, /chi2.*boolean/],
    ['seed 1.5', { seed: 1.5 }, /seed.*integer/],
    ['normalClass "3"', { normalClass: '3' }, /normalClass/],
    ['shrinkage 2', { shrinkage: 2 }, /shrinkage/],
    ['subset "all"', { subset: 'all' }, /subset/],
    ['dataDir 5', { dataDir: 5 }, /dataDir/],
    ['backend cuda', { backend: 'cuda' }, /backend/],
    ['gamma -10', { gamma: -10 }, /gamma/],
  ];
  for (const [what, value, pattern] of badFiles) {
    it(`config file: ${what}`, async () => {
      const cfg = join(tmp, `${what.replace(/\W+/g, '_')}.json`);
      writeFileSync(cfg, JSON.stringify(value).replace('null', '1e400'));
      const out = join(tmp, `out-${what.replace(/\W+/g, '_')}`);
      const r = await runCli(['train', ...TINY, '--config', cfg, '--out', out]);
      expectOneLine(r, pattern, /^svdd: --config /);
      expect(existsSync(out)).to.equal(false);
    });
  }

  for (const v of ['[1]', 'null', '"x"']) {
    it(`config file that is not an object (${v})`, async () => {
      const cfg = join(tmp, 'notobj.json');
      writeFileSync(cfg, v);
      expectOneLine(await runCli(['train', ...TINY, '--config', cfg, '--out', join(tmp, 'no')]), /expected a JSON object/);
    });
  }

  const badFlags: [string[], RegExp][] = [
    [['--gamma', '-10'], /--gamma/],
    [['--gamma', '0'], /--gamma/],
    [['--gamma', '1e308', '--milestones', '1'], /learning rate|--gamma/],
    [['--lr', '1e300', '--gamma', '1e10', '--milestones', '1'], /--gamma/],
    [['--ae-lr', '1e-300', '--gamma', '1e-100', '--ae-milestones', '1,2,3'], /learning rate/],
    [['--milestones', '5,3'], /--milestones.*increasing/],
    [['--milestones', '0'], /--milestones/],
    [['--epochs', '-1'], /--epochs/],
    [['--seed', '-1'], /--seed/],
    [['--nu', '0', '--objective', 'soft-boundary'], /--nu/],
    [['--normal-class', '10'], /--normal-class/],
  ];
  for (const [flags, pattern] of badFlags) {
    it(`flags: ${flags.join(' ')}`, async () => {
      const out = join(tmp, `flags-${flags.join('_')}`);
      const r = await runCli(['train', ...TINY, ...flags, '--out', out]);
      expectOneLine(r, pattern);
      expect(existsSync(out)).to.equal(false);
    });
  }

  it('several problems: one line each', async () => {
    const cfg = join(tmp, 'many.json');
    writeFileSync(cfg, JSON.stringify({ hybrid: 'false', optimizer: 'sgd', lr: -1 }));
    const r = await runCli(['train', ...TINY, '--config', cfg, '--out', join(tmp, 'many')]);
    expectOneLine(r, /hybrid/, /optimizer/, /lr/);
  });

  it("a finished run's config.json validates as a config file (every key, as written)", async () => {
    const out = join(tmp, 'ok');
    const r = await runCli(['train', ...TINY, '--out', out]);
    expect(r.code, r.err).to.equal(0);
    const again = buildTrainConfig({ config: join(out, 'config.json') });
    expect(again.warnings).to.deep.equal([]);
    const { backend: _b, ...cfg } = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    const { backend: _c, ...rebuilt } = again.cfg as unknown as Record<string, unknown>;
    expect(rebuilt).to.deep.equal(cfg);
  });
});

describe('validation: flags that do nothing in the chosen mode', function () {
  this.timeout(120000);
  const noOps: [string[], RegExp][] = [
    [['--chi2'], /--chi2.*--threshold adaptive/],
    [['--alpha', '0.1'], /--alpha.*validation/],
    [['--mu2', '1'], /--mu2.*--hybrid/],
    [['--mu1', '2'], /--mu1.*--hybrid/],
    [['--nu', '0.2'], /--nu.*soft-boundary/],
    [['--warm-up-epochs', '3'], /--warm-up-epochs.*soft-boundary/],
    [['--shrinkage', '0.5'], /--shrinkage.*--threshold adaptive/],
    [['--contamination', '0.1', '--val-fraction', '0.1'], /--contamination.*validation/],
  ];
  for (const [flags, pattern] of noOps) {
    it(`${flags.join(' ')} is an error`, async () => {
      const out = mkdtempSync(join(tmpdir(), 'svdd-noop-'));
      try {
        const r = await runCli(['train', ...TINY, ...flags, '--out', join(out, 'run')]);
        expectOneLine(r, pattern);
        expect(existsSync(join(out, 'run'))).to.equal(false);
      } finally { rmSync(out, { recursive: true, force: true }); }
    });
  }

  it('the same settings in a config file (other than the defaults) are warnings', () => {
    const dir = mkdtempSync(join(tmpdir(), 'svdd-noop-'));
    try {
      const cfg = join(dir, 'c.json');
      writeFileSync(cfg, JSON.stringify({ nu: 0.3, mu2: 2, alpha: 0.05, chi2: false }));
      const { warnings } = buildTrainConfig({ config: cfg });
      expect(warnings.length).to.equal(2);
      expect(warnings.some((w) => /"nu".*soft-boundary/.test(w))).to.equal(true);
      expect(warnings.some((w) => /"mu2".*hybrid/.test(w))).to.equal(true);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });
});

describe('CLI: --version and the help of test and predict', () => {
  it('svdd --version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    const r = await runCli(['--version']);
    expect(r.code).to.equal(0);
    expect(r.out.trim()).to.equal(`svdd-ts ${pkg.version}`);
  });
  for (const cmd of ['test', 'predict']) {
    it(`svdd ${cmd} --help lists gpujs and --threads`, async () => {
      const r = await runCli([cmd, '--help']);
      expect(r.code).to.equal(0);
      expect(r.out).to.match(/gpujs/);
      expect(r.out).to.match(/--threads/);
    });
  }
  it('svdd test --threads 2 and predict --threads 0 are parsed (0 refused in one line)', async () => {
    const r = await runCli(['predict', '--model', 'x', '--input', 'y.png', '--threads', '0']);
    expectOneLine(r, /--threads/);
  });
});

describe('validation: model.json against its schema on load', function () {
  this.timeout(300000);
  let tmp = '', model = '', png = '';
  let meta: Record<string, unknown> = {};
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'svdd-modeljson-'));
    model = join(tmp, 'model');
    const r = await runCli(['train', ...TINY, '--threshold', 'adaptive', '--out', model]);
    expect(r.code, r.err).to.equal(0);
    meta = JSON.parse(readFileSync(join(model, 'model.json'), 'utf8')) as Record<string, unknown>;
    png = join(tmp, 'digit.png');
    mnistPng(png, 3);
  });
  after(() => { rmSync(tmp, { recursive: true, force: true }); });

  /** A copy of the model with model.json edited by `edit`. */
  const variant = (name: string, edit: (m: Record<string, unknown>) => void): string => {
    const dir = join(tmp, name);
    cpSync(model, dir, { recursive: true });
    const m = structuredClone(meta);
    edit(m);
    writeFileSync(join(dir, 'model.json'), JSON.stringify(m));
    return dir;
  };
  const cases: [string, (m: Record<string, any>) => void, RegExp[]][] = [
    ['centerC of the wrong length', (m) => { m.centerC = m.centerC.slice(1); }, [/centerC.*32/]],
    ['centerC with a string', (m) => { m.centerC[3] = 'x'; }, [/centerC/]],
    ['centerC missing', (m) => { delete m.centerC; }, [/centerC/]],
    ['thresholds missing', (m) => { delete m.thresholds; }, [/thresholds/]],
    ['a threshold tau as a string', (m) => { m.thresholds[0].tau = '0.5'; }, [/thresholds\.0\.tau/]],
    ['a threshold of an unknown method', (m) => { m.thresholds[0].method = 'magic'; }, [/thresholds\.0\.method/]],
    ['radiusR negative', (m) => { m.radiusR = -1; }, [/radiusR/]],
    ['radiusR a string', (m) => { m.radiusR = '0'; }, [/radiusR/]],
    ['preprocessing missing', (m) => { delete m.preprocessing; }, [/preprocessing/]],
    ['preprocessing max = min', (m) => { m.preprocessing.max = m.preprocessing.min; }, [/preprocessing/]],
    ['preprocessing of an unknown method', (m) => { m.preprocessing = { method: 'zscore' }; }, [/preprocessing/]],
    ['inputShape of another net', (m) => { m.inputShape = [3, 32, 32]; }, [/inputShape/]],
    ['repDim not the net\'s', (m) => { m.repDim = 31; }, [/repDim/]],
    ['an unknown net', (m) => { m.net = 'resnet18'; }, [/net/]],
    ['an unknown kind', (m) => { m.kind = 'forest'; }, [/kind/]],
    ['another version', (m) => { m.version = 2; }, [/version/]],
    ['objective unknown', (m) => { m.objective = 'foo'; }, [/objective/]],
    ['gaussian of another dimension', (m) => { m.gaussian.d = 31; }, [/gaussian/]],
    ['gaussian covariance with a string', (m) => { m.gaussian.covariance[0] = 'x'; }, [/gaussian/]],
    ['decision score mahalanobis without a Gaussian', (m) => { m.gaussian = null; }, [/mahalanobis/]],
    ['normalClass 12', (m) => { m.normalClass = 12; }, [/normalClass/]],
    ['several problems', (m) => { m.radiusR = -1; m.centerC = [1]; delete m.preprocessing; }, [/radiusR/, /centerC/, /preprocessing/]],
  ];
  for (const [what, edit, patterns] of cases) {
    it(`${what}: predict and test refuse it in one line per problem`, async () => {
      const dir = variant(what.replace(/\W+/g, '_'), edit);
      const p = await runCli(['predict', '--model', dir, '--input', png, '--threads', '1']);
      expectOneLine(p, /model\.json/, ...patterns);
      expect(p.out).to.equal('');
      const t = await runCli(['test', '--model', dir, '--threads', '1', '--test-subset', '300']);
      expectOneLine(t, /model\.json/, ...patterns);
      expect(existsSync(join(dir, 'test_results.json'))).to.equal(false);
    });
  }
  it('NET_SHAPES agree with the networks themselves', () => {
    for (const name of NET_NAMES) {
      const enc = buildEncoder(name);
      expect([[...enc.inputShape], enc.repDim], name).to.deep.equal([[...NET_SHAPES[name].inputShape], NET_SHAPES[name].repDim]);
    }
  });
  it('the saved model itself loads (predict exits 0)', async () => {
    const p = await runCli(['predict', '--model', model, '--input', png, '--threads', '1']);
    expect(p.code, p.err).to.equal(0);
  });
});

describe('the quick preset: a demo that is meaningful and says it is a demo', function () {
  this.timeout(300000);
  it('MNIST class 1, seed 7 (AUROC 45 with 3 + 3 epochs) is well above chance, and the log says demo setting', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svdd-quick-'));
    try {
      const r = await runCli(['train', '--preset', 'quick', '--normal-class', '1', '--seed', '7', '--threads', '1', '--out', join(dir, 'run')]);
      expect(r.code, r.err).to.equal(0);
      expect(r.out).to.match(/preset quick.*demo setting/);
      const auroc = JSON.parse(readFileSync(join(dir, 'run', 'results.json'), 'utf8')).evaluation.metrics.auroc as number;
      expect(auroc).to.be.above(0.9);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });
});

describe('validation: SVDD_THREADS for svdd study run', function () {
  this.timeout(60000);
  it('is one line before any cell runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svdd-study-threads-'));
    try {
      const r = await runCli(['study', 'run', 'smoke', '--out', join(dir, 's'), '--threads', '1'], { SVDD_THREADS: 'abc' });
      expectOneLine(r, /SVDD_THREADS/);
      expect(existsSync(join(dir, 's', 'failed'))).to.equal(false);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });
});
