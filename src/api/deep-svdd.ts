/**
 * The Deep SVDD estimator, in the style of PyOD: `new DeepSVDD(options)`, `fit(images)`,
 * `decisionFunction(x)` (higher = more anomalous), `predict(x)` (1 = anomalous, score > τ),
 * `explain(x)`, `save(dir)` / `DeepSVDD.load(dir)`. Everything runs in memory; `save` writes the
 * files `svdd train` writes for a model (model.json, model.safetensors), so a saved model works
 * with `svdd predict` and `svdd explain`, and `load` reads a `svdd train` run directory too.
 */
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { BackendError } from '../tensor/backend-registry.ts';
import { engine } from '../tensor/engine.ts';
import type { ImageSet } from '../svdd/batches.ts';
import type { ProgressCallback } from '../svdd/progress.ts';
import { TrainConfigSchema, settingRequirement } from '../svdd/config.ts';
import { applyPreprocessing, computeMinMaxFromBytes, preprocessingOf, splitValidation, type Preprocessing } from '../svdd/data/preprocess.ts';
import { scoreImages, type TestScores } from '../svdd/evaluate.ts';
import { explain as explainImages } from '../svdd/explain/explain.ts';
import type { MethodName, MethodSpec } from '../svdd/explain/methods.ts';
import { CAM_TARGETS, type CamTarget } from '../svdd/gradcam.ts';
import { fitSvdd, type FitData, type FitIo, type FitResult, type FitSettings } from '../svdd/fit.ts';
import { loadModel, saveModel, type ModelMeta } from '../svdd/model.ts';
import { NET_SHAPES, type NetName } from '../svdd/networks.ts';
import { decide, decisionRuleFor, type DecisionThreshold } from '../svdd/predict.ts';
import type { SvddModel } from '../svdd/svdd-model.ts';
import { DivergenceError, type EpochRecord } from '../svdd/trainer.ts';
import { InputError, ModelError, NotFittedError, OptionError, TrainingDivergedError } from './errors.ts';
import { readImages, type ImageInput, type Images } from './images.ts';

/** One finished epoch, as `onEpoch` hears it. */
export interface EpochEvent {
  /** 'pretrain': the autoencoder; 'train': Deep SVDD; 'hybrid': hybrid Deep SVDD. */
  phase: 'pretrain' | 'train' | 'hybrid';
  /** 1-based. */
  epoch: number;
  epochs: number;
  /** Mean loss over the epoch's batches. */
  loss: number;
  lr: number;
  seconds: number;
  /** Soft-boundary radius R after the epoch. */
  radius?: number;
}

/** How τ is chosen: on a held-out part of the training images, or from the training scores. */
export type ThresholdOption =
  /** τ = the (1 − contamination) quantile of the training scores (PyOD's rule); no hold-out. */
  | { contamination: number }
  /**
   * Hold out `valFraction` of the training images (never used for gradient steps): τ = the (1 − α)
   * quantile of their scores. `adaptive` also fits a Gaussian to the training codes and decides with
   * the squared Mahalanobis distance; `chi2` adds the χ² quantile threshold for it.
   */
  | { valFraction: number; alpha?: number; adaptive?: boolean; chi2?: boolean; shrinkage?: number | 'ledoit-wolf' };

