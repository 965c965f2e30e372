/**
 * A trained model on disk: `model.safetensors` (weights and BatchNorm buffers under PyTorch's
 * names, loadable with safetensors.torch.load_file) plus `model.json` (center c, radius R,
 * preprocessing constants, network, thresholds, versions).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { z } from 'zod';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../tensor/io/safetensors.ts';
import { writeFileAtomic } from '../tensor/io/atomic.ts';
import type { Module } from '../nn/index.ts';
import { DATASET_NAMES, MODEL_DATASETS, loadRaw, type ModelDataset, type RawDataset } from './data/datasets.ts';

export type { ModelDataset };
import { prepareOneClass, type OneClassData, type Preprocessing } from './data/preprocess.ts';
import { Gaussian, type GaussianJSON } from './gaussian.ts';
import { RESIZE_MODES, type ResizeMode } from './data/folder.ts';
import { NET_NAMES, NET_SHAPES, buildAutoencoder, buildEncoder, type NetName } from './networks.ts';
import { svddModel, type SvddModel } from './svdd-model.ts';
import { SvddError } from './errors.ts';
import type { Objective } from './trainer.ts';

export const MODEL_FORMAT = 'svdd-ts-model';

export interface ThresholdRecord { method: 'quantile' | 'chi2'; alpha: number; tau: number; score: 'svdd' | 'mahalanobis' }

/**
 * The decision rule of a model trained without a validation split (so without a calibrated τ):
 * 'contamination': τ = the (1 − contamination) quantile of the training scores (PyOD's rule; the
 * training scores are optimistic, so expect more false alarms than the contamination on new normal
 * data); 'radius': the soft-boundary radius, anomalous when ‖φ(x) − c‖² > R², i.e. score > 0.
 */
export type DecisionRule =
  | { method: 'contamination'; contamination: number; tau: number; score: 'svdd'; trainingImages: number }
  | { method: 'radius'; tau: 0; score: 'svdd'; radiusR: number };

export interface ModelMeta {
  format: typeof MODEL_FORMAT;
  version: 1;
  /** 'encoder': the Deep SVDD network; 'autoencoder': the hybrid model (encoder + decoder). */
  kind: 'encoder' | 'autoencoder';
  net: NetName;
  repDim: number;
  inputShape: [number, number, number];
  dataset: ModelDataset;
  /** The normal class of a labelled dataset (0 for 'arrays', which has no classes). */
  normalClass: number;
  objective: Objective;
  nu: number;
  centerC: number[];
  radiusR: number;
  hybrid: { mu1: number; mu2: number } | null;
  preprocessing: Preprocessing;
  /** Gaussian of the training codes, for the Mahalanobis score (adaptive thresholds). */
  gaussian: GaussianJSON | null;
  /** Label-free decision thresholds fitted on held-out normal data. */
  thresholds: ThresholdRecord[];
  /** The score `svdd predict` uses to decide, when thresholds exist. */
  decisionScore: 'svdd' | 'mahalanobis';
  versions: { svddTs: string; node: string };
  /** Without a validation split: the rule that decides (models saved before it existed have none). */
  decisionRule?: DecisionRule | null;
  /** A --dataset folder model: how its images were fitted to the network's input (data/folder.ts). */
  resize?: ResizeMode;
}

const finite = z.number();
const ThresholdSchema = z.object({
  method: z.enum(['quantile', 'chi2']), alpha: z.number().gt(0).lt(1), tau: finite, score: z.enum(['svdd', 'mahalanobis']),
});
const DecisionRuleSchema = z.discriminatedUnion('method', [
  z.object({ method: z.literal('contamination'), contamination: z.number().gt(0).lte(0.5), tau: finite, score: z.literal('svdd'), trainingImages: z.number().int().min(1) }),
  z.object({ method: z.literal('radius'), tau: z.literal(0), score: z.literal('svdd'), radiusR: z.number().min(0) }),
]);
const PreprocessingSchema = z.discriminatedUnion('method', [
  z.object({ method: z.literal('gcn-l1+minmax'), min: finite, max: finite }).refine((p) => p.max > p.min, 'max must exceed min'),
  z.object({ method: z.literal('none') }),
]);
const GaussianSchema = z.object({
  format: z.literal('svdd-gaussian'), version: z.literal(1), d: z.number().int().min(1), n: z.number().int().min(1),
  mean: z.array(finite), covariance: z.array(finite), shrinkage: z.number().min(0).max(1),
  shrinkageMethod: z.enum(['fixed', 'ledoit-wolf']), ridge: z.number().min(0),
});

