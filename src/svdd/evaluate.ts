/**
 * Evaluation of a trained model on the one-class test set: anomaly scores, ranking metrics
 * (positive class = anomaly), collapse detection, and the label-free thresholds' operating point.
 */
import { auroc, averagePrecision, bestF1, f1AllAnomalous } from './metrics.ts';
import { Gaussian } from './gaussian.ts';
import { evaluateThreshold, type ThresholdEvaluation } from './threshold.ts';
import { encodeAll, reconstructionScores } from './trainer.ts';
import type { ImageSet } from './batches.ts';
import type { ProgressCallback } from './progress.ts';
import { combinedScores, svddScoresOfCodes, type SvddModel } from './svdd-model.ts';

export interface RankingMetrics {
  auroc: number | null;
  averagePrecision: number | null;
  /** Oracle: the best F1 over all thresholds, chosen WITH the test labels. */
  bestF1Oracle: { f1: number; threshold: number; precision: number; recall: number } | null;
}

export interface Collapse { detected: boolean; reason: string | null }

export interface TestScores {
  codes: Float64Array;
  svdd: Float64Array;
  reconstruction: Float64Array | null;
  combined: Float64Array | null;
  mahalanobis: Float64Array | null;
}

export interface EvaluationResult {
  positiveClass: string;
  counts: { test: number; normal: number; anomalous: number };
  collapse: Collapse;
  /** Metrics of the model's main score (SVDD distance, minus R² for soft-boundary). */
  metrics: RankingMetrics;
  /** F1 of flagging everything as anomalous: the baseline any F1 should be read against. */
  f1AllAnomalous: number;
  hybrid: { aurocDistance: number | null; aurocReconstruction: number | null; aurocCombined: number | null; combined: string } | null;
  mahalanobis: RankingMetrics | null;
  thresholds: (ThresholdEvaluation & { score: string; method: string })[];
}

/** Scores for a set of images under every score the model supports. */
export function scoreImages(model: SvddModel, set: ImageSet, onProgress?: ProgressCallback): TestScores {
  const { meta } = model;
  const codes = encodeAll(model.encode, model.net, set, 200, onProgress ? (done, total) => onProgress(done, total, 'scoring the test set') : undefined);
  const svdd = svddScoresOfCodes(codes, set.count, meta);
  let reconstruction: Float64Array | null = null, combined: Float64Array | null = null;
  if (model.autoencoder && meta.hybrid) {
    reconstruction = reconstructionScores(model.autoencoder, set, 200, onProgress ? (done, total) => onProgress(done, total, 'reconstruction errors') : undefined);
    combined = combinedScores(svdd, reconstruction, meta.hybrid);
  }
  const mahalanobis = meta.gaussian ? Gaussian.fromJSON(meta.gaussian).mahalanobisSqBatch(codes) : null;
  return { codes, svdd, reconstruction, combined, mahalanobis };
}

/** Says whether scores carry no ranking information (all equal or not finite). */
export function detectCollapse(scores: ArrayLike<number>, what: string): Collapse {
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    if (!Number.isFinite(s)) return { detected: true, reason: `${what}: non-finite score at index ${i} (${s}); training diverged` };
    if (s < min) min = s;
    if (s > max) max = s;
  }
  if (scores.length > 0 && max - min <= 1e-12 * Math.max(1, Math.abs(max))) {
    return { detected: true, reason: `${what}: all ${scores.length} scores are equal (${max}); the network collapsed to a constant map and AUROC would be meaningless` };
  }
  return { detected: false, reason: null };
}

export function rankingMetrics(labels: ArrayLike<number>, scores: ArrayLike<number>): RankingMetrics {
  const hasBoth = Array.prototype.some.call(labels, (l: number) => l === 1) && Array.prototype.some.call(labels, (l: number) => l === 0);
  if (!hasBoth) return { auroc: null, averagePrecision: null, bestF1Oracle: null };
  return { auroc: auroc(labels, scores), averagePrecision: averagePrecision(labels, scores), bestF1Oracle: bestF1(labels, scores) };
}

export function evaluate(model: SvddModel, scores: TestScores, labels: Uint8Array): EvaluationResult {
  const anomalous = labels.reduce((a, l) => a + l, 0);
  const collapse = detectCollapse(scores.svdd, 'test SVDD scores');
  const metrics = collapse.detected ? { auroc: null, averagePrecision: null, bestF1Oracle: null } : rankingMetrics(labels, scores.svdd);
  const hybrid = scores.combined && scores.reconstruction ? {
    aurocDistance: metrics.auroc,
    aurocReconstruction: rankingMetrics(labels, scores.reconstruction).auroc,
    aurocCombined: rankingMetrics(labels, scores.combined).auroc,
    combined: `${model.meta.hybrid!.mu1}·distance + ${model.meta.hybrid!.mu2}·reconstruction error`,
  } : null;
  const thresholds = model.meta.thresholds.map((t) => {
    const s = t.score === 'mahalanobis' ? scores.mahalanobis : scores.svdd;
    if (!s) throw new Error(`threshold on '${t.score}' scores, but the model has no such score`);
    return { ...evaluateThreshold(labels, s, { method: t.method, alpha: t.alpha, tau: t.tau }), score: t.score, method: t.method };
  });
  return {
    positiveClass: `anomaly (label 1: any class other than ${model.meta.normalClass})`,
    counts: { test: labels.length, normal: labels.length - anomalous, anomalous },
    collapse,
    metrics,
    f1AllAnomalous: anomalous > 0 ? f1AllAnomalous(labels) : 0,
    hybrid,
    mahalanobis: scores.mahalanobis ? rankingMetrics(labels, scores.mahalanobis) : null,
    thresholds,
  };
}
