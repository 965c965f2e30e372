/**
 * One training run from config to output directory, as Deep-SVDD-PyTorch's main: data,
 * pretraining, Deep SVDD (or hybrid) training, evaluation, and every artefact written atomically:
 * config.json, log.txt, autoencoder.safetensors, model.safetensors + model.json, results.json,
 * timings.json, normals.png / anomalies.png.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RunError } from './errors.ts';
import { COMPLETE_MARKER, LOCK_FILE, fsErrorMessage, isFsError, prepareRunDir } from './run-dir.ts';
import { writeFileAtomic } from '../tensor/io/atomic.ts';
import { readSafetensors, writeSafetensors } from '../tensor/io/safetensors.ts';
import { resolveWasmThreads } from '../tensor/backends.ts';
import { engine, type BackendChoice } from '../tensor/engine.ts';
import { CHECKPOINT_FILE, hasCheckpoint, readCheckpoint, removeCheckpoint, trainConfigHash, writeCheckpoint, type RunCheckpoint } from './checkpoint.ts';
import { loadRaw } from './data/datasets.ts';
import { prepareOneClass, type OneClassData, type Preprocessing } from './data/preprocess.ts';
import type { ImageSet } from './batches.ts';
import type { TrainConfig } from './config.ts';
import { settingName, validateConfig } from './config.ts';
import { detectCollapse, evaluate, rankingMetrics, scoreImages, type EvaluationResult, type TestScores } from './evaluate.ts';
import { stopOnDivergence, type FitIo } from './fit.ts';
import { DeepSVDD, runAccess, type DeepSVDDOptions } from '../api/deep-svdd.ts';
import { imageGridPng, writePngAtomic } from './images.ts';
import { packageVersion, saveModel, stateToTensors, weightProblems } from './model.ts';
import { NET_SHAPES, type Autoencoder } from './networks.ts';
import { DivergenceError, reconstructionScores, type EpochRecord, type TrainHooks } from './trainer.ts';

export interface RunIo {
  /** A line for the log (also written to log.txt). */
  log(line: string): void;
  hooks?: TrainHooks;
}

export function toImageSet(split: { x: Float32Array; count: number }, data: OneClassData): ImageSet {
  return { x: split.x, count: split.count, shape: [data.channels, data.height, data.width] };
}

export interface RunSummary { results: RunResults; outDir: string }

export interface RunResults {
  dataset: string; normalClass: number; net: string; objective: string; hybrid: boolean; seed: number; backend: string;
  counts: { train: number; validation: number };
  preprocessing: Preprocessing;
  radiusR: number;
  trainingCollapse: { detected: boolean; reason: string | null };
  pretrainTestAuroc: number | null;
  evaluation: EvaluationResult;
  gaussian: { fittedOn: string; shrinkage: number; ridge: number } | null;
  history: { pretrain: Omit<EpochRecord, 'seconds'>[]; train: Omit<EpochRecord, 'seconds'>[] };
  scores: { index: number; label: number; class: number; score: number; mahalanobis?: number; reconstruction?: number }[];
}

const withoutSeconds = (h: EpochRecord[]): Omit<EpochRecord, 'seconds'>[] => h.map(({ seconds: _s, ...rest }) => rest);

/** Loads a safetensors state dict into a module (strict names and shapes). */
function loadWeights(m: Autoencoder, path: string): void {
  const file = readSafetensors(path);
  const values = new Map<string, { shape: readonly number[]; data: ArrayLike<number> }>();
  for (const [name, t] of file.tensors) values.set(name, { shape: t.shape, data: t.data });
  const broken = weightProblems(values, `${settingName('aeWeights')} ${path}`);
  if (broken.length > 0) throw new RunError(broken.join('\n'));
  try { m.loadStateDict(values); } catch (e) {
    throw new RunError(`${settingName('aeWeights')} ${path}: does not fit this network: ${(e as Error).message}`);
  }
}

export interface RunOptions {
  /** Continue the interrupted run in outDir from its checkpoint (or start it over when it has none). */
  resume?: boolean;
  /** Write a checkpoint every this many epochs of each phase (and after each phase's last); 0: never. */
  checkpointEvery?: number;
  /** The caller holds a lock that keeps other writers out (the study's cell lock): take over a run lock left by a dead run on any host. */
  takeOverLock?: boolean;
}