export interface DeepSVDDOptions {
  /** The network; images must have its input shape (mnist_LeNet: [1, 28, 28], the CIFAR nets: [3, 32, 32]). Default mnist_LeNet. */
  net?: NetName;
  /** Default 'one-class'. */
  objective?: 'one-class' | 'soft-boundary';
  /** Soft-boundary ν in (0, 1] (default 0.1; saved with any model, used by the soft-boundary objective). */
  nu?: number;
  /** Soft-boundary: epochs before the radius is first updated (default 10). */
  warmUpEpochs?: number;
  /** Hybrid Deep SVDD: loss μ1·distance + μ2·reconstruction error (default false; μ1 = 1, μ2 = 0.5). */
  hybrid?: boolean | { mu1?: number; mu2?: number };
  /** Autoencoder pretraining (default the paper's: 150 epochs, lr 1e-4, milestone 50); false: none. */
  pretrain?: false | { epochs?: number; lr?: number; milestones?: number[]; weightDecay?: number; batchSize?: number };
  /** Deep SVDD training (defaults: the paper's 150 epochs, lr 1e-4, milestone 50, weight decay 0.5e-6, batch 200). */
  epochs?: number;
  lr?: number;
  milestones?: number[];
  weightDecay?: number;
  batchSize?: number;
  /** Learning-rate decay factor at each milestone (default 0.1). */
  gamma?: number;
  optimizer?: 'adam' | 'amsgrad';
  seed?: number;
  /**
   * 'gcn-minmax' (default, the paper's): global contrast normalisation, then min-max scaling with the
   * min and max of the fitted images' normalised values; { min, max }: with these constants (as the
   * paper's code hard-codes them per class); 'none': pixel intensities (pixels / 255) as they are.
   */
  preprocessing?: 'gcn-minmax' | 'none' | { min: number; max: number };
  /** Default { contamination: 0.1 } (a soft-boundary model without it decides with its radius). */
  threshold?: ThresholdOption;
  /**
   * The backend every call of this estimator (fit, decisionFunction, predict, explain, save, load)
   * runs on. Set: each call runs inside `withBackend(backend, …)`, so the backend the caller had
   * active is active again when it returns. Unset (the default): the backend the program chose on
   * the default engine (an enclosing `withBackend`, `engine.use`), left as it is; when the program
   * chose none, 'auto' (the fastest available) for the call, as a scope too.
   */
  backend?: 'auto' | 'wasm' | 'ts' | 'gpujs';
  /** Worker threads of a wasm backend this estimator starts (backend set, or 'auto' when none was chosen), 1 to 64 (default: all cores). */
  threads?: number;
  onEpoch?: (event: EpochEvent) => void;
  /** After each batch: phase, epoch (0-based), batch (1-based), batches per epoch, the batch's loss. */
  onBatch?: (phase: EpochEvent['phase'], epoch: number, batch: number, batches: number, loss: number) => void;
  /** Progress lines (the lines `svdd train` logs). */
  onLog?: (line: string) => void;
}

export type ScoreName = 'svdd' | 'mahalanobis' | 'combined';

export interface ExplainOptions {
  /** Default 'gradcam'. */
  method?: MethodName;
  /** The score explained (default the model's decision score). */
  score?: ScoreName;
  /** Grad-CAM: a conv layer (default the last); `at`: which tensor of its block (default 'bn'). */
  layer?: string;
  at?: CamTarget;
  /** Integrated gradients: steps (default 32). */
  steps?: number;
  /** Occlusion: patch size and stride in pixels (default 4 and 2). */
  patch?: number;
  stride?: number;
}

/** Attribution maps, one per image, each of the input's height × width (channels summed). */
export interface Explanation {
  method: MethodName;
  /** A caption, e.g. "Grad-CAM conv2 (after BN)". */
  label: string;
  /** n × h × w values, row-major; positive values raise the score. */
  maps: Float64Array;
  shape: [number, number, number];
  /** The explained score of each image. */
  scores: Float64Array;
}

const SCORE_NAMES: readonly ScoreName[] = ['svdd', 'mahalanobis', 'combined'];
const METHODS: readonly MethodName[] = ['gradcam', 'gradxinput', 'ig', 'occlusion'];

// Ranges come from the training config's schema (config.ts), so the estimator and `svdd train`
// accept the same values; only the nesting and the names differ.
const T = TrainConfigSchema.shape;
const fn = z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function');
const OptionsSchema = z.object({
  net: T.net, objective: T.objective, nu: T.nu, warmUpEpochs: T.warmUpEpochs,
  hybrid: z.union([z.boolean(), z.object({ mu1: T.mu1.optional(), mu2: T.mu2.optional() }).strict()]),
  pretrain: z.union([z.literal(false), z.object({
    epochs: T.aeEpochs.optional(), lr: T.aeLr.optional(), milestones: T.aeMilestones.optional(), weightDecay: T.aeWeightDecay.optional(), batchSize: T.aeBatchSize.optional(),
  }).strict()]),
  epochs: T.epochs, lr: T.lr, milestones: T.milestones, weightDecay: T.weightDecay, batchSize: T.batchSize,
  gamma: T.gamma, optimizer: T.optimizer, seed: T.seed,
  preprocessing: z.union([z.enum(['gcn-minmax', 'none']), z.object({ min: z.number(), max: z.number() }).strict().refine((p) => p.max > p.min, 'max must exceed min')]),
  threshold: z.union([
    z.object({ contamination: z.number().gt(0).lte(0.5) }).strict(),
    z.object({ valFraction: z.number().gt(0).lt(1), alpha: T.alpha.optional(), adaptive: z.boolean().optional(), chi2: z.boolean().optional(), shrinkage: T.shrinkage.optional() }).strict(),
  ]),
  backend: T.backend, threads: T.threads.unwrap(),
  onEpoch: fn, onBatch: fn, onLog: fn,
}).partial().strict();

