/**
 * Detection metrics for one-class anomaly scoring.
 *
 * Convention throughout: label 1 = anomaly = positive class, label 0 = normal; a higher score
 * means "more anomalous". The ranking metrics (auroc, averagePrecision, bestF1, rocCurve,
 * prCurve) follow scikit-learn's definitions exactly, because the paper's numbers and our
 * reference fixtures were produced with scikit-learn, and tie handling changes results on
 * quantised scores.
 *
 * Everything sorts once (O(n log n)) and then sweeps over groups of tied scores: a threshold
 * can only separate distinct score values, so each tie group moves the operating point once.
 */

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  /** tp / (tp + fp); NaN when nothing is flagged (undefined, not 0, so it is not mistaken for a measurement). */
  precision: number;
  /** tp / (tp + fn); NaN when there are no anomalies. */
  recall: number;
  /** 2tp / (2tp + fp + fn): equals the harmonic mean where both are defined and is 0 when tp = 0 but anomalies exist. */
  f1: number;
  /** fp / (fp + tn); NaN when there are no normals. */
  fpr: number;
}

export interface BestF1 {
  f1: number;
  /** Predict anomaly when score >= threshold (scikit-learn precision_recall_curve convention). */
  threshold: number;
  precision: number;
  recall: number;
}

export interface RocPoint { fpr: number; tpr: number; threshold: number }
export interface PrPoint { recall: number; precision: number; threshold: number }

/** One operating point per distinct score, from the highest score down (cumulative counts). */
interface Sweep {
  /** Distinct scores, descending. */
  thresholds: Float64Array;
  /** tps[k], fps[k]: positives / negatives with score >= thresholds[k]. */
  tps: Float64Array;
  fps: Float64Array;
  nPos: number;
  nNeg: number;
}

function checkInputs(labels: ArrayLike<number>, scores: ArrayLike<number>): void {
  if (labels.length !== scores.length) {
    throw new Error(`labels and scores differ in length (${labels.length} vs ${scores.length})`);
  }
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l !== 0 && l !== 1) throw new Error(`label at index ${i} is ${l}; expected 0 (normal) or 1 (anomaly)`);
    const s = scores[i]!;
    // NaN would silently break the sort order and every metric derived from it.
    if (Number.isNaN(s)) throw new Error(`score at index ${i} is NaN`);
  }
}

function sweep(labels: ArrayLike<number>, scores: ArrayLike<number>, what: string): Sweep {
  checkInputs(labels, scores);
  const n = labels.length;
  let nPos = 0;
  for (let i = 0; i < n; i++) nPos += labels[i]!;
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) {
    throw new Error(`${what} is undefined when only one class is present (${nPos} anomalies, ${nNeg} normals)`);
  }
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const s = Float64Array.from(scores);
  // Comparison, not subtraction: Infinity - Infinity is NaN and would corrupt the order.
  order.sort((a, b) => (s[b]! > s[a]! ? 1 : s[b]! < s[a]! ? -1 : 0));
  const thresholds: number[] = [];
  const tpsArr: number[] = [];
  const fpsArr: number[] = [];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < n; ) {
    const v = s[order[k]!]!;
    while (k < n && s[order[k]!]! === v) {
      if (labels[order[k]!] === 1) tp++; else fp++;
      k++;
    }
    thresholds.push(v);
    tpsArr.push(tp);
    fpsArr.push(fp);
  }
  return { thresholds: Float64Array.from(thresholds), tps: Float64Array.from(tpsArr), fps: Float64Array.from(fpsArr), nPos, nNeg };
}

/**
 * Area under the ROC curve, as sklearn.metrics.roc_auc_score: the trapezoidal area over
 * distinct thresholds, which equals P(score_anomaly > score_normal) + 1/2 P(tie).
 */
export function auroc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const { tps, fps, nPos, nNeg } = sweep(labels, scores, 'AUROC');
  // Accumulate in counts (integers, exact) and divide once, so ties contribute exactly 1/2.
  let area2 = 0;
  let prevTp = 0;
  let prevFp = 0;
  for (let k = 0; k < tps.length; k++) {
    area2 += (fps[k]! - prevFp) * (tps[k]! + prevTp);
    prevTp = tps[k]!;
    prevFp = fps[k]!;
  }
  return area2 / (2 * nPos * nNeg);
}

/**
 * sklearn.metrics.average_precision_score: sum over distinct thresholds of
 * (R_k - R_{k-1}) * P_k, a step function with no interpolation (not the trapezoid).
 */
export function averagePrecision(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const { tps, fps, nPos } = sweep(labels, scores, 'average precision');
  let ap = 0;
  let prevRecall = 0;
  for (let k = 0; k < tps.length; k++) {
    const recall = tps[k]! / nPos;
    ap += (recall - prevRecall) * (tps[k]! / (tps[k]! + fps[k]!));
    prevRecall = recall;
  }
  return ap;
}

/**
 * Maximum F1 over sklearn precision_recall_curve thresholds (every distinct score), predicting
 * anomaly when score >= threshold. On equal F1 the lowest threshold wins, matching np.argmax over
 * sklearn's ascending threshold array. This is an oracle number (it looks at test labels);
 * report it next to a label-free threshold, never instead of one.
 */
