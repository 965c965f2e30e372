/**
 * The package as a user gets it: `npm pack` (which builds dist/ first, the prepare script) is
 * installed into an empty project and used from there by plain `node`, with no tsx and no access to
 * this repository's sources. The install is offline whenever npm's cache holds the dependencies (it
 * does after `npm ci`): the project's lockfile is this repository's, without the dev dependencies,
 * so npm installs exactly the versions the tests here ran against.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The children's environment: no loader inherited from mocha (`--import tsx`), so they run plain node. */
const plainEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
};

/** Runs npm; a failure is one error carrying what npm and the build printed. */
function npm(args: string[], cwd: string): string {
  const r = spawnSync('npm', args, { cwd, env: plainEnv(), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed (exit ${r.status ?? r.signal}):\n${(r.stdout + r.stderr).slice(-4000)}`);
  return r.stdout;
}

interface LockEntry { dev?: boolean; [key: string]: unknown }
interface Lockfile { name: string; version: string; lockfileVersion: number; packages: Record<string, LockEntry> }

/** A project depending only on the tarball, locked to this repository's production dependencies. */
function writeConsumerProject(dir: string, tarball: string): void {
  const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as Lockfile;
  const own = lock.packages[''];
  if (own === undefined) throw new Error('package-lock.json has no root entry');
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  const spec = `file:${tarball}`;
  const packages: Record<string, LockEntry> = {
    '': { name: 'consumer', dependencies: { 'svdd-ts': spec } },
    'node_modules/svdd-ts': {
      version: own.version, resolved: spec, integrity, license: own.license, dependencies: own.dependencies,
      bin: own.bin, engines: own.engines,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) if (path !== '' && entry.dev !== true) packages[path] = entry;
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies: { 'svdd-ts': spec } }, null, 2));
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify({ name: 'consumer', lockfileVersion: 3, requires: true, packages }, null, 2));
}

/** Every `any` written in the declarations reachable from `entry`, as 'file:line: text'. */
function anyInDeclarations(entry: string): string[] {
  const found: string[] = [];
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    const follow = (specifier: string): void => {
      if (!specifier.startsWith('.')) return;
      const target = resolve(dirname(file), specifier).replace(/\.(ts|js)$/, '.d.ts');
      if (!existsSync(target)) throw new Error(`${file}: '${specifier}' names no declaration file (${target})`);
      queue.push(target);
    };
    const visit = (node: ts.Node): void => {
      if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
        follow(node.moduleSpecifier.text);
      }
      if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
        follow(node.argument.literal.text);
      }
      if (node.kind === ts.SyntaxKind.AnyKeyword) {
        const { line } = source.getLineAndCharacterOfPosition(node.getStart());
        found.push(`${file}:${line + 1}: ${node.parent.getText()}`);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return found;
}

/** Builds, trains, saves and reloads a small network through the package's engine layer. */
const ENGINE_SCRIPT = `
import {
  Adam, Linear, Module, Rng, engine, gradCheck, mean, mul, noGrad, randUniform, readSafetensors, relu, sigmoid,
  square, sub, sum, tensor, trainStep, withBackend, writeSafetensors,
} from 'svdd-ts';

class Net extends Module {
  constructor(seed) {
    super();
    const rng = new Rng(seed);
    this.fc1 = this.registerModule('fc1', new Linear(2, 16, { rng }));
    this.fc2 = this.registerModule('fc2', new Linear(16, 1, { rng }));
  }
  forward(x) { return this.fc2.call(relu(this.fc1.call(x))); }
}

// y = x0·x1 on [-1, 1]²: not linear, so the hidden layer has to learn something.
const x = randUniform([64, 2], -1, 1, new Rng(0));
const xv = x.values();
const y = tensor(Array.from({ length: 64 }, (_, i) => xv[2 * i] * xv[2 * i + 1]), [64, 1]);
const train = (backend) => withBackend(backend, () => {
  const net = new Net(1);
  const optimizer = new Adam(net.parameters(), { lr: 0.01 });
  const losses = [];
  for (let step = 0; step < 300; step++) losses.push(trainStep(optimizer, () => ({ loss: mean(square(sub(net.call(x), y))) })).loss);
  return { net, losses };
}, 1);
const onWasm = await train('wasm');
const { net, losses } = await train('ts');

const file = process.argv[2];
writeSafetensors(file, Object.fromEntries([...net.stateDict()].map(([name, t]) => [name, { dtype: 'F32', shape: [...t.shape], data: t.values() }])));
const again = new Net(2);
again.loadStateDict(readSafetensors(file).tensors);
const [a, b, graphFree] = noGrad(() => { const out = net.call(x); return [out.values(), again.call(x).values(), out.gradNode === null]; });

const check = gradCheck((p, q) => sum(mul(sigmoid(p), q)), [tensor([0.1, -0.2, 0.3], [3], 'float64'), tensor([1, 2, 3], [3], 'float64')]);
await engine.dispose();
console.log(JSON.stringify({
  first: losses[0], last: losses.at(-1), wasmFirst: onWasm.losses[0], wasmLast: onWasm.losses.at(-1),
  reloaded: a.every((v, i) => v === b[i]), graphFree, gradError: check.maxError,
}));
`;

/** Fits, scores, decides, saves, loads and explains with the estimator on images of its own making. */
const ESTIMATOR_SCRIPT = `
import { DeepSVDD, OptionError, SvddError } from 'svdd-ts';

// Own images, not one of the three datasets: 1×28×28 uint8. Normal: a bright square at a random
// place near the centre on a dark background; anomalous: uniform noise.
let seed = 1;
const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
function images(n, anomalous) {
  const data = new Uint8Array(n * 784);
  for (let i = 0; i < n; i++) {
    const dx = Math.floor(rand() * 5), dy = Math.floor(rand() * 5);
    for (let p = 0; p < 784; p++) {
      const y = Math.floor(p / 28), x = p % 28;
      const inSquare = y >= 9 + dy && y < 17 + dy && x >= 9 + dx && x < 17 + dx;
      data[i * 784 + p] = anomalous ? Math.floor(rand() * 256) : inSquare ? 200 + Math.floor(rand() * 56) : Math.floor(rand() * 20);
    }
  }
  return { data, shape: [n, 1, 28, 28] };
}
const train = images(200, false);
const normal = images(20, false), anomalous = images(20, true);
const test = { data: new Uint8Array([...normal.data, ...anomalous.data]), shape: [40, 1, 28, 28] };

const epochs = [];
const model = new DeepSVDD({
  pretrain: { epochs: 2, lr: 1e-3 }, epochs: 3, lr: 1e-3, batchSize: 50, seed: 0, backend: 'wasm', threads: 1,
  threshold: { contamination: 0.05 }, onEpoch: (e) => epochs.push(\`\${e.phase} \${e.epoch}/\${e.epochs}\`),
});
await model.fit(train);
const scores = await model.decisionFunction(test);
const flags = await model.predict(test);
const dir = process.argv[2];
await model.save(dir);
// The same test images as an IDX file, for the installed svdd command to score with the saved model.
const header = new Uint8Array(16);
new DataView(header.buffer).setUint32(0, 0x803);
[40, 28, 28].forEach((v, i) => new DataView(header.buffer).setUint32(4 + 4 * i, v));
const { writeFileSync } = await import('node:fs');
writeFileSync(process.argv[3], new Uint8Array([...header, ...test.data]));
const again = await DeepSVDD.load(dir);
const reloaded = await again.decisionFunction(test);
const explanation = await model.explain({ data: test.data.subarray(0, 2 * 784), shape: [2, 1, 28, 28] }, { method: 'gradcam' });
let optionError = null;
try { new DeepSVDD({ epochs: -1 }); } catch (e) { optionError = { option: e instanceof OptionError, svdd: e instanceof SvddError, message: e.message }; }
const mean = (a) => a.reduce((s, v) => s + v, 0) / a.length;
console.log(JSON.stringify({
  epochs, n: scores.length, scores: Array.from(scores), finite: scores.every(Number.isFinite), normalMean: mean(scores.subarray(0, 20)), anomalousMean: mean(scores.subarray(20)),
  flags: Array.from(flags), threshold: model.threshold, sameAfterLoad: reloaded.every((v, i) => v === scores[i]), sameThreshold: again.threshold === model.threshold,
  mapShape: explanation.shape, mapsFinite: explanation.maps.every(Number.isFinite), optionError,
}));
`;

/** The same names used from TypeScript, type-checked against the shipped .d.ts with the library checks on. */
const TYPED_CONSUMER = `
import { Adam, DeepSVDD, Linear, backward, mean, square, sub, tensor, type ImageArray, type SafeFile, type Tensor } from 'svdd-ts';
const layer = new Linear(2, 1);
const x: Tensor = tensor([1, 2, 3, 4], [2, 2]);
const loss: Tensor = mean(square(sub(layer.call(x), tensor([1, 0], [2, 1]))));
backward(loss);
new Adam(layer.parameters(), { lr: 0.1 }).step();
const names = (f: SafeFile): string[] => [...f.tensors.keys()];
export const value: number = loss.item() + names.length;
export async function score(images: ImageArray): Promise<Float64Array> {
  const model = new DeepSVDD({ net: 'mnist_LeNet', objective: 'soft-boundary', nu: 0.1, threshold: { valFraction: 0.1, alpha: 0.05 } });
  await model.fit(images);
  const flags: Uint8Array = await model.predict(images);
  return flags.length > 0 ? model.decisionFunction(images) : new Float64Array(0);
}
`;

describe('the packed package (npm pack, installed into an empty project)', function () {
  this.timeout(300_000);
  let tmp = '';
  let project = '';
  let packedFiles: string[] = [];

  before(() => {
    tmp = mkdtempSync(join(os.tmpdir(), 'svdd-package-'));
    project = join(tmp, 'project');
    mkdirSync(project);
    const packed = npm(['pack', '--json', '--pack-destination', tmp], repo);
    // The prepack build's output comes first; npm's JSON report is the last thing printed.
    const report = JSON.parse(packed.slice(packed.lastIndexOf('\n[') + 1)) as { filename: string; files: { path: string }[] }[];
    packedFiles = report[0]!.files.map((f) => f.path);
    writeConsumerProject(project, join(tmp, report[0]!.filename));
    npm(['ci', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], project);
  });

  after(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

  it('ships the build and nothing of the sources or tests', () => {
    expect(packedFiles).to.include.members(['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/bin.js']);
    const stray = packedFiles.filter((p) => !(p === 'package.json' || p === 'README.md' || p === 'LICENSE' || (p.startsWith('dist/') && /\.(js|d\.ts)$/.test(p))));
    expect(stray, 'files outside dist/').to.deep.equal([]);
    // The build's command is executable, so `npx svdd` in a checkout runs it (tsc writes 0644).
    expect(statSync(join(repo, 'dist', 'cli', 'bin.js')).mode & 0o111, 'dist/cli/bin.js mode').to.not.equal(0);
    // Installed without dev dependencies: the build must not need tsx at run time.
    expect(existsSync(join(project, 'node_modules', 'tsx')), 'tsx installed in the project').to.equal(false);
  });

  it('has no `any` in the declarations reachable from its entry', () => {
    expect(anyInDeclarations(join(project, 'node_modules', 'svdd-ts', 'dist', 'index.d.ts'))).to.deep.equal([]);
  });

  it('type-checks a strict TypeScript program against its declarations (skipLibCheck off)', () => {
    writeFileSync(join(project, 'typed.ts'), TYPED_CONSUMER);
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false, types: [] },
      files: ['typed.ts'],
    }));
    const tsc = spawnSync(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { env: plainEnv(), encoding: 'utf8' });
    expect(tsc.stdout + tsc.stderr).to.equal('');
    expect(tsc.status).to.equal(0);
  });

  it('builds, trains (ts and wasm backends), saves and reloads a small network through the engine layer, from plain node', () => {
    writeFileSync(join(project, 'engine.mjs'), ENGINE_SCRIPT);
    const run = spawnSync(process.execPath, ['engine.mjs', join(tmp, 'net.safetensors')], { cwd: project, env: plainEnv(), encoding: 'utf8' });
    expect(run.stderr).to.equal('');
    expect(run.status).to.equal(0);
    const r = JSON.parse(run.stdout) as { first: number; last: number; wasmFirst: number; wasmLast: number; reloaded: boolean; graphFree: boolean; gradError: number };
    expect(r.last).to.be.below(r.first / 5);
    // The wasm kernels sum in another order than the reference: the same training, to rounding.
    expect(r.wasmFirst).to.be.closeTo(r.first, 1e-6 * r.first);
    expect(r.wasmLast).to.be.closeTo(r.last, 1e-3 * r.last);
    expect(r.reloaded).to.equal(true);
    expect(r.graphFree).to.equal(true);
    expect(r.gradError).to.be.below(1e-6);
  });

  it('fits, scores, decides, saves, loads and explains with the estimator, from plain node', () => {
    writeFileSync(join(project, 'estimator.mjs'), ESTIMATOR_SCRIPT);
    const run = spawnSync(process.execPath, ['estimator.mjs', join(tmp, 'model'), join(tmp, 'test.idx')], { cwd: project, env: plainEnv(), encoding: 'utf8' });
    expect(run.stderr).to.equal('');
    expect(run.status).to.equal(0);
    const r = JSON.parse(run.stdout) as {
      epochs: string[]; n: number; scores: number[]; finite: boolean; normalMean: number; anomalousMean: number; flags: number[]; threshold: number;
      sameAfterLoad: boolean; sameThreshold: boolean; mapShape: number[]; mapsFinite: boolean; optionError: { option: boolean; svdd: boolean; message: string } | null;
    };
    expect(r.epochs).to.deep.equal(['pretrain 1/2', 'pretrain 2/2', 'train 1/3', 'train 2/3', 'train 3/3']);
    expect(r.n).to.equal(40);
    expect(r.finite).to.equal(true);
    expect(r.anomalousMean).to.be.above(r.normalMean);
    const flagged = (from: number): number => r.flags.slice(from, from + 20).reduce((a, b) => a + b, 0);
    expect(flagged(20), 'anomalous images flagged vs normal ones').to.be.above(flagged(0));
    expect(r.flags.every((f) => f === 0 || f === 1)).to.equal(true);
    expect(r.threshold).to.be.a('number');
    expect(r.sameAfterLoad).to.equal(true);
    expect(r.sameThreshold).to.equal(true);
    expect(r.mapShape).to.deep.equal([2, 28, 28]);
    expect(r.mapsFinite).to.equal(true);
    expect(r.optionError).to.deep.equal({ option: true, svdd: true, message: 'option epochs must be an integer ≥ 0, got -1' });
    // The saved model is the CLI's: the installed command scores the same images to the same numbers.
    const predict = spawnSync(join(project, 'node_modules', '.bin', 'svdd'),
      ['predict', '--model', join(tmp, 'model'), '--input', join(tmp, 'test.idx'), '--json', '--backend', 'wasm', '--threads', '1'],
      { cwd: project, env: plainEnv(), encoding: 'utf8' });
    expect(predict.stderr).to.equal('');
    expect(predict.status).to.equal(0);
    const predictions = (JSON.parse(predict.stdout) as { predictions: { score: number; decision: string }[] }).predictions;
    expect(predictions.map((p) => p.score)).to.deep.equal(r.scores);
    expect(predictions.map((p) => (p.decision === 'anomalous' ? 1 : 0))).to.deep.equal(r.flags);
  });

  it('runs a study on two worker processes from the build, recording no commit of the project it is installed in', () => {
    // The project is a git repository of its own: its commit is not the package's.
    const git = (...args: string[]): void => {
      const r = spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], { cwd: project, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
    };
    git('init', '-q');
    git('commit', '-q', '--allow-empty', '-m', 'a project using svdd-ts');
    const spec = {
      name: 'package-test',
      groups: [{
        dataset: 'mnist', classes: [0, 1], seeds: [0], methods: [{ kind: 'one-class' }],
        protocol: { base: 'quick', aeEpochs: 1, epochs: 1, aeMilestones: [], milestones: [], subset: 200, testSubset: 200 },
      }],
    };
    writeFileSync(join(tmp, 'spec.json'), JSON.stringify(spec));
    const out = join(tmp, 'study');
    const run = spawnSync(join(project, 'node_modules', '.bin', 'svdd'), ['study', 'run', join(tmp, 'spec.json'), '--out', out, '--jobs', '2', '--threads', '1'],
      { cwd: project, env: plainEnv(), encoding: 'utf8' });
    expect(run.status, run.stderr).to.equal(0);
    expect(run.stdout).to.match(/\[job 0\].*1 cells run/s);
    expect(run.stdout).to.match(/\[job 1\].*1 cells run/s);
    const cells = readdirSync(join(out, 'cells'));
    expect(cells).to.have.length(2);
    for (const cell of cells) {
      const record = JSON.parse(readFileSync(join(out, 'cells', cell), 'utf8')) as { versions: { svddTs: string; commit: string | null } };
      expect(record.versions.commit, cell).to.equal(null);
    }
  });

  it('installs the svdd command, which runs the build (and refuses to when sources beside it are newer)', () => {
    const bin = join(project, 'node_modules', '.bin', 'svdd');
    const help = spawnSync(bin, ['--help'], { cwd: project, env: plainEnv(), encoding: 'utf8' });
    expect(help.status).to.equal(0);
    expect(help.stdout).to.match(/^svdd: Deep SVDD/);
    const version = spawnSync(bin, ['--version'], { cwd: project, env: plainEnv(), encoding: 'utf8' });
    expect(version.stdout.trim()).to.equal(`svdd-ts ${(JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version}`);
    // Beside sources edited after it was built (a checkout), the build refuses to answer for them.
    const installed = join(project, 'node_modules', 'svdd-ts');
    mkdirSync(join(installed, 'src', 'cli'), { recursive: true });
    writeFileSync(join(installed, 'src', 'cli', 'main.ts'), 'export {};\n');
    try {
      const stale = spawnSync(bin, ['--version'], { cwd: project, env: plainEnv(), encoding: 'utf8' });
      expect(stale.status).to.equal(2);
      expect(stale.stdout).to.equal('');
      expect(stale.stderr).to.equal(`svdd: this build (dist/) is older than ${join('src', 'cli', 'main.ts')}; run npm run build, or node bin/svdd.js to run the sources\n`);
    } finally {
      rmSync(join(installed, 'src'), { recursive: true, force: true });
    }
  });
});