/** What each option must be, in words; keys of nested options as `pretrain.lr`. */
const OPTION_WORDS: Record<string, string> = {
  net: settingRequirement('net'), objective: settingRequirement('objective'), nu: settingRequirement('nu'), warmUpEpochs: settingRequirement('warmUpEpochs'),
  hybrid: 'must be true, false or { mu1, mu2 } (finite numbers ≥ 0)', 'hybrid.mu1': settingRequirement('mu1'), 'hybrid.mu2': settingRequirement('mu2'),
  pretrain: 'must be false or { epochs, lr, milestones, weightDecay, batchSize }',
  'pretrain.epochs': settingRequirement('aeEpochs'), 'pretrain.lr': settingRequirement('aeLr'), 'pretrain.milestones': settingRequirement('aeMilestones'),
  'pretrain.weightDecay': settingRequirement('aeWeightDecay'), 'pretrain.batchSize': settingRequirement('aeBatchSize'),
  epochs: settingRequirement('epochs'), lr: settingRequirement('lr'), milestones: settingRequirement('milestones'), weightDecay: settingRequirement('weightDecay'),
  batchSize: settingRequirement('batchSize'), gamma: settingRequirement('gamma'), optimizer: settingRequirement('optimizer'), seed: settingRequirement('seed'),
  preprocessing: "must be 'gcn-minmax', 'none' or { min, max } with max > min",
  threshold: 'must be { contamination } with contamination in (0, 0.5], or { valFraction, alpha?, adaptive?, chi2?, shrinkage? } with valFraction in (0, 1)',
  'threshold.alpha': settingRequirement('alpha'), 'threshold.shrinkage': settingRequirement('shrinkage'),
  backend: settingRequirement('backend'), threads: settingRequirement('threads'),
  onEpoch: 'must be a function', onBatch: 'must be a function', onLog: 'must be a function',
};

const show = (v: unknown): string => (v === undefined ? 'nothing' : typeof v === 'function' ? 'a function' : typeof v === 'number' && !Number.isFinite(v) ? String(v) : JSON.stringify(v) ?? String(v));

/** Validated options: the training settings and how to preprocess and run. */
interface Resolved {
  settings: FitSettings;
  valFraction: number;
  preprocessing: 'gcn-minmax' | 'none' | { min: number; max: number };
  /** null: the caller's backend (see DeepSVDDOptions.backend). */
  backend: string | null;
  threads: number | null;
  options: DeepSVDDOptions;
}

