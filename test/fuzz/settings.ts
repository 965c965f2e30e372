/**
 * Fuzz campaigns for the readers of settings (issue 11): model.json, training config files and
 * `svdd train` flags. Properties: a rejection is the project's own error with non-empty lines and
 * no stack; an accepted model.json has every field the scorer relies on, finite; an accepted
 * config passes validation and has only finite numbers, and nothing here trains or writes.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildTrainConfig, trainParseOptions, TRAIN_FLAGS } from '../../src/cli/train-flags.ts';
import { configSchemaProblems, defaultConfig, validateConfig } from '../../src/svdd/config.ts';
import { checkModelMeta, ModelError } from '../../src/svdd/model.ts';
import { UsageError } from '../../src/cli/usage-error.ts';

export const RUNS = Number(process.env.SVDD_FUZZ_RUNS ?? 60);
const SEED = process.env.SVDD_FUZZ_SEED !== undefined ? Number(process.env.SVDD_FUZZ_SEED) : 11;

/** The checks every rejection must pass: the project's error class, readable lines, no stack. */
function rejectedCleanly(e: unknown, classes: (new (...a: never[]) => Error)[], what: string): void {
  if (!classes.some((c) => e instanceof c)) throw new Error(`${what}: non-domain error ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}\n${(e as Error)?.stack ?? ''}`);
  const lines = (e as Error).message.split('\n');
  for (const l of lines) {
    expect(l.trim(), `${what}: empty line in ${JSON.stringify((e as Error).message)}`).to.not.equal('');
    expect(l, `${what}: stack frame in the message`).to.not.match(/^\s+at /);
    expect(l.length, `${what}: line too long`).to.be.at.most(600);
  }
}

/** Values of every JSON type, including the awkward ones (NaN-ish strings, huge numbers, nesting). */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1e308, -1e308, 1e-320, 0.5, 2 ** 53 + 1, 'NaN', 'Infinity', '', 'abc', '1', 'false', [], {}),
  fc.double(), fc.integer(), fc.string({ maxLength: 12 }), fc.array(fc.oneof(fc.double(), fc.integer(), fc.string({ maxLength: 4 })), { maxLength: 40 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.integer(), fc.string({ maxLength: 4 })), { maxKeys: 3 }),
);

// ---------------------------------------------------------------------------------------------
// model.json: a valid one (built here, an encoder of mnist_LeNet) with fields deleted, replaced or added.

const validMeta = (): Record<string, unknown> => ({
  format: 'svdd-ts-model', version: 1, kind: 'encoder', net: 'mnist_LeNet', repDim: 32, inputShape: [1, 28, 28],
  dataset: 'mnist', normalClass: 0, objective: 'one-class', nu: 0.1, centerC: Array.from({ length: 32 }, (_, i) => (i % 5) / 10 - 0.2),
  radiusR: 0, hybrid: null, preprocessing: { method: 'gcn-l1+minmax', min: -0.8, max: 9.5 }, gaussian: null,
  thresholds: [{ method: 'quantile', alpha: 0.05, tau: 1.5, score: 'svdd' }], decisionScore: 'svdd', versions: { svddTs: '0.1.0', node: 'v20' },
});
const META_KEYS = Object.keys(validMeta());

const metaEdit = fc.oneof(
  fc.record({ op: fc.constant('delete' as const), key: fc.constantFrom(...META_KEYS) }),
  fc.record({ op: fc.constant('set' as const), key: fc.constantFrom(...META_KEYS, 'extra'), value: anyValue }),
  fc.record({ op: fc.constant('center' as const), index: fc.nat(40), value: anyValue }),
  fc.record({ op: fc.constant('prep' as const), key: fc.constantFrom('method', 'min', 'max'), value: anyValue }),
);
export const metaArb = fc.array(metaEdit, { minLength: 0, maxLength: 4 }).map((edits) => {
  const m = validMeta();
  for (const e of edits) {
    if (e.op === 'delete') delete m[e.key];
    else if (e.op === 'set') m[e.key] = e.value;
    else if (e.op === 'center' && Array.isArray(m.centerC)) (m.centerC as unknown[])[e.index] = e.value;
    else if (e.op === 'prep' && m.preprocessing && typeof m.preprocessing === 'object') (m.preprocessing as Record<string, unknown>)[e.key] = e.value;
  }
  return m;
});

