/**
 * The package as a user gets it: `npm pack` (which builds dist/ first, the prepare script) is
 * installed into an empty project and used from there by plain `node`, with no tsx and no access to
 * this repository's sources. The install is offline whenever npm's cache holds the dependencies (it
 * does after `npm ci`): the project's lockfile is this repository's, without the dev dependencies,
 * so npm installs exactly the versions the tests here ran against.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  Adam, Linear, Module, Rng, backward, gradCheck, mean, mul, noGrad, randUniform, readSafetensors, relu, sigmoid,
  square, sub, sum, tensor, writeSafetensors,
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
const net = new Net(1);
const optimizer = new Adam(net.parameters(), { lr: 0.01 });
const losses = [];
for (let step = 0; step < 300; step++) {
  net.zeroGrad();
  const loss = mean(square(sub(net.call(x), y)));
  backward(loss);
  optimizer.step();
  losses.push(loss.item());
}

const file = process.argv[2];
writeSafetensors(file, Object.fromEntries([...net.stateDict()].map(([name, t]) => [name, { dtype: 'F32', shape: [...t.shape], data: t.values() }])));
const again = new Net(2);
again.loadStateDict(readSafetensors(file).tensors);
const [a, b, graphFree] = noGrad(() => { const out = net.call(x); return [out.values(), again.call(x).values(), out.gradNode === null]; });

const check = gradCheck((p, q) => sum(mul(sigmoid(p), q)), [tensor([0.1, -0.2, 0.3], [3], 'float64'), tensor([1, 2, 3], [3], 'float64')]);
console.log(JSON.stringify({ first: losses[0], last: losses.at(-1), reloaded: a.every((v, i) => v === b[i]), graphFree, gradError: check.maxError }));
`;

/** The same names used from TypeScript, type-checked against the shipped .d.ts with the library checks on. */
const TYPED_CONSUMER = `
import { Adam, Linear, backward, mean, square, sub, tensor, type SafeFile, type Tensor } from 'svdd-ts';
const layer = new Linear(2, 1);
const x: Tensor = tensor([1, 2, 3, 4], [2, 2]);
const loss: Tensor = mean(square(sub(layer.call(x), tensor([1, 0], [2, 1]))));
backward(loss);
new Adam(layer.parameters(), { lr: 0.1 }).step();
const names = (f: SafeFile): string[] => [...f.tensors.keys()];
export const value: number = loss.item() + names.length;
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
    const packed = execFileSync('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: repo, env: plainEnv(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    // The prepack build's output comes first; npm's JSON report is the last thing printed.
    const report = JSON.parse(packed.slice(packed.lastIndexOf('\n[') + 1)) as { filename: string; files: { path: string }[] }[];
    packedFiles = report[0]!.files.map((f) => f.path);
    writeConsumerProject(project, join(tmp, report[0]!.filename));
    execFileSync('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: project, env: plainEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  });

  after(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

  it('ships the build and nothing of the sources or tests', () => {
    expect(packedFiles).to.include.members(['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/bin.js']);
    const stray = packedFiles.filter((p) => !(p === 'package.json' || p === 'README.md' || p === 'LICENSE' || (p.startsWith('dist/') && /\.(js|d\.ts)$/.test(p))));
    expect(stray, 'files outside dist/').to.deep.equal([]);
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

  it('builds, trains, saves and reloads a small network through the engine layer, from plain node', () => {
    writeFileSync(join(project, 'engine.mjs'), ENGINE_SCRIPT);
    const run = spawnSync(process.execPath, ['engine.mjs', join(tmp, 'net.safetensors')], { cwd: project, env: plainEnv(), encoding: 'utf8' });
    expect(run.stderr).to.equal('');
    expect(run.status).to.equal(0);
    const r = JSON.parse(run.stdout) as { first: number; last: number; reloaded: boolean; graphFree: boolean; gradError: number };
    expect(r.last).to.be.below(r.first / 5);
    expect(r.reloaded).to.equal(true);
    expect(r.graphFree).to.equal(true);
    expect(r.gradError).to.be.below(1e-6);
  });

  it('installs the svdd command, which runs the build', () => {
    const bin = join(project, 'node_modules', '.bin', 'svdd');
    const help = spawnSync(bin, ['--help'], { cwd: project, env: plainEnv(), encoding: 'utf8' });
    expect(help.status).to.equal(0);
    expect(help.stdout).to.match(/^svdd: Deep SVDD/);
    const version = spawnSync(bin, ['--version'], { cwd: project, env: plainEnv(), encoding: 'utf8' });
    expect(version.stdout.trim()).to.equal(`svdd-ts ${(JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version}`);
  });
});
