/**
 * Training procedures of Deep SVDD (Ruff et al. 2018): autoencoder pretraining, the center rule,
 * the one-class and soft-boundary objectives with the radius rule, and the hybrid objective
 * (SVDD + reconstruction trained jointly). Networks, data and reporting live elsewhere.
 */
import * as ag from '../autograd/index.ts';
import { Rng, tensor, type RngState } from '../tensor/creation.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { Adam, MultiStepLR, tidy, trainStep, type AdamState, type Module } from '../nn/index.ts';
import type { Autoencoder, Encoder } from './networks.ts';
import { batchCount, batches, type ImageSet } from './batches.ts';
import { quantileLinear } from './metrics.ts';
import { SvddError } from './errors.ts';
import { combinedScoreTensor, squaredDistance } from './svdd-model.ts';

export type Objective = 'one-class' | 'soft-boundary';

export interface OptimConfig {
  epochs: number;
  lr: number;
  milestones: number[];
  gamma: number;
  weightDecay: number;
  batchSize: number;
  amsgrad: boolean;
}

/**
 * Training diverged: a loss or a weight stopped being a finite number. The run stops, says so in one
 * line and writes no model (see runTraining).
 */
export class DivergenceError extends SvddError {}

/** 'pretraining', 'training' or 'hybrid training': the phase's name in messages. */
export const phaseName = (phase: string): string => (phase === 'pretrain' ? 'pretraining' : phase === 'train' ? 'training' : `${phase} training`);
const lowerLr = (phase: string): string => `lower the learning rate, ${phase === 'pretrain' ? '--ae-lr' : '--lr'}`;

/** Throws DivergenceError when any parameter or buffer of `model` holds NaN or ±Infinity. */
export function checkFiniteWeights(model: Module, phase: string, when: string): void {
  for (const [name, t] of model.stateDict()) {
    const v = t.values();
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i]!)) {
        throw new DivergenceError(`${phaseName(phase)} diverged: ${name} holds ${v[i]} ${when}; no model was written (${lowerLr(phase)})`);
      }
    }
  }
}

export interface EpochRecord { epoch: number; loss: number; lr: number; seconds: number; radius?: number; svddLoss?: number; reconLoss?: number }

export interface TrainHooks {
  onBatch?(phase: string, epoch: number, batch: number, batches: number, loss: number): void;
  onEpoch?(phase: string, rec: EpochRecord, epochs: number): void;
}

/** Per-sample reconstruction error Σ (x̂ − x)² over all pixels, as a [b] tensor. */
export function reconstructionError(xhat: Tensor, x: Tensor): Tensor {
  return ag.sum(ag.reshape(ag.square(ag.sub(xhat, x)), [x.shape[0]!, -1]), 1);
}

/** Soft-boundary loss R² + (1/ν)·mean(max(0, d − R²)). */
export function softBoundaryLoss(dist: Tensor, radiusR: number, nu: number): Tensor {
  const r2 = radiusR * radiusR;
  return ag.addScalar(ag.scale(ag.mean(ag.relu(ag.addScalar(dist, -r2))), 1 / nu), r2);
}

/** The radius rule: R = (1 − ν)-quantile of the batch distances ||φ(x) − c|| (not squared). */
export function radiusFromDistances(squaredDistances: ArrayLike<number>, nu: number): number {
  const d = Float64Array.from(squaredDistances, (v) => Math.sqrt(v));
  return quantileLinear(d, 1 - nu);
}

/**
 * A training phase's state after a whole number of epochs: with the model's weights (saved by the
 * caller, see checkpoint.ts) everything needed to continue to the same result as an
 * uninterrupted run.
 */
export interface PhaseState {
  phase: string;
  /** Epochs completed. */
  epoch: number;
  history: EpochRecord[];
  adam: AdamState;
  schedulerEpoch: number;
  rng: RngState;
  /** Phase-specific scalars (the soft-boundary radius). */
  scalars: Record<string, number>;
}

/** Checkpointing of a phase: `save` after every `every` epochs and after the last; `resume` continues a saved state. */
export interface PhaseCheckpointing { every: number; save(state: PhaseState): void; resume?: PhaseState }

/**
 * Whether a training epoch drops its last batch: only when that batch would be smaller than the
 * model can train on (one image for a BatchNorm over features, which PyTorch refuses in training),
 * as PyTorch users set drop_last for that case; every other batch layout is kept as it was.
 */
export function dropsLastBatch(model: Module, count: number, batchSize: number): boolean {
  const min = (model as { minTrainingBatch?: number }).minTrainingBatch ?? 1;
  const last = count % batchSize;
  return min > 1 && last > 0 && last < min && count > batchSize;
}

