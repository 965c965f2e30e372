/**
 * What `svdd report` reads: a run directory's files (results, configuration, model metadata, log,
 * timings, image grids, a finished explanation's figures) and the test latent codes of its model.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { engine } from '../../tensor/engine.ts';
import { loadModel, loadModelData, type ModelMeta } from '../model.ts';
import { encodeAll } from '../trainer.ts';
import { radiusSquared, squaredDistances } from '../svdd-model.ts';
import { toImageSet, type RunResults } from '../run.ts';
import { RunError } from '../errors.ts';
import { pca2 } from './pca.ts';
import type { ProgressCallback } from '../progress.ts';

export const GRADCAM_FILE = join('explain', 'top_anomalies_gradcam.png');
/** Written by `svdd explain --top-anomalies` next to GRADCAM_FILE; shown for contrast when present. */
export const GRADCAM_NORMAL_FILE = join('explain', 'most_normal_gradcam.png');
/** The captioned figures of `svdd explain --top-anomalies` (score, methods, scaling, colour bars); preferred over the bare grids. */
export const EXPLAIN_FIGURE_FILE = join('explain', 'figure_top_anomalies.png');
export const EXPLAIN_FIGURE_NORMAL_FILE = join('explain', 'figure_most_normal.png');
/** Written last by `svdd explain`: without it the explanation in DIR/explain was interrupted, and none of its images is shown. */
export const EXPLAIN_INDEX_FILE = join('explain', 'explain.json');

/** Settings of the run as saved in config.json (a TrainConfig plus the backend actually used). */
export type RunConfigJson = Record<string, unknown> & { testSubset?: number | null; dataDir?: string | null; backend?: string };

export interface RunDir {
  dir: string;
  config: RunConfigJson;
  results: RunResults;
  meta: ModelMeta | null;
  log: string | null;
  timings: { seconds?: Record<string, number> } | null;
  /** PNG bytes of the image grids, when the files exist. */
  images: {
    normals: Uint8Array | null; anomalies: Uint8Array | null; gradcam: Uint8Array | null; gradcamNormal: Uint8Array | null;
    explainFigure?: Uint8Array | null; explainFigureNormal?: Uint8Array | null;
  };
}

function readJson<T>(path: string, what: string): T {
  try { return JSON.parse(readFileSync(path, 'utf8')) as T; } catch (e) {
    throw new RunError(`${path}: cannot read ${what} (${(e as Error).message})`);
  }
}

const readOptional = (path: string): Buffer | null => (existsSync(path) ? readFileSync(path) : null);
const bytes = (b: Buffer | null): Uint8Array | null => (b ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : null);

/** Reads what a run directory holds; results.json and config.json are required, the rest optional. */
export function readRunDir(dir: string): RunDir {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new RunError(`${dir} is not a directory`);
  const resultsPath = join(dir, 'results.json');
  if (!existsSync(resultsPath)) throw new RunError(`${dir} holds no results.json (is it a finished \`svdd train\` run?)`);
  const results = readJson<RunResults>(resultsPath, 'the run results');
  const config = existsSync(join(dir, 'config.json')) ? readJson<RunConfigJson>(join(dir, 'config.json'), 'the run configuration') : {};
  const meta = existsSync(join(dir, 'model.json')) ? readJson<ModelMeta>(join(dir, 'model.json'), 'the model metadata') : null;
  const timings = existsSync(join(dir, 'timings.json')) ? readJson<RunDir['timings']>(join(dir, 'timings.json'), 'timings') : null;
  const explained = existsSync(join(dir, EXPLAIN_INDEX_FILE));
  const explainImage = (file: string): Uint8Array | null => (explained ? bytes(readOptional(join(dir, file))) : null);
  return {
    dir, config, results, meta, timings,
    log: readOptional(join(dir, 'log.txt'))?.toString('utf8') ?? null,
    images: {
      normals: bytes(readOptional(join(dir, 'normals.png'))),
      anomalies: bytes(readOptional(join(dir, 'anomalies.png'))),
      gradcam: explainImage(GRADCAM_FILE),
      gradcamNormal: explainImage(GRADCAM_NORMAL_FILE),
      explainFigure: explainImage(EXPLAIN_FIGURE_FILE),
      explainFigureNormal: explainImage(EXPLAIN_FIGURE_NORMAL_FILE),
    },
  };
}

export interface LatentProjection {
  count: number;
  repDim: number;
  /** Interleaved PCA coordinates [x0, y0, x1, y1, …] of the test codes. */
  points: Float64Array;
  labels: Uint8Array;
  /** The center c in the same PCA coordinates. */
  center: [number, number];
  variances: [number, number];
  totalVariance: number;
  /** Largest relative difference between distances recomputed from the codes and results.json's scores; null when not comparable. */
  scoreMismatch: number | null;
}

export interface LatentOptions {
  dataDir?: string;
  backend?: string;
  /** Hears the steps: 'loading the test set', 'encoding the test set' (images), 'latent PCA'. */
  onProgress?: ProgressCallback;
}

/**
 * Test latent codes of the saved model, on the same test images the run scored: the dataset is
 * preprocessed with the saved constants and the run's test subset, and the codes are checked
 * against the saved scores so a different dataset copy cannot silently produce a wrong picture.
 */
export async function latentProjection(run: RunDir, opts: LatentOptions = {}): Promise<LatentProjection> {
  // The backend for the encoding only: the caller's is active again afterwards.
  return engine.withBackend(opts.backend ?? 'auto', () => {
    const model = loadModel(run.dir);
    const dataDir = opts.dataDir ?? (typeof run.config.dataDir === 'string' ? run.config.dataDir : undefined);
    const testSubset = typeof run.config.testSubset === 'number' ? run.config.testSubset : undefined;
    const progress = opts.onProgress;
    progress?.(0, 1, 'loading the test set');
    const { data } = loadModelData(model.meta, dataDir, testSubset);
    const set = toImageSet(data.test, data);
    progress?.(1, 1, 'loading the test set');
    const codes = encodeAll(model.encode, model.net, set, undefined, progress && ((done, total) => progress(done, total, 'encoding the test set')));
    const d = model.meta.repDim;
    progress?.(0, 1, 'latent PCA');
    const pca = pca2(codes, set.count, d);
    const saved = run.results.scores;
    let scoreMismatch: number | null = null;
    if (saved.length === set.count && saved.every((s, i) => s.index === data.test.indices[i])) {
      const distances = squaredDistances(codes, set.count, model.meta.centerC), r2 = radiusSquared(model.meta);
      scoreMismatch = 0;
      for (let i = 0; i < set.count; i++) {
        const dist = distances[i]!;
        const s = saved[i]!.score;
        if (typeof s !== 'number' || !Number.isFinite(s)) continue;
        scoreMismatch = Math.max(scoreMismatch, Math.abs(dist - r2 - s) / Math.max(1e-6, Math.abs(s), dist));
      }
    }
    const points = pca.projectAll(codes, set.count);
    progress?.(1, 1, 'latent PCA');
    return {
      count: set.count, repDim: d, points, labels: data.test.labels,
      center: pca.project(c64(model.meta.centerC)), variances: pca.variances, totalVariance: pca.totalVariance, scoreMismatch,
    };
  });
}

const c64 = (v: number[]): Float64Array => Float64Array.from(v);
