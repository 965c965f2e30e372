/**
 * A study: a declarative grid of training runs. A spec names groups of (dataset, classes, seeds,
 * protocol, preprocessing, methods); it expands into cells. A cell is one (dataset,
 * preprocessing, protocol, validation split, class, seed): it pretrains its autoencoder once and
 * trains every method of the spec from that same autoencoder and the same validation split, so
 * methods are compared paired. Scores (SVDD distance, Mahalanobis, reconstruction, combined) are
 * scorings of trained models, not further trainings.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { DATASET_NAMES, type DatasetName } from '../data/datasets.ts';
import { PREPROCESSING_METHODS, type PreprocessingMethod } from '../data/preprocess.ts';
import { PRESETS, defaultConfig, type Preset, type TrainConfig } from '../config.ts';

const int = z.number().int();
const classList = z.array(int.min(0).max(9)).nonempty().refine((a) => new Set(a).size === a.length, 'classes must be distinct');
const seedList = z.array(int.min(0).max(2 ** 31 - 1)).nonempty().refine((a) => new Set(a).size === a.length, 'seeds must be distinct');
const epochList = z.array(int.min(1));

const ProtocolSchema = z.union([
  z.enum(PRESETS as unknown as [Preset, ...Preset[]]),
  z.object({
    /** The preset the explicit values start from (default 'paper'). */
    base: z.enum(PRESETS as unknown as [Preset, ...Preset[]]).optional(),
    aeEpochs: int.min(0).optional(), aeMilestones: epochList.optional(), aeWeightDecay: z.number().min(0).optional(), aeLr: z.number().positive().optional(),
    epochs: int.min(0).optional(), milestones: epochList.optional(), weightDecay: z.number().min(0).optional(), lr: z.number().positive().optional(),
    batchSize: int.min(2).optional(), aeBatchSize: int.min(2).optional(),
    subset: int.min(2).nullable().optional(), testSubset: int.min(2).nullable().optional(),
  }).strict(),
]);

const MethodSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('one-class'), name: z.string().regex(/^[a-z0-9.=-]+$/).optional() }).strict(),
  z.object({ kind: z.literal('soft-boundary'), nu: z.number().gt(0).lte(1).default(0.1), name: z.string().regex(/^[a-z0-9.=-]+$/).optional() }).strict(),
  z.object({ kind: z.literal('hybrid'), mu1: z.number().min(0).default(1), mu2: z.number().min(0), name: z.string().regex(/^[a-z0-9.=-]+$/).optional() }).strict(),
]);

const GroupSchema = z.object({
  dataset: z.enum(DATASET_NAMES as unknown as [DatasetName, ...DatasetName[]]),
  classes: classList.default([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
  seeds: seedList,
  protocol: ProtocolSchema,
  preprocessing: z.array(z.enum(PREPROCESSING_METHODS as unknown as [PreprocessingMethod, ...PreprocessingMethod[]])).nonempty().default(['gcn-minmax']),
  methods: z.array(MethodSchema).nonempty(),
}).strict();

export const StudySpecSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes'),
  description: z.string().optional(),
  /** Held-out fraction of the normal training images (label-free thresholds, Mahalanobis); 0: none. */
  valFraction: z.number().min(0).lt(1).default(0.1),
  /** Target false-positive rate of the label-free thresholds. */
  alpha: z.number().gt(0).lt(1).default(0.05),
  groups: z.array(GroupSchema).nonempty(),
}).strict();

export type StudySpec = z.output<typeof StudySpecSchema>;
export type StudySpecInput = z.input<typeof StudySpecSchema>;
export type MethodSpec = z.output<typeof MethodSchema>;
export type ProtocolSpec = z.output<typeof ProtocolSchema>;

export class SpecError extends Error {}