function runEpochs(phase: string, model: Module, set: ImageSet, cfg: OptimConfig, rng: Rng, hooks: TrainHooks,
                   step: (x: Tensor, epoch: number) => { loss: Tensor; extra?: Partial<EpochRecord> },
                   ckpt?: PhaseCheckpointing, scalars?: { get(): Record<string, number>; set(s: Record<string, number>): void }): EpochRecord[] {
  const opt = new Adam(model.parameters(), { lr: cfg.lr, weightDecay: cfg.weightDecay, amsgrad: cfg.amsgrad });
  const sched = new MultiStepLR(opt, cfg.milestones, cfg.gamma);
  const history: EpochRecord[] = [];
  let first = 0;
  if (ckpt?.resume) {
    const r = ckpt.resume;
    if (r.phase !== phase) throw new Error(`checkpoint of phase '${r.phase}' cannot resume phase '${phase}'`);
    opt.importState(r.adam);
    sched.epoch = r.schedulerEpoch;
    rng = new Rng(rng.seed, r.rng);
    history.push(...r.history);
    scalars?.set(r.scalars);
    first = r.epoch;
  }
  const dropLast = dropsLastBatch(model, set.count, cfg.batchSize);
  const nb = batchCount(set.count, cfg.batchSize) - (dropLast ? 1 : 0);
  model.train();
  for (let epoch = first; epoch < cfg.epochs; epoch++) {
    const t0 = performance.now();
    let lossSum = 0, n = 0, b = 0;
    const extraSums = new Map<string, number>();
    for (const { x } of batches(set, cfg.batchSize, rng)) {
      if (b === nb) break; // the dropped last batch (dropsLastBatch); the shuffle already used the RNG
      // nn's step scope: every value of the step's graph is read inside (the loss, `extra` inside
      // step), so its intermediate buffers go back to the pool for the next step.
      const { loss: l, extra } = trainStep(opt, () => step(x, epoch));
      if (!Number.isFinite(l)) {
        throw new DivergenceError(`${phaseName(phase)} diverged: the loss is ${l} at epoch ${epoch + 1}, batch ${b + 1}; no model was written (${lowerLr(phase)})`);
      }
      lossSum += l; n++;
      for (const [k, v] of Object.entries(extra ?? {})) if (typeof v === 'number') extraSums.set(k, (extraSums.get(k) ?? 0) + v);
      b++;
      hooks.onBatch?.(phase, epoch, b, nb, l);
    }
    const rec: EpochRecord = { epoch: epoch + 1, loss: lossSum / n, lr: opt.lr, seconds: (performance.now() - t0) / 1000 };
    for (const [k, v] of extraSums) (rec as unknown as Record<string, number>)[k] = v / n;
    // A step can leave NaN weights behind a finite loss (the loss is computed before the step):
    // checked before the epoch is reported or checkpointed, so no checkpoint holds a diverged model.
    checkFiniteWeights(model, phase, `after epoch ${epoch + 1}`);
    if (scalars) for (const [k, v] of Object.entries(scalars.get())) if (!Number.isFinite(v)) checkFiniteScalar(phase, k, v, epoch);
    history.push(rec);
    hooks.onEpoch?.(phase, rec, cfg.epochs);
    sched.step();
    if (ckpt && ((epoch + 1) % ckpt.every === 0 || epoch + 1 === cfg.epochs)) {
      ckpt.save({ phase, epoch: epoch + 1, history: history.slice(), adam: opt.exportState(), schedulerEpoch: sched.epoch, rng: rng.state(), scalars: scalars?.get() ?? {} });
    }
  }
  return history;
}

function checkFiniteScalar(phase: string, name: string, v: number, epoch: number): never {
  throw new DivergenceError(`${phaseName(phase)} diverged: ${name} is ${v} after epoch ${epoch + 1}; no model was written (${lowerLr(phase)})`);
}

/** Autoencoder pretraining: minimise mean_i Σ (x̂_i − x_i)². */
export function pretrainAutoencoder(ae: Autoencoder, set: ImageSet, cfg: OptimConfig, rng: Rng, hooks: TrainHooks = {}, ckpt?: PhaseCheckpointing): EpochRecord[] {
  return runEpochs('pretrain', ae, set, cfg, rng, hooks, (x) => ({ loss: ag.mean(reconstructionError(ae.forward(x), x)) }), ckpt);
}

/**
 * Codes of every image in eval mode without recording a graph: [count, repDim] values. Batches
 * default to the training batch size, so their activations reuse the training step's pooled storage.
 * `onBatch` hears the number of images encoded so far after each batch.
 */
