/**
 * Fitting a Deep SVDD model in memory: pretraining, the center, Deep SVDD (or hybrid) training,
 * the Gaussian of the codes, and the label-free thresholds (or the decision rule without a
 * validation split). No file is read or written here: `svdd train` (run.ts) adds the run
 * directory, checkpoints and the test-set evaluation around it, and the DeepSVDD estimator
 * (src/api) calls it on arrays.
 */
import { Rng } from '../tensor/creation.ts';
import type { Module } from '../nn/index.ts';
import type { TrainConfig } from './config.ts';
import type { ImageSet } from './batches.ts';
import type { RunCheckpoint } from './checkpoint.ts';
import type { Preprocessing } from './data/preprocess.ts';
import type { ResizeMode } from './data/folder.ts';
import { detectCollapse, scoreImages, type Collapse } from './evaluate.ts';
import { fitGaussian } from './gaussian.ts';
import { packageVersion, type DecisionRule, type ModelDataset, type ModelMeta, type ThresholdRecord } from './model.ts';
import { buildAutoencoder, buildEncoder, copyEncoderWeights, type Autoencoder, type Encoder } from './networks.ts';
import { radiusSquared, squaredDistances, svddModel, type SvddModel } from './svdd-model.ts';
import { chi2Threshold, quantileThreshold } from './threshold.ts';
import {
  DivergenceError, dropsLastBatch, encodeAll, initCenter, pretrainAutoencoder, trainHybrid, trainSvdd,
  type EpochRecord, type PhaseCheckpointing, type PhaseState, type TrainHooks,
} from './trainer.ts';

/** The settings that decide a fitted model's numbers (a training config without data, files and backend). */
export type FitSettings = Pick<TrainConfig,
  'net' | 'objective' | 'nu' | 'seed' | 'pretrain' | 'aeEpochs' | 'aeLr' | 'aeMilestones' | 'aeWeightDecay' | 'aeBatchSize'
  | 'epochs' | 'lr' | 'milestones' | 'weightDecay' | 'batchSize' | 'gamma' | 'optimizer' | 'warmUpEpochs'
  | 'hybrid' | 'mu1' | 'mu2' | 'threshold' | 'alpha' | 'shrinkage' | 'chi2' | 'contamination'>
  & { dataset: ModelDataset; normalClass: number; resize?: ResizeMode };

/** Preprocessed images: the normal training images, the held-out normal images (count 0: none) and what was applied. */
export interface FitData { train: ImageSet; val: ImageSet; preprocessing: Preprocessing }

/** Checkpoint saving and resuming (svdd train); the estimator fits without. */
export interface FitCheckpointing {
  every: number;
  resume: RunCheckpoint | null;
  save(stage: RunCheckpoint['stage'], net: Autoencoder | Encoder, centerC: Float64Array | null, pretrainHistory: EpochRecord[], state: PhaseState): void;
}

export interface FitIo {
  /** One line of progress (svdd train writes it to log.txt and the terminal). */
  log(line: string): void;
  hooks?: TrainHooks;
  checkpointing?: FitCheckpointing;
  /**
   * A pretrained autoencoder given instead of pretraining (its weights loaded into `ae`): returns
   * its pretraining history, or null to pretrain.
   */
  givenAutoencoder?(ae: Autoencoder): EpochRecord[] | null;
  /** Called with the autoencoder once it is ready (pretrained or given), before Deep SVDD training. */
  afterPretraining?(ae: Autoencoder, pretrained: boolean): void;
  /** Called when Deep SVDD (or hybrid) training has finished, before the codes are scored. */
  afterTraining?(): void;
  /** Called when training diverged, before the DivergenceError is thrown on. */
  onDivergence?(e: DivergenceError): void;
}

export interface FitResult {
  model: SvddModel;
  radiusR: number;
  pretrainHistory: EpochRecord[];
  trainHistory: EpochRecord[];
  /** ‖φ(x) − c‖² of every training image. */
  trainDistances: Float64Array;
  trainingCollapse: Collapse;
  gaussian: { fittedOn: string; shrinkage: number; ridge: number } | null;
}