/** Checks every option by type and range (one OptionError listing every problem) and fills in the defaults. */
function resolveOptions(options: unknown): Resolved {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new OptionError(`DeepSVDD options must be an object, got ${show(options)}`);
  const o = options as Record<string, unknown>;
  const r = OptionsSchema.safeParse(o);
  if (!r.success) {
    const lines: string[] = [];
    const seen = new Set<string>();
    for (const issue of r.error.issues) {
      if (issue.code === 'unrecognized_keys') { lines.push(`unknown option${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}${issue.path.length ? ` in ${issue.path.join('.')}` : ''}`); continue; }
      // A union's branch problems are reported as the union's requirement.
      const path = issue.path.slice(0, 2).map(String);
      let key = path.join('.');
      if (!(key in OPTION_WORDS)) key = path[0] ?? '';
      if (seen.has(key)) continue;
      seen.add(key);
      const value = key.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);
      lines.push(`option ${key} ${OPTION_WORDS[key] ?? 'is invalid'}, got ${show(value)}`);
    }
    throw new OptionError(lines.join('\n'));
  }
  const v = r.data;
  const net = v.net ?? 'mnist_LeNet';
  const objective = v.objective ?? 'one-class';
  const hybrid = v.hybrid !== undefined && v.hybrid !== false;
  const pre = v.pretrain === false ? null : (v.pretrain ?? {});
  const th = v.threshold ?? null;
  const held = th !== null && 'valFraction' in th ? th : null;
  const problems: string[] = [];
  if (hybrid && objective !== 'one-class') problems.push("option hybrid trains the one-class objective; drop objective: 'soft-boundary'");
  if (hybrid && pre === null) problems.push('option hybrid starts from the pretrained autoencoder; drop pretrain: false');
  if (held?.chi2 && !held.adaptive) problems.push('option threshold.chi2 is the χ² threshold of the Mahalanobis score; add threshold.adaptive: true');
  // Every learning rate a schedule reaches, lr·γ^k for k up to the number of milestones, must be a finite positive number.
  const gamma = v.gamma ?? 0.1;
  const schedule = (name: string, lr: number, milestones: readonly number[]): void => {
    for (let k = 1; k <= milestones.length; k++) {
      const at = lr * gamma ** k;
      if (!(Number.isFinite(at) && at > 0)) { problems.push(`option ${name} ${lr} × gamma ${gamma} at milestone ${k} of [${milestones.join(', ')}] is ${at}, not a finite positive learning rate`); return; }
    }
  };
  if (pre !== null) schedule('pretrain.lr', pre.lr ?? 1e-4, pre.milestones ?? [50]);
  schedule('lr', v.lr ?? 1e-4, v.milestones ?? [50]);
  if (problems.length > 0) throw new OptionError(problems.join('\n'));
  const cifar = net !== 'mnist_LeNet';
  const mu = typeof v.hybrid === 'object' ? v.hybrid : {};
  const settings: FitSettings = {
    dataset: 'arrays', normalClass: 0,
    net, objective, nu: v.nu ?? 0.1, seed: v.seed ?? 0,
    pretrain: pre !== null,
    aeEpochs: pre?.epochs ?? 150, aeLr: pre?.lr ?? 1e-4, aeMilestones: pre?.milestones ?? [50],
    // The paper's autoencoder weight decay: 0.5e-3 for MNIST's net, 0.5e-6 for CIFAR-10's.
    aeWeightDecay: pre?.weightDecay ?? (cifar ? 0.5e-6 : 0.5e-3), aeBatchSize: pre?.batchSize ?? 200,
    epochs: v.epochs ?? 150, lr: v.lr ?? 1e-4, milestones: v.milestones ?? [50], weightDecay: v.weightDecay ?? 0.5e-6, batchSize: v.batchSize ?? 200,
    gamma, optimizer: v.optimizer ?? 'adam', warmUpEpochs: v.warmUpEpochs ?? 10,
    hybrid, mu1: mu.mu1 ?? 1, mu2: mu.mu2 ?? 0.5,
    threshold: held?.adaptive ? 'adaptive' : 'fixed', alpha: held?.alpha ?? 0.05, shrinkage: held?.shrinkage ?? 'ledoit-wolf', chi2: held?.chi2 ?? false,
    ...(th !== null && 'contamination' in th ? { contamination: th.contamination } : {}),
  };
  return {
    settings, valFraction: held?.valFraction ?? 0, preprocessing: v.preprocessing ?? 'gcn-minmax',
    backend: v.backend ?? null, threads: v.threads ?? null, options: o as DeepSVDDOptions,
  };
}

/**
 * Runs fn on the backend of an estimator's options (see DeepSVDDOptions.backend): inside
 * withBackend on the default engine when the option is set or the program chose no backend, else
 * on the caller's backend as it is. A backend that cannot run here (or a bad SVDD_THREADS) is an
 * OptionError, before fn runs.
 */
async function onBackend<T>({ backend, threads }: Pick<Resolved, 'backend' | 'threads'>, fn: () => T): Promise<T> {
  const name = backend ?? (engine.backendChosen ? null : 'auto');
  if (name === null) return fn();
  let started = false;
  try {
    return await engine.withBackend(name, () => { started = true; return fn(); }, threads);
  } catch (e) {
    if (!started && e instanceof BackendError) throw new OptionError(`option backend '${name}'${backend === null ? ' (unset, and the program chose none)' : ''}: ${e.message}`);
    throw e;
  }
}