export function probeModelMeta(m: unknown): void {
  let meta;
  try { meta = checkModelMeta(JSON.parse(JSON.stringify(m)) as unknown, 'model.json'); } catch (e) { rejectedCleanly(e, [ModelError], 'model.json'); return; }
  expect(meta.centerC).to.have.length(meta.repDim);
  for (const v of meta.centerC) expect(Number.isFinite(v), 'centerC finite').to.equal(true);
  expect(Number.isFinite(meta.radiusR) && meta.radiusR >= 0, 'radiusR').to.equal(true);
  if (meta.preprocessing.method === 'gcn-l1+minmax') expect(meta.preprocessing.max > meta.preprocessing.min, 'max > min').to.equal(true);
  for (const t of meta.thresholds) expect(Number.isFinite(t.tau), 'tau finite').to.equal(true);
}

// ---------------------------------------------------------------------------------------------
// Config files: a JSON object of known and unknown keys with values of any type.

const CONFIG_KEYS = Object.keys(defaultConfig('mnist', 0));
export const configArb = fc.dictionary(fc.oneof(fc.constantFrom(...CONFIG_KEYS), fc.string({ maxLength: 8 })), anyValue, { maxKeys: 5 });

let tmp = '';
function file(name: string, text: string): string {
  if (!tmp) tmp = mkdtempSync(join(tmpdir(), 'svdd-fuzz-settings-'));
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

function checkAccepted(cfg: ReturnType<typeof buildTrainConfig>['cfg']): void {
  expect(validateConfig(cfg), 'an accepted config validates').to.deep.equal([]);
  expect(configSchemaProblems(cfg as unknown as Record<string, unknown>, (k) => k), 'an accepted config has every setting of its type and range').to.deep.equal([]);
  for (const k of ['hybrid', 'pretrain', 'chi2'] as const) expect(typeof cfg[k], k).to.equal('boolean');
  expect(['one-class', 'soft-boundary']).to.include(cfg.objective);
  expect(['adam', 'amsgrad']).to.include(cfg.optimizer);
  for (const [k, v] of Object.entries(cfg)) {
    if (typeof v === 'number') expect(Number.isFinite(v), `${k} finite`).to.equal(true);
    if (Array.isArray(v)) for (const x of v) expect(Number.isFinite(x), `${k} finite`).to.equal(true);
  }
}

export function probeConfig(obj: Record<string, unknown>): void {
  const path = file('config.json', JSON.stringify(obj));
  let r;
  try { r = buildTrainConfig({ config: path }); } catch (e) { rejectedCleanly(e, [UsageError], 'config file'); return; }
  checkAccepted(r.cfg);
}

// ---------------------------------------------------------------------------------------------
// `svdd train` flags: known flags (and a few unknown ones) with arbitrary strings.

const flagNames = TRAIN_FLAGS.map((f) => f.flag).filter((f) => f !== 'config' && f !== 'ae-weights');
const flagValue = fc.oneof(fc.constantFrom('0', '-1', '1', '2', '0.5', '1e308', 'NaN', 'Infinity', '', 'abc', 'true', '1,2', '5,3', '1,,2', ' ', 'paper', 'one-class', 'wasm', '65', '999'), fc.string({ maxLength: 8 }));
export const argvArb = fc.array(fc.oneof(
  fc.tuple(fc.constantFrom(...flagNames, 'nonesuch'), flagValue).map(([f, v]) => (TRAIN_FLAGS.find((x) => x.flag === f)?.kind === 'bool' ? [`--${f}`] : [`--${f}`, v])),
), { maxLength: 4 }).map((parts) => parts.flat());

export function probeArgv(argv: string[]): void {
  let r;
  try {
    let values: Record<string, string | boolean | undefined>;
    try { values = parseArgs({ args: argv, options: trainParseOptions(), strict: true, allowPositionals: false }).values as typeof values; } catch (e) { throw new UsageError((e as Error).message); }
    r = buildTrainConfig(values);
  } catch (e) { rejectedCleanly(e, [UsageError], `flags ${JSON.stringify(argv)}`); return; }
  checkAccepted(r.cfg);
}

export const settingsCampaigns: { name: string; run: (runs: number) => void }[] = [
  { name: 'model.json', run: (runs) => fc.assert(fc.property(metaArb, (m) => { probeModelMeta(m); }), { numRuns: runs, seed: SEED }) },
  { name: 'config file', run: (runs) => fc.assert(fc.property(configArb, (o) => { probeConfig(o); }), { numRuns: runs, seed: SEED }) },
  { name: 'train flags', run: (runs) => fc.assert(fc.property(argvArb, (a) => { probeArgv(a); }), { numRuns: runs, seed: SEED }) },
];