/** Runs `f`; a DivergenceError it throws is logged (one line) and reported to io.onDivergence before it is thrown on. */
export function stopOnDivergence<T>(io: FitIo, f: () => T): T {
  try { return f(); } catch (e) {
    if (e instanceof DivergenceError) { io.log(`stopped: ${e.message}`); io.onDivergence?.(e); }
    throw e;
  }
}

/** Fits a Deep SVDD model to `data` with `cfg` on the active backend. */
export function fitSvdd(cfg: FitSettings, data: FitData, io: FitIo): FitResult {
  const { log } = io;
  const trainSet = data.train;
  const ck = io.checkpointing;
  const resume = ck?.resume ?? null;
  const rng = new Rng(cfg.seed);
  const hooks: TrainHooks = {
    onBatch: io.hooks?.onBatch,
    onEpoch: (phase, rec, epochs) => {
      // The caller's hook first: a progress bar is cleared before the epoch's line is printed.
      io.hooks?.onEpoch?.(phase, rec, epochs);
      log(`[${phase}] epoch ${rec.epoch}/${epochs} loss ${rec.loss.toPrecision(6)}${rec.radius !== undefined ? ` R ${rec.radius.toPrecision(4)}` : ''}${rec.svddLoss !== undefined ? ` (svdd ${rec.svddLoss.toPrecision(5)}, recon ${rec.reconLoss!.toPrecision(5)})` : ''} lr ${rec.lr.toExponential(1)} ${rec.seconds.toFixed(2)} s`);
    },
  };
  const optim = (pre: boolean) => pre
    ? { epochs: cfg.aeEpochs, lr: cfg.aeLr, milestones: cfg.aeMilestones, gamma: cfg.gamma, weightDecay: cfg.aeWeightDecay, batchSize: cfg.aeBatchSize, amsgrad: cfg.optimizer === 'amsgrad' }
    : { epochs: cfg.epochs, lr: cfg.lr, milestones: cfg.milestones, gamma: cfg.gamma, weightDecay: cfg.weightDecay, batchSize: cfg.batchSize, amsgrad: cfg.optimizer === 'amsgrad' };
  const logDroppedBatch = (phase: string, net: Module, batchSize: number): void => {
    if (dropsLastBatch(net, trainSet.count, batchSize)) {
      log(`[${phase}] the last batch of 1 image is dropped every epoch (${trainSet.count} = ${Math.floor(trainSet.count / batchSize)} × ${batchSize} + 1): BatchNorm1d cannot train on one sample (PyTorch: drop_last)`);
    }
  };
  const phaseCheckpointing = (stage: RunCheckpoint['stage'], net: Autoencoder | Encoder, centerC: Float64Array | null, pretrainHistory: EpochRecord[]): PhaseCheckpointing | undefined =>
    (ck && ck.every > 0
      ? { every: ck.every, save: (state) => ck.save(stage, net, centerC, pretrainHistory, state), resume: resume?.stage === stage ? resume.state : undefined }
      : undefined);

  let ae: Autoencoder | null = null;
  let pretrainHistory: EpochRecord[] = [];
  if (cfg.pretrain) {
    ae = buildAutoencoder(cfg.net, { seed: `${cfg.seed}/ae` });
    const given = io.givenAutoencoder?.(ae) ?? null;
    if (given) {
      pretrainHistory = given;
    } else {
      if (resume) ae.loadStateDict(resume.model);
      else log(`pretraining autoencoder: ${cfg.aeEpochs} epochs, lr ${cfg.aeLr}, milestones [${cfg.aeMilestones}], weight decay ${cfg.aeWeightDecay}, batch ${cfg.aeBatchSize}`);
      logDroppedBatch('pretrain', ae, cfg.aeBatchSize);
      const pae = ae;
      pretrainHistory = stopOnDivergence(io, () => pretrainAutoencoder(pae, trainSet, optim(true), rng.child('pretrain'), hooks, phaseCheckpointing('pretrain', pae, null, [])));
    }
    io.afterPretraining?.(ae, given === null);
  }

  // The scoring network: the Deep SVDD encoder, or for the hybrid the whole autoencoder.
  let scoring: { net: Encoder | Autoencoder; encode: SvddModel['encode'] };
  let enc: Encoder | null = null;
  if (cfg.hybrid) {
    const hae = ae!;
    scoring = { net: hae, encode: (x) => hae.encode(x) };
  } else {
    enc = buildEncoder(cfg.net, { seed: `${cfg.seed}/net` });
    if (ae) copyEncoderWeights(ae, enc);
    const e = enc;
    scoring = { net: e, encode: (x) => e.forward(x) };
  }
  const trainResume = resume?.stage === 'train' ? resume : null;
  let centerC: Float64Array;
  if (trainResume) {
    centerC = Float64Array.from(trainResume.centerC!);
    scoring.net.loadStateDict(trainResume.model);
  } else {
    const initialCodes = encodeAll(scoring.encode, scoring.net, trainSet);
    centerC = initCenter(initialCodes, trainSet.count);
    log(`center c: mean of ${trainSet.count} initial codes (eval mode), |c_i| < 0.1 pushed to ±0.1; ||c|| = ${Math.hypot(...centerC).toPrecision(5)}`);
  }

  let radiusR = 0;
  let trainHistory: EpochRecord[];
  if (!trainResume) log(`training: ${cfg.epochs} epochs, lr ${cfg.lr}, milestones [${cfg.milestones}], weight decay ${cfg.weightDecay}, batch ${cfg.batchSize}, ${cfg.optimizer}`);
  logDroppedBatch(cfg.hybrid ? 'hybrid' : 'train', scoring.net, cfg.batchSize);
  const trainCk = phaseCheckpointing('train', scoring.net, centerC, pretrainHistory);
  if (cfg.hybrid) {
    trainHistory = stopOnDivergence(io, () => trainHybrid(ae!, trainSet, centerC, { ...optim(false), mu1: cfg.mu1, mu2: cfg.mu2 }, rng.child('train'), hooks, trainCk));
  } else {
    const res = stopOnDivergence(io, () => trainSvdd(enc!, trainSet, centerC, { ...optim(false), objective: cfg.objective, nu: cfg.nu, warmUpEpochs: cfg.warmUpEpochs }, rng.child('train'), hooks, trainCk));
    trainHistory = res.history;
    radiusR = res.radiusR;
  }
  io.afterTraining?.();

  const trainCodes = encodeAll(scoring.encode, scoring.net, trainSet);
  const trainDistances = squaredDistances(trainCodes, trainSet.count, centerC);
  const notFinite = trainDistances.findIndex((d) => !Number.isFinite(d));
  if (notFinite >= 0) {
    stopOnDivergence(io, () => { throw new DivergenceError(`${cfg.hybrid ? 'hybrid training' : 'training'} diverged: the code of training image ${notFinite} is not finite; no model was written (lower the learning rate, --lr)`); });
  }
  const trainingCollapse = detectCollapse(trainDistances, 'training distances');
  if (trainingCollapse.detected) log(`WARNING: ${trainingCollapse.reason}`);

  const meta: ModelMeta = {
    format: 'svdd-ts-model', version: 1,
    kind: cfg.hybrid ? 'autoencoder' : 'encoder',
    net: cfg.net, repDim: centerC.length, inputShape: [...trainSet.shape],
    dataset: cfg.dataset, normalClass: cfg.normalClass, objective: cfg.objective, nu: cfg.nu,
    centerC: Array.from(centerC), radiusR,
    hybrid: cfg.hybrid ? { mu1: cfg.mu1, mu2: cfg.mu2 } : null,
    preprocessing: data.preprocessing,
    gaussian: null, thresholds: [], decisionScore: 'svdd',
    versions: { svddTs: packageVersion(), node: process.version },
    ...(cfg.resize !== undefined ? { resize: cfg.resize } : {}),
  };
  const model = svddModel(meta, scoring.net);

  let gaussian: FitResult['gaussian'] = null;
  if (cfg.threshold === 'adaptive') {
    const g = fitGaussian(trainCodes, trainSet.count, centerC.length, { shrinkage: cfg.shrinkage });
    meta.gaussian = g.toJSON();
    meta.decisionScore = 'mahalanobis';
    gaussian = { fittedOn: `training codes of ${trainSet.count} normal images`, shrinkage: g.shrinkage, ridge: g.ridge };
    log(`Gaussian of the training codes: shrinkage ${g.shrinkage.toPrecision(3)}, ridge ${g.ridge.toPrecision(3)}`);
  }
  if (data.val.count > 0) {
    // Thresholds are calibrated on the held-out validation images, which no gradient step has seen;
    // the Mahalanobis score (adaptive) gets one beside the plain SVDD distance.
    const valScores = scoreImages(model, data.val);
    const quantile = (scores: Float64Array, score: ThresholdRecord['score']): ThresholdRecord => {
      const th = quantileThreshold(scores, cfg.alpha);
      return { method: th.method, alpha: th.alpha, tau: th.tau, score };
    };
    meta.thresholds = [quantile(valScores.svdd, 'svdd')];
    if (valScores.mahalanobis) meta.thresholds.push(quantile(valScores.mahalanobis, 'mahalanobis'));
    if (cfg.chi2 && meta.gaussian) {
      const c2 = chi2Threshold(centerC.length, cfg.alpha);
      meta.thresholds.push({ method: 'chi2', alpha: c2.alpha, tau: c2.tau, score: 'mahalanobis' });
    }
    log(`label-free thresholds (α = ${cfg.alpha}, from ${data.val.count} held-out normal images): ${meta.thresholds.map((th) => `${th.score}/${th.method} τ = ${th.tau.toPrecision(5)}`).join(', ')}`);
  } else {
    // No validation split, so no calibrated τ: the documented rule (README, "Decisions").
    meta.decisionRule = decisionRuleOf(cfg, trainDistances, radiusR);
    const r = meta.decisionRule;
    log(`decision rule (no validation split): ${r.method === 'radius' ? `the soft-boundary radius, anomalous when ||φ(x) − c||² > R² = ${(radiusR * radiusR).toPrecision(5)}` : `τ = ${r.tau.toPrecision(5)}, the (1 − c) quantile of the ${r.trainingImages} training scores, contamination ${r.contamination}`}`);
  }
  return { model, radiusR, pretrainHistory, trainHistory, trainDistances, trainingCollapse, gaussian };
}

/** The contamination a model trained without a validation split decides with by default (PyOD's). */
export const DEFAULT_CONTAMINATION = 0.1;

/**
 * The decision rule without a validation split: a contamination c gives τ = the (1 − c) quantile of
 * the training scores (the SVDD score: the distance, minus R² for soft-boundary); without it a
 * soft-boundary model decides with its radius (score > 0) and any other with c = 0.1.
 */
export function decisionRuleOf(cfg: Pick<TrainConfig, 'contamination' | 'objective'>, trainDistances: Float64Array, radiusR: number): DecisionRule {
  if (cfg.contamination === undefined && cfg.objective === 'soft-boundary') return { method: 'radius', tau: 0, score: 'svdd', radiusR };
  const c = cfg.contamination ?? DEFAULT_CONTAMINATION;
  const r2 = radiusSquared({ objective: cfg.objective, radiusR });
  const scores = trainDistances.map((d) => d - r2);
  return { method: 'contamination', contamination: c, tau: quantileThreshold(scores, c).tau, score: 'svdd', trainingImages: scores.length };
}