/** A library user's words for a divergence (the trainer's names the command-line flags). */
function divergenceInWords(e: DivergenceError): TrainingDivergedError {
  const msg = e.message.replace('--ae-lr', 'option pretrain.lr').replace('--lr', 'option lr').replace('no model was written', 'no model was fitted');
  return new TrainingDivergedError(msg);
}

/**
 * `svdd train`'s and `svdd test`'s way in (src/svdd/run.ts, src/cli/test-command.ts; not exported
 * from the package): fit on images the run has already preprocessed, with the run directory's
 * hooks (checkpoints, --ae-weights, the test-set evaluation of the autoencoder), naming the
 * dataset and class in the model; and every score of the model on preprocessed images.
 */
export const runAccess: {
  fit(est: DeepSVDD, source: Pick<FitSettings, 'dataset' | 'normalClass' | 'resize'>, data: FitData, io: FitIo): FitResult;
  scores(est: DeepSVDD, set: ImageSet, onProgress?: ProgressCallback): TestScores;
  model(est: DeepSVDD): SvddModel;
  settings(est: DeepSVDD): Readonly<FitSettings>;
} = {} as never;

export class DeepSVDD {
  static {
    runAccess.fit = (est, source, data, io) => {
      const fitted = fitSvdd({ ...est.#resolved.settings, ...source }, data, io);
      est.#model = fitted.model;
      return fitted;
    };
    runAccess.scores = (est, set, onProgress) => scoreImages(est.#fitted('scores'), set, onProgress);
    runAccess.model = (est) => est.#fitted('model');
    runAccess.settings = (est) => est.#resolved.settings;
  }

  readonly #resolved: Resolved;
  #model: SvddModel | null = null;
  #history: { pretrain: EpochEvent[]; train: EpochEvent[] } = { pretrain: [], train: [] };

  /** Checks every option by type and range; throws one OptionError listing each problem. */
  constructor(options: DeepSVDDOptions = {}) {
    this.#resolved = resolveOptions(options);
  }

  /** Reads a model saved by save() or a finished `svdd train` run directory. */
  static async load(dir: string, options: Pick<DeepSVDDOptions, 'backend' | 'threads'> = {}): Promise<DeepSVDD> {
    if (typeof dir !== 'string' || dir === '') throw new OptionError(`DeepSVDD.load: dir must be a directory name, got ${show(dir)}`);
    // The options are checked before the model is read.
    const model = await onBackend(resolveOptions(options), () => loadModel(dir));
    // A later fit() trains the loaded model's network.
    const est = new DeepSVDD({ ...options, net: model.meta.net });
    est.#model = model;
    return est;
  }

  /** Whether fit() or load() has given this estimator a model. */
  get fitted(): boolean { return this.#model !== null; }

  /** The model's metadata (model.json): center, radius, preprocessing, thresholds. */
  get meta(): Readonly<ModelMeta> { return this.#fitted('meta').meta; }
  /** The center c (a copy). */
  get center(): Float64Array { return Float64Array.from(this.#fitted('center').meta.centerC); }
  /** The soft-boundary radius R (0 for one-class). */
  get radius(): number { return this.#fitted('radius').meta.radiusR; }
  /** The decision threshold τ of the model's decision score (predict: anomalous when score > τ); null when it has none. */
  get threshold(): number | null { return this.#threshold()?.tau ?? null; }
  /** How τ was chosen (a calibrated quantile, χ², the contamination of the training scores or the soft-boundary radius). */
  get thresholdRule(): DecisionThreshold | null { return this.#threshold(); }
  /** The loss per epoch of the last fit(). */
  get history(): { pretrain: readonly EpochEvent[]; train: readonly EpochEvent[] } { return this.#history; }
  /** The network's input shape [c, h, w]. */
  get inputShape(): readonly [number, number, number] { return this.#model?.meta.inputShape ?? NET_SHAPES[this.#resolved.settings.net].inputShape; }

  /**
   * Fits the model to normal images [n, c, h, w] (n ≥ 2), replacing any earlier fit. With
   * threshold { valFraction } a seeded part of them is held out to calibrate τ.
   */
  async fit(images: ImageInput): Promise<this> {
    const { settings, valFraction, preprocessing, options } = this.#resolved;
    const x = readImages(images, NET_SHAPES[settings.net].inputShape, 'fit: images', 2);
    const per = x.shape[0] * x.shape[1] * x.shape[2];
    const all = Int32Array.from({ length: x.count }, (_, i) => i);
    // The min-max constants come from every image given, before the hold-out, as svdd train takes them from the whole normal class.
    const prep: Preprocessing = preprocessing === 'none' ? { method: 'none' }
      : preprocessingOf('gcn-minmax', typeof preprocessing === 'object' ? preprocessing : computeMinMaxFromBytes(x.data, per, all));
    if (prep.method !== 'none' && !(prep.max > prep.min)) {
      throw new InputError('fit: every image is constant after contrast normalisation (max = min); there is nothing to learn from');
    }
    const { train, val } = splitValidation(all, valFraction, settings.seed);
    if (train.length < 2) throw new InputError(`fit: ${train.length} training image after the hold-out of threshold.valFraction; training needs at least 2`);
    const set = (idx: Int32Array): ImageSet => ({ x: applyPreprocessing(x.data, per, idx, prep).x, count: idx.length, shape: x.shape });
    const history: { pretrain: EpochEvent[]; train: EpochEvent[] } = { pretrain: [], train: [] };
    const event = (phase: string, rec: EpochRecord, epochs: number): EpochEvent => ({
      phase: phase as EpochEvent['phase'], epoch: rec.epoch, epochs, loss: rec.loss, lr: rec.lr, seconds: rec.seconds, ...(rec.radius !== undefined ? { radius: rec.radius } : {}),
    });
    try {
      const fitted = await this.#onBackend(() => fitSvdd(settings, { train: set(train), val: set(val), preprocessing: prep }, {
        log: (line) => options.onLog?.(line),
        hooks: {
          onEpoch: (phase, rec, epochs) => {
            const e = event(phase, rec, epochs);
            (phase === 'pretrain' ? history.pretrain : history.train).push(e);
            options.onEpoch?.(e);
          },
          onBatch: options.onBatch ? (phase, epoch, b, nb, loss) => options.onBatch!(phase as EpochEvent['phase'], epoch, b, nb, loss) : undefined,
        },
      }));
      this.#model = fitted.model;
    } catch (e) {
      if (e instanceof DivergenceError) throw divergenceInWords(e);
      throw e;
    }
    this.#history = history;
    return this;
  }

  /**
   * Anomaly scores, higher = more anomalous: by default the model's decision score (the SVDD
   * score ‖φ(x) − c‖², minus R² for soft-boundary; the squared Mahalanobis distance for a model
   * fitted with threshold.adaptive), as `svdd train` writes them in results.json.
   */
  async decisionFunction(x: ImageInput, opts: { score?: ScoreName } = {}): Promise<Float64Array> {
    const model = this.#fitted('decisionFunction');
    const score = this.#scoreName(opts.score, 'decisionFunction');
    const set = this.#prepare(model, x, 'decisionFunction: x');
    const s = await this.#onBackend(() => scoreImages(model, set));
    const out = score === 'svdd' ? s.svdd : score === 'mahalanobis' ? s.mahalanobis : s.combined;
    if (!out) throw new OptionError(`decisionFunction: the model has no ${score} score (${score === 'mahalanobis' ? 'fit with threshold.adaptive' : 'fit with hybrid'})`);
    return out;
  }

  /** 1 = anomalous (the decision score > τ, or not a finite number), 0 = normal. */
  async predict(x: ImageInput): Promise<Uint8Array> {
    const model = this.#fitted('predict');
    const rule = this.#threshold();
    if (!rule) throw new ModelError('predict: the model has no threshold τ for its decision score');
    const scores = await this.decisionFunction(x, { score: model.meta.decisionScore });
    return Uint8Array.from(scores, (s) => (decide(s, rule.tau) === 'anomalous' ? 1 : 0));
  }

  /** Attribution maps of the anomaly score for every image (see ExplainOptions for the methods). */
  async explain(x: ImageInput, opts: ExplainOptions = {}): Promise<Explanation> {
    const model = this.#fitted('explain');
    if (typeof opts !== 'object' || opts === null) throw new OptionError(`explain: options must be an object, got ${show(opts)}`);
    const method = opts.method ?? 'gradcam';
    if (!METHODS.includes(method)) throw new OptionError(`explain: option method must be one of ${METHODS.join(', ')}, got ${show(method)}`);
    const score = this.#scoreName(opts.score, 'explain');
    const posInt = (name: 'steps' | 'patch' | 'stride', dflt: number): number => {
      const v = opts[name] ?? dflt;
      if (!(Number.isSafeInteger(v) && v >= 1)) throw new OptionError(`explain: option ${name} must be an integer ≥ 1, got ${show(v)}`);
      return v;
    };
    if (opts.at !== undefined && !CAM_TARGETS.includes(opts.at)) throw new OptionError(`explain: option at must be one of ${CAM_TARGETS.join(', ')}, got ${show(opts.at)}`);
    if (opts.layer !== undefined && typeof opts.layer !== 'string') throw new OptionError(`explain: option layer must be a conv layer's name, got ${show(opts.layer)}`);
    const spec: MethodSpec = method === 'gradcam' ? { method, ...(opts.layer !== undefined ? { layer: opts.layer } : {}), at: opts.at ?? 'bn' }
      : method === 'ig' ? { method, steps: posInt('steps', 32) }
        : method === 'occlusion' ? { method, patch: posInt('patch', 4), stride: posInt('stride', 2) }
          : { method };
    const set = this.#prepare(model, x, 'explain: x');
    let result;
    try {
      result = await this.#onBackend(() => explainImages(model, set.x, set.count, { score, methods: [spec], baseline: 'black' }));
    } catch (e) {
      if (e instanceof Error && /not a conv layer/.test(e.message)) throw new OptionError(`explain: option layer: ${e.message}`);
      throw e;
    }
    const a = result.attributions[0]!;
    const [, h, w] = model.meta.inputShape;
    return { method, label: a.label, maps: a.pixels, shape: [set.count, h, w], scores: a.scores };
  }

  /**
   * Writes model.safetensors and model.json into `dir` (created when missing), the files `svdd
   * train` writes for a model; `svdd predict --model dir` and DeepSVDD.load(dir) read them. A
   * directory holding a `svdd train` run is refused (its model belongs to its results).
   */
  async save(dir: string): Promise<void> {
    const model = this.#fitted('save');
    if (typeof dir !== 'string' || dir === '') throw new OptionError(`save: dir must be a directory name, got ${show(dir)}`);
    if (existsSync(dir) && !statSync(dir).isDirectory()) throw new OptionError(`save: ${dir} is not a directory`);
    if (existsSync(join(dir, 'config.json')) || existsSync(join(dir, 'results.json'))) {
      throw new OptionError(`save: ${dir} holds a svdd train run; save the model into another directory`);
    }
    mkdirSync(dir, { recursive: true });
    // model.json last: a directory whose save was interrupted has no model.json and is refused on load.
    rmSync(join(dir, 'model.json'), { force: true });
    await this.#onBackend(() => saveModel(dir, model.net, model.meta));
  }

  /** Runs fn on this estimator's backend (see onBackend). */
  #onBackend<T>(fn: () => T): Promise<T> {
    return onBackend(this.#resolved, fn);
  }

  #fitted(what: string): SvddModel {
    if (!this.#model) throw new NotFittedError(`${what}: the estimator has no model yet; call fit(images) or DeepSVDD.load(dir) first`);
    return this.#model;
  }

  #threshold(): DecisionThreshold | null {
    const meta = this.#fitted('threshold').meta;
    return decisionRuleFor(meta, meta.decisionScore);
  }

  #scoreName(score: unknown, what: string): ScoreName {
    const model = this.#model!;
    if (score === undefined) return model.meta.decisionScore;
    if (!SCORE_NAMES.includes(score as ScoreName)) throw new OptionError(`${what}: option score must be one of ${SCORE_NAMES.join(', ')}, got ${show(score)}`);
    return score as ScoreName;
  }

  /** Checks and preprocesses images with the model's saved preprocessing. */
  #prepare(model: SvddModel, x: ImageInput, what: string): ImageSet {
    const images: Images = readImages(x, model.meta.inputShape, what, 1);
    const per = images.shape[0] * images.shape[1] * images.shape[2];
    const idx = Int32Array.from({ length: images.count }, (_, i) => i);
    return { x: applyPreprocessing(images.data, per, idx, model.meta.preprocessing).x, count: images.count, shape: images.shape };
  }
}