/** Epochs between checkpoints by default: cheap (a few MB), and at most a few minutes of CIFAR-10 lost. */
export const DEFAULT_CHECKPOINT_EVERY = 5;

export async function runTraining(cfg: TrainConfig, outDir: string, io: RunIo, opts: RunOptions = {}): Promise<RunSummary> {
  const problems = validateConfig(cfg);
  if (problems.length > 0) throw new RunError(problems.join('\n'));
  resolveWasmThreads(cfg.threads); // SVDD_THREADS too: refused before anything is written
  const every = opts.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
  if (!(Number.isInteger(every) && every >= 0)) throw new RunError(`checkpointEvery must be a non-negative integer, got ${every}`);
  if (opts.resume && !existsSync(join(outDir, 'config.json'))) throw new RunError(`${outDir}: not a run directory, nothing to resume (no config.json)`);
  // One writer per directory; an incomplete run that cannot be resumed is replaced (see run-dir.ts).
  const { lock, replaced } = prepareRunDir(outDir, { resume: opts.resume, takeOverLock: opts.takeOverLock });
  try {
    return await trainInDir(cfg, outDir, io, every, opts.resume === true, replaced);
  } catch (e) {
    if (isFsError(e)) throw new RunError(`${fsErrorMessage(e, `a file in ${outDir}`)}; the run in ${outDir} is incomplete (a rerun replaces it)`);
    throw e;
  } finally {
    lock.release();
  }
}

/** runTraining's work, inside the locked directory. */
async function trainInDir(cfg: TrainConfig, outDir: string, io: RunIo, every: number, resuming: boolean, replaced: string[]): Promise<RunSummary> {
  const configHash = trainConfigHash(cfg);
  let resume: RunCheckpoint | null = null;
  if (resuming) {
    if (existsSync(join(outDir, COMPLETE_MARKER))) throw new RunError(`${outDir} holds a finished run (results.json); nothing to resume`);
    if (hasCheckpoint(outDir)) {
      resume = readCheckpoint(outDir);
      if (resume.configHash !== configHash) throw new RunError(`${outDir}: the checkpoint belongs to other settings than config.json (hash ${resume.configHash} vs ${configHash})`);
    } else {
      // Killed before its first checkpoint: start over in the same directory (with its config).
      for (const f of readdirSync(outDir)) if (f !== LOCK_FILE) rmSync(join(outDir, f), { recursive: true, force: true });
    }
  }
  const logPath = join(outDir, 'log.txt');
  if (!resume) writeFileSync(logPath, '');
  const log = (line: string): void => { appendFileSync(logPath, `${line}\n`); io.log(line); };
  if (!resuming && replaced.length > 0) log(`replacing the incomplete run in ${outDir} (no results.json: it was interrupted or failed); removed ${replaced.join(', ')}`);
  else if (resuming && replaced.length > 0) log(`removed leftover temporary files ${replaced.join(', ')}`);
  const t0 = performance.now();
  // The backend for this run only: the caller's is active again afterwards (a study trains many
  // runs in one process, a program may train between calls of its own).
  return engine.withBackend(cfg.backend, (choice) => trainOnBackend({ cfg, outDir, io, every, configHash, resume, log, t0 }, choice), cfg.threads);
}

/** What trainInDir has settled before the backend starts: the run's settings, directory, checkpoint, log and start time. */
interface PreparedRun {
  cfg: TrainConfig; outDir: string; io: RunIo; every: number; configHash: string;
  resume: RunCheckpoint | null;
  log(line: string): void;
  t0: number;
}

