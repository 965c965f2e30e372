/**
 * A trained model on disk: `model.safetensors` (weights and BatchNorm buffers under PyTorch's
 * names, loadable with safetensors.torch.load_file) plus `model.json` (center c, radius R,
 * preprocessing constants, network, thresholds, versions).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../tensor/io/safetensors.ts';
import { writeFileAtomic } from '../tensor/io/atomic.ts';
import type { Module } from '../nn/index.ts';
import { loadRaw, type DatasetName, type RawDataset } from './data/datasets.ts';
import { prepareOneClass, type OneClassData, type Preprocessing } from './data/preprocess.ts';
import type { GaussianJSON } from './gaussian.ts';
import { buildAutoencoder, buildEncoder, type Autoencoder, type Encoder, type NetName } from './networks.ts';
import type { Objective } from './trainer.ts';

export const MODEL_FORMAT = 'svdd-ts-model';

export interface ThresholdRecord { method: 'quantile' | 'chi2'; alpha: number; tau: number; score: 'svdd' | 'mahalanobis' }

export interface ModelMeta {
  format: typeof MODEL_FORMAT;
  version: 1;
  /** 'encoder': the Deep SVDD network; 'autoencoder': the hybrid model (encoder + decoder). */
  kind: 'encoder' | 'autoencoder';
  net: NetName;
  repDim: number;
  inputShape: [number, number, number];
  dataset: DatasetName;
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

export class ModelError extends Error {}

export interface LoadedModel { meta: ModelMeta; encoder: Encoder | null; autoencoder: Autoencoder | null; encode: (x: import('../tensor/tensor.ts').Tensor) => import('../tensor/tensor.ts').Tensor; net: Module }

export function loadModel(dir: string): LoadedModel {
  const metaPath = join(dir, 'model.json'), weightsPath = join(dir, 'model.safetensors');
  if (!existsSync(metaPath) || !existsSync(weightsPath)) {
    throw new ModelError(`${dir} holds no complete model (expected model.json and model.safetensors; was the run interrupted?)`);
  }
  let meta: ModelMeta;
  try { meta = JSON.parse(readFileSync(metaPath, 'utf8')) as ModelMeta; } catch (e) {
    throw new ModelError(`${metaPath}: not valid JSON (${(e as Error).message})`);
  }
  if (meta.format !== MODEL_FORMAT) throw new ModelError(`${metaPath}: not an svdd-ts model (format '${String(meta.format)}')`);
  const file = readSafetensors(weightsPath);
  const values = new Map<string, { shape: readonly number[]; data: ArrayLike<number> }>();
  for (const [name, t] of file.tensors) values.set(name, { shape: t.shape, data: t.data });
  try {
    if (meta.kind === 'autoencoder') {
      const ae = buildAutoencoder(meta.net);
      ae.loadStateDict(values);
      ae.eval();
      return { meta, encoder: null, autoencoder: ae, encode: (x) => ae.encode(x), net: ae };
    }
    const enc = buildEncoder(meta.net);
    enc.loadStateDict(values);
    enc.eval();
    return { meta, encoder: enc, autoencoder: null, encode: (x) => enc.forward(x), net: enc };
  } catch (e) {
    throw new ModelError(`${weightsPath}: does not match network ${meta.net}: ${(e as Error).message}`);
  }
}

/**
 * The one-class data of a saved model's dataset, preprocessed with the constants saved with it
 * (not recomputed), as `svdd test`, `explain` and `report` need to reproduce its scores.
 */
export function loadModelData(meta: ModelMeta, dataDir?: string, testSubset?: number): { raw: RawDataset; data: OneClassData } {
  const prep = meta.preprocessing;
  const raw = loadRaw(meta.dataset, dataDir);
  const opts = prep.method === 'none' ? { method: 'none' as const } : { constants: { min: prep.min, max: prep.max } };
  return { raw, data: prepareOneClass(raw, meta.normalClass, { ...opts, testSubset }) };
}
