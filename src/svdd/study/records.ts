/**
 * A cell's record: the small JSON that marks a cell done and holds everything the summary
 * needs (metrics of every score of every method, thresholds, a sampled ROC curve, timings,
 * versions). It is built from the runs' own results.json and model.json, so a record can be
 * rebuilt from the run directories at any time.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { auroc, averagePrecision, bestF1, rocCurve } from '../metrics.ts';
import type { ModelMeta } from '../model.ts';
import { combinedScores } from '../svdd-model.ts';
import type { RunResults } from '../run.ts';
import type { Cell } from './spec.ts';
import { methodId } from './spec.ts';

export const RECORD_FORMAT = 'svdd-ts-study-cell';
/** FPR grid of the sampled ROC curves: 0, 0.01, …, 1. */
export const ROC_GRID = 101;

export type ScoreName = 'distance' | 'mahalanobis' | 'reconstruction' | 'combined';

export interface ScoreMetrics {
  auroc: number;
  averagePrecision: number;
  /** Best F1 over all thresholds, chosen with the test labels (an upper bound, not a result). */
  bestF1Oracle: number;
  /** At the label-free threshold τ (the (1 − α) quantile of held-out normal scores), when there is one. */
  atTau: { tau: number; alpha: number; f1: number; precision: number; recall: number; observedFpr: number } | null;
  /** TPR at FPR = 0, 0.01, …, 1 (the ROC step function sampled). */
  roc: number[];
}

export interface MethodRecord {
  method: string;
  kind: string;
  /** Training loss and radius at the end, collapse warnings. */
  finalLoss: number | null;
  radiusR: number;
  collapse: string | null;
  scores: Partial<Record<ScoreName, ScoreMetrics>>;
  seconds: number;
}

export interface CellRecord {
  format: typeof RECORD_FORMAT;
  version: 1;
  cell: string;
  configHash: string;
  dataset: string; normalClass: number; seed: number; preprocessing: string; protocol: string;
  counts: { train: number; validation: number; test: number; anomalous: number };
  f1AllAnomalous: number;
  pretrainTestAuroc: number | null;
  methods: MethodRecord[];
  timings: { seconds: number; pretrainSeconds: number; threads: number | null; backend: string; host: string; finished: string };
  versions: { svddTs: string; node: string; commit: string | null };
}

const round = (v: number, d = 6): number => Number(v.toFixed(d));

/** TPR of the ROC step function at each FPR of the grid (the highest TPR reached at FPR ≤ grid point). */
export function sampleRoc(labels: ArrayLike<number>, scores: ArrayLike<number>): number[] {
  const pts = rocCurve(labels, scores);
  const out: number[] = [];
  let k = 0, best = 0;
  for (let g = 0; g < ROC_GRID; g++) {
    const f = g / (ROC_GRID - 1);
    while (k < pts.length && pts[k]!.fpr <= f + 1e-12) { best = Math.max(best, pts[k]!.tpr); k++; }
    out.push(round(best, 4));
  }
  return out;
}

function scoreMetrics(labels: Uint8Array, scores: Float64Array, atTau: ScoreMetrics['atTau']): ScoreMetrics {
  return {
    auroc: round(auroc(labels, scores)), averagePrecision: round(averagePrecision(labels, scores)),
    bestF1Oracle: round(bestF1(labels, scores).f1), atTau, roc: sampleRoc(labels, scores),
  };
}

/** The record of one method's finished run directory. */
export function methodRecord(runDir: string, method: Cell['methods'][number], seconds: number): { rec: MethodRecord; results: RunResults; labels: Uint8Array } {
  const results = JSON.parse(readFileSync(join(runDir, 'results.json'), 'utf8')) as RunResults;
  const meta = JSON.parse(readFileSync(join(runDir, 'model.json'), 'utf8')) as ModelMeta;
  const labels = Uint8Array.from(results.scores, (s) => s.label);
  const ev = results.evaluation;
  const tauOf = (score: 'svdd' | 'mahalanobis'): ScoreMetrics['atTau'] => {
    const t = ev.thresholds.find((x) => x.score === score && x.method === 'quantile');
    return t ? { tau: t.tau, alpha: t.alpha ?? NaN, f1: round(t.f1), precision: round(t.precision), recall: round(t.recall), observedFpr: round(t.observedFpr) } : null;
  };
  const scores: MethodRecord['scores'] = {};
  const collapse = ev.collapse.detected ? ev.collapse.reason : null;
  if (!collapse) {
    const distance = Float64Array.from(results.scores, (s) => s.score);
    scores.distance = scoreMetrics(labels, distance, tauOf('svdd'));
    if (results.scores[0]?.mahalanobis !== undefined) scores.mahalanobis = scoreMetrics(labels, Float64Array.from(results.scores, (s) => s.mahalanobis!), tauOf('mahalanobis'));
    if (results.scores[0]?.reconstruction !== undefined && meta.hybrid) {
      const recon = Float64Array.from(results.scores, (s) => s.reconstruction!);
      scores.reconstruction = scoreMetrics(labels, recon, null);
      scores.combined = scoreMetrics(labels, combinedScores(distance, recon, meta.hybrid), null);
    }
  }
  const last = results.history.train.at(-1);
  return {
    rec: { method: methodId(method), kind: method.kind, finalLoss: last ? last.loss : null, radiusR: results.radiusR, collapse, scores, seconds: round(seconds, 2) },
    results, labels,
  };
}