/** model.json's schema: types and ranges, then what the fields must agree on (net shapes, dimensions). */
export const ModelMetaSchema = z.object({
  format: z.literal(MODEL_FORMAT),
  version: z.literal(1),
  kind: z.enum(['encoder', 'autoencoder']),
  net: z.enum(NET_NAMES as unknown as [NetName, ...NetName[]]),
  repDim: z.number().int().min(1),
  inputShape: z.tuple([z.number().int().min(1), z.number().int().min(1), z.number().int().min(1)]),
  dataset: z.enum(MODEL_DATASETS as unknown as [ModelDataset, ...ModelDataset[]]),
  normalClass: z.number().int().min(0).max(9),
  objective: z.enum(['one-class', 'soft-boundary']),
  nu: z.number().gt(0).lte(1),
  centerC: z.array(finite),
  radiusR: z.number().min(0),
  hybrid: z.object({ mu1: z.number().min(0), mu2: z.number().min(0) }).nullable(),
  preprocessing: PreprocessingSchema,
  gaussian: GaussianSchema.nullable(),
  thresholds: z.array(ThresholdSchema),
  decisionScore: z.enum(['svdd', 'mahalanobis']),
  versions: z.object({ svddTs: z.string(), node: z.string() }),
  decisionRule: DecisionRuleSchema.nullable().optional(),
  resize: z.enum(RESIZE_MODES as unknown as [ResizeMode, ...ResizeMode[]]).optional(),
});

/**
 * What the fields must agree on (the net's shapes, dimensions, the Gaussian when a score needs it),
 * checked on the raw value so that these problems are listed beside any type problems.
 */
function consistencyProblems(raw: Record<string, unknown>): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  const at = (path: string, message: string): void => { out.push({ path, message }); };
  const netName = raw.net as NetName;
  const net = (NET_NAMES as readonly unknown[]).includes(raw.net) ? NET_SHAPES[netName] : null;
  const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
  if (net) {
    if (isInt(raw.repDim) && raw.repDim !== net.repDim) at('repDim', `must be ${net.repDim}, the code size of ${netName}, got ${raw.repDim}`);
    if (Array.isArray(raw.inputShape) && raw.inputShape.join() !== net.inputShape.join()) at('inputShape', `must be [${net.inputShape}], the input of ${netName}, got [${raw.inputShape.join(',')}]`);
    if (typeof raw.dataset === 'string' && (DATASET_NAMES as readonly string[]).includes(raw.dataset) && (raw.dataset === 'cifar10') !== (net.inputShape[0] === 3)) at('net', `${netName} does not fit ${raw.dataset} images`);
    if (Array.isArray(raw.centerC) && raw.centerC.length !== net.repDim) at('centerC', `must hold ${net.repDim} finite numbers (the code size of ${netName}), got ${raw.centerC.length}`);
  }
  if ((raw.kind === 'autoencoder' && raw.hybrid === null) || (raw.kind === 'encoder' && raw.hybrid !== null && raw.hybrid !== undefined)) {
    at('kind', `'${String(raw.kind)}' needs hybrid ${raw.kind === 'autoencoder' ? 'weights {mu1, mu2}' : 'null'}`);
  }
  const g = raw.gaussian as Partial<GaussianJSON> | null | undefined;
  if (g && typeof g === 'object') {
    if (net && isInt(g.d) && g.d !== net.repDim) at('gaussian.d', `must be ${net.repDim}, the code size, got ${g.d}`);
    if (isInt(g.d) && Array.isArray(g.mean) && g.mean.length !== g.d) at('gaussian.mean', `must hold d = ${g.d} numbers, got ${g.mean.length}`);
    if (isInt(g.d) && Array.isArray(g.covariance) && g.covariance.length !== g.d * g.d) at('gaussian.covariance', `must hold d² = ${g.d * g.d} numbers, got ${g.covariance.length}`);
  }
  if (!g) {
    if (raw.decisionScore === 'mahalanobis') at('decisionScore', "'mahalanobis' needs a gaussian, and there is none");
    if (Array.isArray(raw.thresholds)) {
      raw.thresholds.forEach((t: unknown, i) => {
        if (t && typeof t === 'object' && (t as { score?: unknown }).score === 'mahalanobis') at(`thresholds.${i}.score`, "'mahalanobis' needs a gaussian, and there is none");
      });
    }
  }
  return out;
}