/** Validates a parsed JSON value as a spec; one line per problem, with its path. */
export function parseSpec(value: unknown, source = 'spec'): StudySpec {
  const r = StudySpecSchema.safeParse(value);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${source}: ${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`);
    throw new SpecError(lines.join('\n'));
  }
  return r.data;
}

/** A method's id: its kind and the settings that distinguish it (used in directory names). */
export function methodId(m: MethodSpec): string {
  if (m.name) return m.name;
  if (m.kind === 'one-class') return 'one-class';
  if (m.kind === 'soft-boundary') return `soft-boundary-nu${m.nu}`;
  return `hybrid-mu1=${m.mu1}-mu2=${m.mu2}`;
}

export interface Cell {
  id: string;
  dataset: DatasetName;
  normalClass: number;
  seed: number;
  preprocessing: PreprocessingMethod;
  protocolTag: string;
  /** The protocol resolved to the values every run of the cell uses. */
  protocol: Pick<TrainConfig, 'aeEpochs' | 'aeMilestones' | 'aeWeightDecay' | 'aeLr' | 'epochs' | 'milestones' | 'weightDecay' | 'lr' | 'batchSize' | 'aeBatchSize' | 'subset' | 'testSubset' | 'preset'>;
  valFraction: number;
  alpha: number;
  methods: MethodSpec[];
}

export const stableJson = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (
  x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))) : x));
export const shortHash = (v: unknown, n = 8): string => createHash('sha256').update(stableJson(v)).digest('hex').slice(0, n);

function resolveProtocol(p: ProtocolSpec, dataset: DatasetName): { tag: string; values: Cell['protocol'] } {
  const preset: Preset = typeof p === 'string' ? p : (p.base ?? 'paper');
  const d = defaultConfig(dataset, 0, preset);
  const values: Cell['protocol'] = {
    aeEpochs: d.aeEpochs, aeMilestones: d.aeMilestones, aeWeightDecay: d.aeWeightDecay, aeLr: d.aeLr,
    epochs: d.epochs, milestones: d.milestones, weightDecay: d.weightDecay, lr: d.lr,
    batchSize: d.batchSize, aeBatchSize: d.aeBatchSize, subset: d.subset, testSubset: d.testSubset, preset,
  };
  if (typeof p === 'string') return { tag: p, values };
  const { base: _b, ...over } = p;
  const merged = { ...values, ...Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined)) } as Cell['protocol'];
  return { tag: `${preset}+${shortHash(over, 6)}`, values: merged };
}

/** The cells of a spec in a fixed order (groups, then preprocessing, classes, seeds as listed); methods of equal cells merge. */
export function expandCells(spec: StudySpec): Cell[] {
  const cells = new Map<string, Cell>();
  for (const g of spec.groups) {
    const { tag, values } = resolveProtocol(g.protocol, g.dataset);
    for (const prep of g.preprocessing) {
      for (const cls of g.classes) {
        for (const seed of g.seeds) {
          const id = `${g.dataset}${prep === 'none' ? '-raw' : ''}-${tag}-c${cls}-s${seed}`;
          let cell = cells.get(id);
          if (!cell) {
            cell = { id, dataset: g.dataset, normalClass: cls, seed, preprocessing: prep, protocolTag: tag, protocol: values, valFraction: spec.valFraction, alpha: spec.alpha, methods: [] };
            cells.set(id, cell);
          }
          for (const m of g.methods) if (!cell.methods.some((x) => methodId(x) === methodId(m))) cell.methods.push(m);
        }
      }
    }
  }
  return [...cells.values()];
}

/** The training config of one method of a cell (backend, threads and data directory come from the caller). */
export function methodConfig(cell: Cell, m: MethodSpec, env: { backend: string; threads: number | null; dataDir: string | null; aeWeights: string | null }): TrainConfig {
  const base = defaultConfig(cell.dataset, cell.normalClass, cell.protocol.preset);
  return {
    ...base, ...cell.protocol,
    seed: cell.seed, preprocessing: cell.preprocessing,
    valFraction: cell.valFraction, alpha: cell.alpha, threshold: cell.valFraction > 0 ? 'adaptive' : 'fixed',
    objective: m.kind === 'soft-boundary' ? 'soft-boundary' : 'one-class',
    nu: m.kind === 'soft-boundary' ? m.nu : base.nu,
    hybrid: m.kind === 'hybrid', mu1: m.kind === 'hybrid' ? m.mu1 : base.mu1, mu2: m.kind === 'hybrid' ? m.mu2 : base.mu2,
    backend: env.backend, threads: env.threads, dataDir: env.dataDir, aeWeights: env.aeWeights,
  };
}

/**
 * What determines a cell's numbers: every method's config, less where it ran (backend, threads, paths).
 * A new TrainConfig key changes every hash (and so discards every finished record) unless it is optional
 * and absent by default; test/study.test.ts checks that the committed records still match.
 */
export function cellConfigHash(cell: Cell): string {
  const env = { backend: '', threads: null, dataDir: null, aeWeights: null };
  return shortHash(cell.methods.map((m) => ({ method: methodId(m), config: methodConfig(cell, m, env) })), 16);
}

const ALL = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
/** The seed repository's hybrid weights: μ2 = 1 for MNIST, 0.5 for Fashion-MNIST, 2 for CIFAR-10 (μ1 = 1). */
const SEED_MU2: Record<DatasetName, number> = { mnist: 1, 'fashion-mnist': 0.5, cifar10: 2 };

export const BUILTIN_SPECS: Record<string, StudySpecInput> = {
  table1: {
    name: 'table1',
    description: "The paper's Table 1: one-class and soft-boundary Deep SVDD (ν = 0.1), every class of MNIST and CIFAR-10, the published protocol, 10 seeds, trained on all normal training images (no validation hold-out, as the paper).",
    valFraction: 0,
    groups: (['mnist', 'cifar10'] as const).map((dataset) => ({
      dataset, classes: ALL, seeds: ALL, protocol: 'paper' as const,
      methods: [{ kind: 'one-class' as const }, { kind: 'soft-boundary' as const, nu: 0.1 }],
    })),
  },
  'seed-comparison': {
    name: 'seed-comparison',
    description: "The seed repository's nine experiments: MNIST, Fashion-MNIST and CIFAR-10 × baseline (one-class), hybrid (μ1 = 1, μ2 per dataset) and adaptive threshold (the baseline scored by the Mahalanobis distance), all ten classes, 30 + 30 epochs, 10% validation hold-out, α = 0.05; Fashion-MNIST both with the paper's preprocessing and with none (as the seed's code).",
    groups: (['mnist', 'fashion-mnist', 'cifar10'] as const).map((dataset) => ({
      dataset, classes: ALL, seeds: dataset === 'cifar10' ? [0] : [0, 1, 2], protocol: 'short' as const,
      preprocessing: dataset === 'fashion-mnist' ? ['gcn-minmax' as const, 'none' as const] : ['gcn-minmax' as const],
      methods: [{ kind: 'one-class' as const }, { kind: 'hybrid' as const, mu1: 1, mu2: SEED_MU2[dataset] }],
    })),
  },
  short: {
    name: 'short',
    description: 'MNIST and Fashion-MNIST: 10 classes × 3 seeds; CIFAR-10: 10 classes × 1 seed; 30 + 30 epochs; one-class, soft-boundary (ν = 0.1) and hybrid (the seed\'s μ2), each scored by distance and Mahalanobis (adaptive threshold), 10% validation hold-out; Fashion-MNIST with both preprocessings.',
    groups: (['mnist', 'fashion-mnist', 'cifar10'] as const).map((dataset) => ({
      dataset, classes: ALL, seeds: dataset === 'cifar10' ? [0] : [0, 1, 2], protocol: 'short' as const,
      preprocessing: dataset === 'fashion-mnist' ? ['gcn-minmax' as const, 'none' as const] : ['gcn-minmax' as const],
      methods: [{ kind: 'one-class' as const }, { kind: 'soft-boundary' as const, nu: 0.1 }, { kind: 'hybrid' as const, mu1: 1, mu2: SEED_MU2[dataset] }],
    })),
  },
  smoke: {
    name: 'smoke',
    description: 'A tiny study for tests: MNIST classes 0 and 1, one seed, 2 + 2 epochs on 400 images, every method.',
    groups: [{
      dataset: 'mnist', classes: [0, 1], seeds: [0],
      protocol: { base: 'quick', aeEpochs: 2, epochs: 2, aeMilestones: [], milestones: [], subset: 400, testSubset: 600 },
      methods: [{ kind: 'one-class' }, { kind: 'soft-boundary', nu: 0.1 }, { kind: 'hybrid', mu1: 1, mu2: 1 }],
    }],
  },
};