export function bestF1(labels: ArrayLike<number>, scores: ArrayLike<number>): BestF1 {
  const { thresholds, tps, fps, nPos } = sweep(labels, scores, 'best F1');
  let best: BestF1 = { f1: -1, threshold: NaN, precision: NaN, recall: NaN };
  // Walk from the lowest threshold up so that ">" keeps the first (lowest-threshold) maximum.
  for (let k = tps.length - 1; k >= 0; k--) {
    const tp = tps[k]!;
    const precision = tp / (tp + fps[k]!);
    const recall = tp / nPos;
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    if (f1 > best.f1) best = { f1, threshold: thresholds[k]!, precision, recall };
  }
  return best;
}

/** F1 of the trivial rule "everything is anomalous" (recall 1, precision = anomaly rate): the floor any detector's F1 should beat. */
export function f1AllAnomalous(labels: ArrayLike<number>): number {
  let nPos = 0;
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l !== 0 && l !== 1) throw new Error(`label at index ${i} is ${l}; expected 0 (normal) or 1 (anomaly)`);
    nPos += l;
  }
  if (labels.length === 0) throw new Error('f1AllAnomalous: no labels');
  return (2 * nPos) / (nPos + labels.length);
}

/**
 * Confusion matrix at a fixed threshold. Default rule: anomaly when score > threshold (strict),
 * the Deep SVDD convention "outside the sphere" (dist² > R²) and the one under which a
 * (1 - alpha)-quantile threshold flags about alpha of the normals. Pass rule '>=' to reproduce
 * a threshold reported by bestF1. Works with a single class (e.g. FPR on normals only).
 */
export function confusionAt(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  threshold: number,
  rule: '>' | '>=' = '>',
): Confusion {
  checkInputs(labels, scores);
  if (Number.isNaN(threshold)) throw new Error('threshold is NaN');
  let tp = 0, fp = 0, tn = 0, fn = 0;
  const inclusive = rule === '>=';
  for (let i = 0; i < labels.length; i++) {
    const s = scores[i]!;
    const flagged = inclusive ? s >= threshold : s > threshold;
    if (labels[i] === 1) { if (flagged) tp++; else fn++; } else { if (flagged) fp++; else tn++; }
  }
  const ratio = (a: number, b: number): number => (b === 0 ? NaN : a / b);
  return {
    tp, fp, tn, fn,
    precision: ratio(tp, tp + fp),
    recall: ratio(tp, tp + fn),
    f1: ratio(2 * tp, 2 * tp + fp + fn),
    fpr: ratio(fp, fp + tn),
  };
}

/**
 * ROC points as sklearn roc_curve(drop_intermediate=False): starts at (0, 0) with threshold
 * +Infinity, then one point per distinct score in decreasing order (anomaly when score >= threshold).
 */
export function rocCurve(labels: ArrayLike<number>, scores: ArrayLike<number>): RocPoint[] {
  const { thresholds, tps, fps, nPos, nNeg } = sweep(labels, scores, 'ROC curve');
  const pts: RocPoint[] = [{ fpr: 0, tpr: 0, threshold: Infinity }];
  for (let k = 0; k < tps.length; k++) pts.push({ fpr: fps[k]! / nNeg, tpr: tps[k]! / nPos, threshold: thresholds[k]! });
  return pts;
}

/**
 * Precision-recall points in increasing recall / decreasing threshold order (the reverse of
 * sklearn's array order), starting with sklearn's sentinel (recall 0, precision 1, threshold +Infinity).
 */
export function prCurve(labels: ArrayLike<number>, scores: ArrayLike<number>): PrPoint[] {
  const { thresholds, tps, fps, nPos } = sweep(labels, scores, 'PR curve');
  const pts: PrPoint[] = [{ recall: 0, precision: 1, threshold: Infinity }];
  for (let k = 0; k < tps.length; k++) {
    pts.push({ recall: tps[k]! / nPos, precision: tps[k]! / (tps[k]! + fps[k]!), threshold: thresholds[k]! });
  }
  return pts;
}

function sortedCopy(values: ArrayLike<number>): Float64Array {
  if (values.length === 0) throw new Error('quantile of an empty array');
  const v = Float64Array.from(values);
  for (let i = 0; i < v.length; i++) if (Number.isNaN(v[i]!)) throw new Error(`quantile input has NaN at index ${i}`);
  return v.sort();
}

function quantileOfSorted(v: Float64Array, q: number): number {
  if (!(q >= 0 && q <= 1)) throw new Error(`quantile level must be in [0, 1], got ${q}`);
  const n = v.length;
  const h = (n - 1) * q;
  const lo = Math.min(Math.floor(h), n - 1);
  const hi = Math.min(lo + 1, n - 1);
  const g = h - lo;
  const a = v[lo]!;
  const b = v[hi]!;
  // numpy's _lerp: interpolating from the nearer end keeps q = 0 and q = 1 exact and matches
  // numpy to the last bit rather than only to rounding.
  const diff = b - a;
  return g >= 0.5 ? b - diff * (1 - g) : a + diff * g;
}

/** numpy.quantile(values, q) with the default method 'linear' (type 7). */
export function quantileLinear(values: ArrayLike<number>, q: number): number {
  return quantileOfSorted(sortedCopy(values), q);
}

/** Several quantiles with one sort. */
export function quantilesLinear(values: ArrayLike<number>, qs: ArrayLike<number>): Float64Array {
  const v = sortedCopy(values);
  const out = new Float64Array(qs.length);
  for (let i = 0; i < qs.length; i++) out[i] = quantileOfSorted(v, qs[i]!);
  return out;
}