export function encodeAll(encode: (x: Tensor) => Tensor, model: Module, set: ImageSet, batchSize = 200, onBatch?: (done: number, total: number) => void): Float64Array {
  const wasTraining = model.training;
  model.eval();
  let out: Float64Array | null = null;
  let offset = 0, done = 0;
  ag.noGrad(() => {
    // Each batch's activations are recycled for the next (see tidy).
    for (const { x } of batches(set, batchSize, null)) {
      tidy(() => {
        const z = encode(x).values();
        out ??= new Float64Array(set.count * (z.length / x.shape[0]!));
        out.set(z, offset);
        offset += z.length;
      });
      done += x.shape[0]!;
      onBatch?.(done, set.count);
    }
  });
  model.train(wasTraining);
  return out ?? new Float64Array(0);
}

/**
 * The center rule: c = mean of the initial network's codes over the training data (eval mode),
 * then coordinates with |c_i| < eps pushed to ±eps, since a coordinate near zero is one a network
 * with zero weights reaches trivially. (The reference leaves an exact 0 at 0; we push it to +eps.)
 */
export function initCenter(codes: Float64Array, count: number, eps = 0.1): Float64Array {
  const d = codes.length / count;
  const c = new Float64Array(d);
  for (let i = 0; i < count; i++) for (let j = 0; j < d; j++) c[j] += codes[i * d + j]!;
  for (let j = 0; j < d; j++) {
    c[j] /= count;
    if (Math.abs(c[j]!) < eps) c[j] = c[j]! < 0 ? -eps : eps;
  }
  return c;
}

export interface SvddConfig extends OptimConfig {
  objective: Objective;
  nu: number;
  /** Epochs before the radius is first updated (soft-boundary). */
  warmUpEpochs: number;
}

export interface SvddResult { history: EpochRecord[]; radiusR: number }

/** Deep SVDD training with c fixed; for soft-boundary, R follows the radius rule after warm-up. */
export function trainSvdd(net: Encoder, set: ImageSet, centerC: Float64Array, cfg: SvddConfig, rng: Rng, hooks: TrainHooks = {}, ckpt?: PhaseCheckpointing): SvddResult {
  const c = tensor(Array.from(centerC), [centerC.length], 'float32');
  let radiusR = 0;
  const history = runEpochs('train', net, set, cfg, rng, hooks, (x, epoch) => {
    const dist = squaredDistance(net.forward(x), c);
    if (cfg.objective === 'one-class') return { loss: ag.mean(dist) };
    const loss = softBoundaryLoss(dist, radiusR, cfg.nu);
    if (epoch >= cfg.warmUpEpochs) radiusR = radiusFromDistances(dist.values(), cfg.nu);
    return { loss, extra: { radius: radiusR } };
  }, ckpt, { get: () => ({ radiusR }), set: (s) => { radiusR = s.radiusR ?? 0; } });
  return { history, radiusR };
}

export interface HybridConfig extends OptimConfig { mu1: number; mu2: number }

/**
 * Hybrid Deep SVDD: one encoder φ shared by the SVDD term and the decoder,
 * loss = μ1·mean ||φ(x) − c||² + μ2·mean ||x − dec(φ(x))||². Every autoencoder parameter is in
 * the optimizer, so the reconstruction term really moves the encoder.
 */
export function trainHybrid(ae: Autoencoder, set: ImageSet, centerC: Float64Array, cfg: HybridConfig, rng: Rng, hooks: TrainHooks = {}, ckpt?: PhaseCheckpointing): EpochRecord[] {
  const c = tensor(Array.from(centerC), [centerC.length], 'float32');
  return runEpochs('hybrid', ae, set, cfg, rng, hooks, (x) => {
    const { loss, svdd, recon } = hybridLoss(ae, x, c, cfg.mu1, cfg.mu2);
    return { loss, extra: { svddLoss: svdd.item(), reconLoss: recon.item() } };
  }, ckpt);
}

export function hybridLoss(ae: Autoencoder, x: Tensor, c: Tensor, mu1: number, mu2: number): { loss: Tensor; svdd: Tensor; recon: Tensor } {
  const z = ae.encode(x);
  const svdd = ag.mean(squaredDistance(z, c));
  const recon = ag.mean(reconstructionError(ae.decode(z), x));
  return { loss: combinedScoreTensor(svdd, recon, { mu1, mu2 }), svdd, recon };
}

/** Reconstruction errors Σ (x̂ − x)² per image in eval mode. */
export function reconstructionScores(ae: Autoencoder, set: ImageSet, batchSize = 200, onBatch?: (done: number, total: number) => void): Float64Array {
  const out = new Float64Array(set.count);
  const was = ae.training;
  ae.eval();
  let o = 0;
  ag.noGrad(() => {
    for (const { x } of batches(set, batchSize, null)) {
      tidy(() => {
        const e = reconstructionError(ae.forward(x), x).values();
        out.set(e, o); o += e.length;
      });
      onBatch?.(o, set.count);
    }
  });
  ae.train(was);
  return out;
}
