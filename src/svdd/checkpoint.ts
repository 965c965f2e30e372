/**
 * Training checkpoints: one safetensors file per run directory (`checkpoint.safetensors`, written
 * atomically) holding the model's state dict, Adam's moments, and as JSON metadata the rest of
 * the phase's state (epoch, scheduler, RNG, history, radius) plus what the run needs to continue
 * (stage, center c, pretraining history, the config hash it belongs to). `svdd train --resume`
 * continues from it to the results an uninterrupted run gives (results.json byte-identical).
 */
import { createHash } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Module } from '../nn/index.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../tensor/io/safetensors.ts';
import type { TrainConfig } from './config.ts';
import type { EpochRecord, PhaseState } from './trainer.ts';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
const FORMAT = 'svdd-ts-checkpoint';

/** What the run has finished: 'pretrain' (inside pretraining) or 'train' (pretraining done, inside Deep SVDD / hybrid training). */
export interface RunCheckpoint {
  stage: 'pretrain' | 'train';
  configHash: string;
  state: PhaseState;
  /** Model state by name (the autoencoder in pretraining and hybrid training, else the encoder). */
  model: Map<string, { shape: readonly number[]; data: ArrayLike<number> }>;
  centerC: number[] | null;
  pretrainHistory: EpochRecord[];
  /** Where it ran: the same backend and thread count reproduce the uninterrupted run bit for bit. */
  backend: string;
  threads: number | null;
  /**
   * Wall seconds the run had taken when the checkpoint was written, over every process that
   * worked on it, so that a resumed run's timings count the time before the resume (0 in
   * checkpoints written before this was recorded).
   */
  seconds: number;
}

/** The settings that determine a run's numbers (where it runs and where its files are do not). */
export function trainConfigHash(cfg: TrainConfig): string {
  const { backend: _b, threads: _t, dataDir: _d, aeWeights: _a, ...rest } = cfg;
  const keys = Object.keys(rest).sort();
  return createHash('sha256').update(JSON.stringify(rest, keys)).digest('hex').slice(0, 16);
}

const f32 = (a: ArrayLike<number>): 'F32' | 'F64' => (a instanceof Float64Array ? 'F64' : 'F32');

export function writeCheckpoint(dir: string, ck: Omit<RunCheckpoint, 'model'> & { net: Module }): void {
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, t] of ck.net.stateDict()) tensors[`model.${name}`] = { dtype: t.dtype === 'float64' ? 'F64' : 'F32', shape: [...t.shape], data: t.values() };
  const { adam } = ck.state;
  const moments: [string, ArrayLike<number>[]][] = [['m', adam.expAvg], ['v', adam.expAvgSq], ['vmax', adam.maxExpAvgSq]];
  for (const [tag, list] of moments) list.forEach((a, k) => { tensors[`adam.${tag}.${k}`] = { dtype: f32(a), shape: [a.length], data: a }; });
  const { expAvg: _m, expAvgSq: _v, maxExpAvgSq: _x, ...adamRest } = adam;
  const json = {
    stage: ck.stage, configHash: ck.configHash, centerC: ck.centerC, pretrainHistory: ck.pretrainHistory, backend: ck.backend, threads: ck.threads, seconds: ck.seconds,
    state: { ...ck.state, adam: { ...adamRest, counts: moments.map(([, l]) => l.length) } },
  };
  writeSafetensors(join(dir, CHECKPOINT_FILE), tensors, { format: FORMAT, state: JSON.stringify(json) });
}

export function hasCheckpoint(dir: string): boolean { return existsSync(join(dir, CHECKPOINT_FILE)); }

export function removeCheckpoint(dir: string): void { rmSync(join(dir, CHECKPOINT_FILE), { force: true }); }

export function readCheckpoint(dir: string): RunCheckpoint {
  const path = join(dir, CHECKPOINT_FILE);
  const file = readSafetensors(path);
  if (file.metadata.format !== FORMAT || typeof file.metadata.state !== 'string') throw new Error(`${path}: not an svdd-ts checkpoint`);
  const j = JSON.parse(file.metadata.state) as Omit<RunCheckpoint, 'model' | 'state'> & { state: Omit<PhaseState, 'adam'> & { adam: { stepCount: number; lr: number; counts: number[] } } };
  const model = new Map<string, { shape: readonly number[]; data: ArrayLike<number> }>();
  for (const [name, t] of file.tensors) if (name.startsWith('model.')) model.set(name.slice(6), { shape: t.shape, data: t.data });
  const list = (tag: string, n: number): ArrayLike<number>[] => Array.from({ length: n }, (_, k) => {
    const t = file.tensors.get(`adam.${tag}.${k}`);
    if (!t) throw new Error(`${path}: missing adam.${tag}.${k}`);
    return t.data;
  });
  const [nm, nv, nx] = j.state.adam.counts as [number, number, number];
  return {
    stage: j.stage, configHash: j.configHash, centerC: j.centerC, pretrainHistory: j.pretrainHistory, backend: j.backend, threads: j.threads, model,
    seconds: typeof j.seconds === 'number' && Number.isFinite(j.seconds) && j.seconds >= 0 ? j.seconds : 0,
    state: { ...j.state, adam: { stepCount: j.state.adam.stepCount, lr: j.state.adam.lr, expAvg: list('m', nm), expAvgSq: list('v', nv), maxExpAvgSq: list('vmax', nx) } },
  };
}
