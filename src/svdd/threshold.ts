/**
 * Label-free decision thresholds. The paper reports AUROC only; a deployed detector needs a
 * cut-off chosen without anomaly labels. Both rules target a false-positive rate alpha on normal
 * data, and evaluateThreshold measures how close the observed FPR comes on labelled test data.
 *
 * Rule everywhere: anomaly when score > tau (strict), see confusionAt.
 */
import { confusionAt, quantileLinear, type Confusion } from './metrics.ts';
import { chiSquareQuantile } from '../stats/chi-square.ts';

export interface Threshold {
  /** 'quantile': empirical (1 - alpha)-quantile of held-out normal scores; 'chi2': χ²(dof) quantile for squared Mahalanobis scores. */
  method: 'quantile' | 'chi2';
  /** Target false-positive rate on normal data. */
  alpha: number;
  tau: number;
  /** quantile: number of validation scores used. */
  nCalibration?: number;
  /** chi2: degrees of freedom (latent dimension). */
  dof?: number;
}

export interface ThresholdEvaluation extends Confusion {
  tau: number;
  /** Same as fpr; named so reports read "observed FPR vs target alpha". */
  observedFpr: number;
  /** Target alpha when a Threshold object was evaluated. */
  alpha?: number;
  /** Fraction of all test samples flagged as anomalous. */
  flaggedRate: number;
}

function checkAlpha(alpha: number): void {
  if (!(alpha > 0 && alpha < 1)) throw new Error(`alpha must be in (0, 1), got ${alpha}`);
}

/**
 * tau = numpy.quantile(validationNormalScores, 1 - alpha). Scores must come from normal data
 * not used for training: training scores are optimistically small and give too many false alarms.
 * With n validation scores the achieved FPR has a standard error of about sqrt(alpha(1-alpha)/n).
 */
export function quantileThreshold(validationNormalScores: ArrayLike<number>, alpha = 0.05): Threshold {
  checkAlpha(alpha);
  if (validationNormalScores.length === 0) throw new Error('quantileThreshold: no validation scores');
  // A NaN would break the sort, an Infinity would make τ infinite (everything "normal"): refuse.
  for (let i = 0; i < validationNormalScores.length; i++) {
    if (!Number.isFinite(validationNormalScores[i]!)) throw new Error(`quantileThreshold: validation score ${i} is not finite (${validationNormalScores[i]}); no threshold can be calibrated on it`);
  }
  return {
    method: 'quantile',
    alpha,
    tau: quantileLinear(validationNormalScores, 1 - alpha),
    nCalibration: validationNormalScores.length,
  };
}

/**
 * tau = χ²_{1-alpha}(dof): exact for squared Mahalanobis distances only if the latents really are
 * Gaussian with the fitted mean and covariance. Needs no validation data, but shrinkage and
 * non-Gaussian latents bias it; prefer quantileThreshold when normal validation data exists.
 */
export function chi2Threshold(dof: number, alpha = 0.05): Threshold {
  checkAlpha(alpha);
  if (!Number.isInteger(dof) || dof < 1) throw new Error(`chi2Threshold: dof must be a positive integer, got ${dof}`);
  return { method: 'chi2', alpha, tau: chiSquareQuantile(1 - alpha, dof), dof };
}

/**
 * Applies tau (anomaly when score > tau) to labelled test scores; labels may be all normal. A score
 * that is not finite counts as flagged (decisions fail closed, as predict's).
 */
export function evaluateThreshold(labels: ArrayLike<number>, scores: ArrayLike<number>, threshold: number | Threshold): ThresholdEvaluation {
  const tau = typeof threshold === 'number' ? threshold : threshold.tau;
  let closed: ArrayLike<number> = scores;
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i]!)) { closed = Float64Array.from(scores, (s) => (Number.isFinite(s) ? s : Infinity)); break; }
  }
  const c = confusionAt(labels, closed, tau, '>');
  const n = c.tp + c.fp + c.tn + c.fn;
  const out: ThresholdEvaluation = { ...c, tau, observedFpr: c.fpr, flaggedRate: n === 0 ? NaN : (c.tp + c.fp) / n };
  if (typeof threshold !== 'number') out.alpha = threshold.alpha;
  return out;
}