/** Validates a parsed model.json; one line per problem, each naming the file and the field. */
export function checkModelMeta(value: unknown, source: string): ModelMeta {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ModelError(`${source}: expected a JSON object`);
  const format = (value as { format?: unknown }).format;
  if (format !== MODEL_FORMAT) throw new ModelError(`${source}: not an svdd-ts model (format '${String(format)}')`);
  const r = ModelMetaSchema.safeParse(value, { reportInput: true });
  const lines: string[] = [];
  if (!r.success) {
    for (const i of r.error.issues) {
      const path = i.path.length ? i.path.join('.') : '(top level)';
      if ('input' in i && i.input === undefined) { lines.push(`${source}: ${path}: missing`); continue; }
      let got = 'input' in i ? `, got ${JSON.stringify(i.input)}` : '';
      if (got.length > 80) got = `${got.slice(0, 77)}...`;
      lines.push(`${source}: ${path}: ${i.message.replace(/^Invalid input: /, '').replace(/, received \w+$/, '')}${got}`);
    }
  }
  for (const p of consistencyProblems(value as Record<string, unknown>)) lines.push(`${source}: ${p.path}: ${p.message}`);
  if (lines.length > 0) throw new ModelError([...new Set(lines)].join('\n'));
  return value as ModelMeta;
}

/**
 * Weights that cannot give finite scores: a NaN or infinite value in any tensor, or a negative
 * BatchNorm running variance (its square root is NaN). One line per tensor.
 */
export function weightProblems(tensors: ReadonlyMap<string, { data: ArrayLike<number> }>, source: string): string[] {
  const out: string[] = [];
  for (const [name, t] of tensors) {
    let nonFinite = 0, negative = 0;
    for (let i = 0; i < t.data.length; i++) {
      const v = t.data[i]!;
      if (!Number.isFinite(v)) nonFinite++;
      else if (v < 0) negative++;
    }
    if (nonFinite > 0) out.push(`${source}: ${name} has ${nonFinite} value(s) that are not finite (NaN or ±Infinity); this model cannot give finite scores`);
    if (name.endsWith('running_var') && negative > 0) out.push(`${source}: ${name} has ${negative} negative value(s); a variance cannot be negative`);
  }
  return out;
}

export function packageVersion(): string {
  const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
  return pkg.version;
}

export function stateToTensors(m: Module): Record<string, TensorToWrite> {
  const out: Record<string, TensorToWrite> = {};
  for (const [name, t] of m.stateDict()) out[name] = { dtype: t.dtype === 'float64' ? 'F64' : 'F32', shape: [...t.shape], data: t.values() };
  return out;
}

export function saveModel(dir: string, net: Module, meta: ModelMeta): void {
  writeSafetensors(join(dir, 'model.safetensors'), stateToTensors(net), { format: MODEL_FORMAT, net: meta.net, kind: meta.kind });
  writeFileAtomic(join(dir, 'model.json'), `${JSON.stringify(meta, null, 2)}\n`);
}

/** A model directory or model.json that cannot be used (missing, incomplete, invalid). */
export class ModelError extends SvddError {}