/** The training run on the backend trainInDir started, which config.json, the log and checkpoints name. */
function trainOnBackend(run: PreparedRun, { name: backend, threads, detail }: BackendChoice): RunSummary {
  const { cfg, outDir, io, every, configHash, resume, log, t0 } = run;
  const timings: Record<string, number> = {};
  const lap = (name: string, since: number): number => { const now = performance.now(); timings[name] = (now - since) / 1000; return now; };
  // Wall seconds of the processes before this one (a resumed run): part of the run's total.
  const before = resume?.seconds ?? 0;
  const elapsed = (): number => before + (performance.now() - t0) / 1000;

  if (resume) {
    log(`resuming from ${CHECKPOINT_FILE}: ${resume.stage === 'pretrain' ? 'pretraining' : 'training'} after epoch ${resume.state.epoch}`);
    if (resume.backend !== backend || resume.threads !== threads) {
      log(`WARNING: the run started on ${resume.backend} with ${resume.threads ?? '-'} threads and continues on ${backend} with ${threads ?? '-'}; results may differ in the last bits from an uninterrupted run`);
    }
  } else {
    writeFileAtomic(join(outDir, 'config.json'), `${JSON.stringify({ ...cfg, backend }, null, 2)}\n`);
  }
  log(`svdd-ts ${packageVersion()} | dataset ${cfg.dataset} normal class ${cfg.normalClass} | net ${cfg.net} | objective ${cfg.objective}${cfg.hybrid ? ` (hybrid μ1=${cfg.mu1} μ2=${cfg.mu2})` : ''} | seed ${cfg.seed} | backend ${backend}${detail !== null ? ` (${detail})` : ''}${cfg.preset === 'quick' ? ` | preset quick: a demo setting (${cfg.aeEpochs} + ${cfg.epochs} epochs at lr ${cfg.aeLr} / ${cfg.lr} on ${cfg.subset ?? 'all'} images), not the paper's protocol (--preset short or paper)` : ''}`);

  let t = performance.now();
  const raw = loadRaw(cfg.dataset, cfg.dataDir ?? undefined, { shape: NET_SHAPES[cfg.net].inputShape, resize: cfg.resize ?? 'bilinear' });
  const data = prepareOneClass(raw, cfg.normalClass, {
    subset: cfg.subset ?? undefined, testSubset: cfg.testSubset ?? undefined,
    valFraction: cfg.valFraction, seed: cfg.seed, method: cfg.preprocessing,
  });
  t = lap('data', t);
  log(`data: ${raw.source} | train ${data.train.count} normal images, validation ${data.val.count}, test ${data.test.count} | preprocessing ${data.preprocessing.method === 'none' ? 'none (pixels / 255)' : `min ${data.constants.min} max ${data.constants.max}`} (${timings.data!.toFixed(1)} s)`);
  const trainSet = toImageSet(data.train, data), testSet = toImageSet(data.test, data);
  if (data.train.count < 2) {
    throw new RunError(`the training set has ${data.train.count} image (after "subset" and "valFraction"); training needs at least 2`);
  }
  const minVal = Math.ceil(1 / cfg.alpha - 1e-9);
  if (data.val.count > 0 && data.val.count < minVal) {
    log(`WARNING: the validation set has ${data.val.count} images: its observed false-positive rate moves in steps of 1/${data.val.count}, so it cannot resolve α = ${cfg.alpha}; α = ${cfg.alpha} needs at least ${minVal} (raise --val-fraction or --subset, or --alpha)`);
  }

  let pretrainTestAuroc: number | null = null;
  const fitIo: FitIo = {
    log,
    hooks: io.hooks,
    checkpointing: {
      every, resume,
      save: (stage, net, centerC, pretrainHistory, state) => {
        writeCheckpoint(outDir, { stage, configHash, state, net, centerC: centerC ? Array.from(centerC) : null, pretrainHistory, backend, threads, seconds: elapsed() });
      },
    },
    givenAutoencoder: (ae) => {
      if (cfg.aeWeights !== null) {
        loadWeights(ae, cfg.aeWeights);
        log(`autoencoder loaded from ${cfg.aeWeights} (no pretraining)`);
        return [];
      }
      if (resume?.stage === 'train') {
        loadWeights(ae, join(outDir, 'autoencoder.safetensors'));
        return resume.pretrainHistory;
      }
      return null;
    },
    afterPretraining: (ae) => {
      writeSafetensors(join(outDir, 'autoencoder.safetensors'), stateToTensors(ae), { format: 'svdd-ts-autoencoder', net: cfg.net });
      const recon = reconstructionScores(ae, testSet);
      // Weights can stay finite yet so large that the codes overflow: a non-finite reconstruction error is divergence too.
      if (!cfg.aeWeights && !recon.every(Number.isFinite)) {
        stopOnDivergence(fitIo, () => { throw new DivergenceError('pretraining diverged: the autoencoder\'s reconstruction errors are not finite; no model was written (lower the learning rate, --ae-lr)'); });
      }
      pretrainTestAuroc = detectCollapse(recon, 'reconstruction').detected ? null : rankingMetrics(data.test.labels, recon).auroc;
      t = lap('pretrain', t);
      log(`autoencoder ready in ${timings.pretrain!.toFixed(1)} s; its test AUROC (reconstruction error) ${pretrainTestAuroc === null ? 'n/a' : (100 * pretrainTestAuroc).toFixed(2)}`);
    },
    afterTraining: () => { t = lap('train', t); },
    // Divergence stops the run: no model, no checkpoint to resume a diverged state from.
    onDivergence: () => { removeCheckpoint(outDir); },
  };
  const estimator = new DeepSVDD(estimatorOptions(cfg));
  const fitted = runAccess.fit(estimator, { dataset: cfg.dataset, normalClass: cfg.normalClass, ...(cfg.resize !== undefined ? { resize: cfg.resize } : {}) }, { train: trainSet, val: toImageSet(data.val, data), preprocessing: data.preprocessing }, fitIo);
  const { model, radiusR, trainingCollapse, pretrainHistory, trainHistory } = fitted;
  saveModel(outDir, model.net, model.meta);

  const scores = scoreImages(model, testSet);
  const evaluation = evaluate(model, scores, data.test.labels);
  t = lap('test', t);
  logEvaluation(log, evaluation, pretrainTestAuroc);

  const results: RunResults = {
    dataset: cfg.dataset, normalClass: cfg.normalClass, net: cfg.net, objective: cfg.objective, hybrid: cfg.hybrid, seed: cfg.seed, backend,
    counts: { train: data.train.count, validation: data.val.count },
    preprocessing: data.preprocessing, radiusR, trainingCollapse, pretrainTestAuroc, evaluation, gaussian: fitted.gaussian,
    history: { pretrain: withoutSeconds(pretrainHistory), train: withoutSeconds(trainHistory) },
    scores: perSampleScores(data, scores),
  };
  writeImageGrids(outDir, data, scores.svdd);
  timings.total = elapsed();
  if (resume) timings.beforeResume = before;
  writeFileAtomic(join(outDir, 'timings.json'), `${JSON.stringify({ seconds: timings, pretrainEpochs: pretrainHistory.map((h) => h.seconds), trainEpochs: trainHistory.map((h) => h.seconds) }, null, 2)}\n`);
  // results.json is the completion marker: written last, every reader (predict, test, explain,
  // report, the study) checks for it. A leftover checkpoint beside it is only wasted space.
  writeFileAtomic(join(outDir, COMPLETE_MARKER), `${JSON.stringify(results)}\n`);
  removeCheckpoint(outDir);
  log(`done in ${timings.total.toFixed(1)} s${resume ? ` (${before.toFixed(1)} s of it before the resume)` : ''}; results in ${outDir}`);
  return { results, outDir };
}

/**
 * The estimator's options for a training config: the same settings, nested as DeepSVDD takes them.
 * Settings a mode does not use are left out (the estimator refuses some of them: χ² without the
 * adaptive threshold), except ν, which model.json keeps for every objective. Data, preprocessing
 * constants and the hold-out come from the run (prepareOneClass), not from these options.
 */
export function estimatorOptions(cfg: TrainConfig): DeepSVDDOptions {
  const adaptive = cfg.threshold === 'adaptive';
  const threshold: DeepSVDDOptions['threshold'] = cfg.valFraction > 0
    ? { valFraction: cfg.valFraction, alpha: cfg.alpha, adaptive, ...(adaptive ? { chi2: cfg.chi2, shrinkage: cfg.shrinkage } : {}) }
    : cfg.contamination !== undefined ? { contamination: cfg.contamination } : undefined;
  return {
    net: cfg.net, objective: cfg.objective, nu: cfg.nu, warmUpEpochs: cfg.warmUpEpochs,
    hybrid: cfg.hybrid ? { mu1: cfg.mu1, mu2: cfg.mu2 } : false,
    pretrain: cfg.pretrain ? { epochs: cfg.aeEpochs, lr: cfg.aeLr, milestones: cfg.aeMilestones, weightDecay: cfg.aeWeightDecay, batchSize: cfg.aeBatchSize } : false,
    epochs: cfg.epochs, lr: cfg.lr, milestones: cfg.milestones, weightDecay: cfg.weightDecay, batchSize: cfg.batchSize,
    gamma: cfg.gamma, optimizer: cfg.optimizer, seed: cfg.seed, preprocessing: cfg.preprocessing,
    ...(threshold ? { threshold } : {}),
    backend: cfg.backend as DeepSVDDOptions['backend'], ...(cfg.threads !== null ? { threads: cfg.threads } : {}),
  };
}

export function perSampleScores(data: OneClassData, scores: TestScores): RunResults['scores'] {
  return Array.from(scores.svdd, (s, i) => ({
    index: data.test.indices[i]!, label: data.test.labels[i]!, class: data.test.classes[i]!, score: s,
    ...(scores.mahalanobis ? { mahalanobis: scores.mahalanobis[i]! } : {}),
    ...(scores.reconstruction ? { reconstruction: scores.reconstruction[i]! } : {}),
  }));
}

const pct = (v: number | null | undefined): string => (v === null || v === undefined ? 'n/a' : (100 * v).toFixed(2));

export function logEvaluation(log: (l: string) => void, ev: EvaluationResult, pretrainAuroc: number | null = null): void {
  if (ev.collapse.detected) log(`WARNING: ${ev.collapse.reason}`);
  log(`test: ${ev.counts.test} images (${ev.counts.normal} normal, ${ev.counts.anomalous} anomalous); positive class = ${ev.positiveClass}`);
  log(`test AUROC ${pct(ev.metrics.auroc)} | AP ${pct(ev.metrics.averagePrecision)} | best F1 (oracle, uses test labels) ${pct(ev.metrics.bestF1Oracle?.f1)} vs F1 of "all anomalous" ${pct(ev.f1AllAnomalous)}${pretrainAuroc !== null ? ` | autoencoder AUROC ${pct(pretrainAuroc)}` : ''}`);
  if (ev.hybrid) log(`hybrid: AUROC distance ${pct(ev.hybrid.aurocDistance)}, reconstruction ${pct(ev.hybrid.aurocReconstruction)}, combined (${ev.hybrid.combined}) ${pct(ev.hybrid.aurocCombined)}`);
  if (ev.mahalanobis) log(`Mahalanobis score: AUROC ${pct(ev.mahalanobis.auroc)} | AP ${pct(ev.mahalanobis.averagePrecision)}`);
  for (const th of ev.thresholds) {
    log(`at τ (${th.score}, ${th.method}, α ${th.alpha}): τ = ${th.tau.toPrecision(5)} precision ${pct(th.precision)} recall ${pct(th.recall)} F1 ${pct(th.f1)} FPR ${pct(th.observedFpr)} | TP ${th.tp} FP ${th.fp} TN ${th.tn} FN ${th.fn}`);
  }
}

/** The 32 most normal and 32 most anomalous test images of the normal class (paper Figs. 2–3). */
export function writeImageGrids(outDir: string, data: OneClassData, scores: Float64Array): void {
  const normalIdx: number[] = [];
  for (let i = 0; i < data.test.count; i++) if (data.test.labels[i] === 0) normalIdx.push(i);
  normalIdx.sort((a, b) => scores[a]! - scores[b]! || a - b);
  const per = data.pixelsPerImage;
  const pick = (idx: number[]): Float32Array => {
    const out = new Float32Array(idx.length * per);
    idx.forEach((i, k) => out.set(data.test.x.subarray(i * per, (i + 1) * per), k * per));
    return out;
  };
  const k = Math.min(32, normalIdx.length);
  if (k === 0) return;
  const most = normalIdx.slice(0, k), least = normalIdx.slice(normalIdx.length - k).reverse();
  const grid = (idx: number[]) => imageGridPng(pick(idx), idx.length, data.channels, data.height, data.width, { cols: 8 });
  writePngAtomic(join(outDir, 'normals.png'), grid(most));
  writePngAtomic(join(outDir, 'anomalies.png'), grid(least));
}