export function loadModel(dir: string): SvddModel {
  const metaPath = join(dir, 'model.json'), weightsPath = join(dir, 'model.safetensors');
  if (!existsSync(metaPath) || !existsSync(weightsPath)) {
    throw new ModelError(`${dir} holds no complete model (expected model.json and model.safetensors; was the run interrupted?)`);
  }
  // A run directory (config.json is its first file) is complete only with results.json, written
  // last; a directory with a model and no run (DeepSVDD.save) is complete with model.json, written last.
  if (existsSync(join(dir, 'config.json')) && !existsSync(join(dir, 'results.json'))) {
    throw new ModelError(`${dir} holds an incomplete run (no results.json: it was interrupted or failed); rerun it (svdd train --out ${dir} replaces it) or continue it (svdd train --resume ${dir})`);
  }
  let parsed: unknown;
  try { parsed = JSON.parse(readFileSync(metaPath, 'utf8')); } catch (e) {
    throw new ModelError(`${metaPath}: not valid JSON (${(e as Error).message})`);
  }
  const meta = checkModelMeta(parsed, metaPath);
  if (meta.gaussian) {
    // Refactorised here, so that a covariance that is not positive definite is refused on load.
    try { Gaussian.fromJSON(meta.gaussian); } catch (e) { throw new ModelError(`${metaPath}: gaussian: ${(e as Error).message}`); }
  }
  const file = readSafetensors(weightsPath);
  const values = new Map<string, { shape: readonly number[]; data: ArrayLike<number> }>();
  for (const [name, t] of file.tensors) values.set(name, { shape: t.shape, data: t.data });
  const broken = weightProblems(values, weightsPath);
  if (broken.length > 0) throw new ModelError(broken.join('\n'));
  try {
    const net = meta.kind === 'autoencoder' ? buildAutoencoder(meta.net) : buildEncoder(meta.net);
    net.loadStateDict(values);
    net.eval();
    return svddModel(meta, net);
  } catch (e) {
    throw new ModelError(`${weightsPath}: does not match network ${meta.net}: ${(e as Error).message}`);
  }
}

/** The data directory and test subset of the run in `dir` (its config.json), each only when usable; {} when it has none. */
export function readRunConfig(dir: string): { dataDir?: string; testSubset?: number } {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) return {};
  let v: unknown;
  try { v = JSON.parse(readFileSync(path, 'utf8')); } catch (e) { throw new ModelError(`${path}: not valid JSON (${(e as Error).message})`); }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return {};
  const { dataDir, testSubset } = v as { dataDir?: unknown; testSubset?: unknown };
  return {
    ...(typeof dataDir === 'string' && dataDir !== '' ? { dataDir } : {}),
    // The training config's own bound: a test subset is an integer of at least 2.
    ...(typeof testSubset === 'number' && Number.isInteger(testSubset) && testSubset >= 2 ? { testSubset } : {}),
  };
}

/** The line svdd test and svdd explain print when they take the run's own test subset. */
export function runTestSubsetNote(n: number): string {
  return `test subset: the first ${n} test images, as the run was evaluated (--test-subset N to change it)\n`;
}

/**
 * The one-class data of a saved model's dataset, preprocessed with the constants saved with it
 * (not recomputed), as `svdd test`, `explain` and `report` need to reproduce its scores.
 */
export function loadModelData(meta: ModelMeta, dataDir?: string, testSubset?: number): { raw: RawDataset; data: OneClassData } {
  const prep = meta.preprocessing;
  if (meta.dataset === 'arrays') {
    throw new ModelError('the model was fitted on images given in a program (DeepSVDD.fit), so it has no dataset to be tested on; score images with svdd predict --input, or with decisionFunction');
  }
  const raw = loadRaw(meta.dataset, dataDir, { shape: meta.inputShape, resize: meta.resize ?? 'bilinear' });
  const opts = prep.method === 'none' ? { method: 'none' as const } : { constants: { min: prep.min, max: prep.max } };
  return { raw, data: prepareOneClass(raw, meta.normalClass, { ...opts, testSubset }) };
}
