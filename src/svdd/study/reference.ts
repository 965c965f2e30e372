/**
 * Published figures the study is compared with, as data with their citations.
 *
 * PAPER_TABLE1: Ruff, Vandermeulen, Görnitz, Deecke, Siddiqui, Binder, Müller, Kloft, "Deep
 * One-Class Classification", ICML 2018, Table 1: test AUROC in % (mean ± std over 10 seeds) of
 * soft-boundary and one-class Deep SVDD per normal class. Their class means are the paper's
 * quoted averages (MNIST one-class 94.8, CIFAR-10 one-class 64.8; checked in test/study.test.ts).
 *
 * SEED_SUMMARY: the seed repository's Deliverables/summary_table.md: mean test AUC over the ten
 * classes of its baseline (one-class Deep SVDD), hybrid (μ1 = 1, μ2 per dataset) and adaptive
 * threshold (Mahalanobis score) experiments.
 */

export interface PaperCell { mean: number; std: number }

export const PAPER_CITATION = 'Ruff et al., Deep One-Class Classification, ICML 2018, Table 1 (AUROC %, mean ± std over 10 seeds)';
export const SEED_CITATION = "the seed repository's Deliverables/summary_table.md (mean AUC over the ten classes)";

const cells = (rows: [number, number][]): PaperCell[] => rows.map(([mean, std]) => ({ mean, std }));

export const PAPER_TABLE1: Record<'mnist' | 'cifar10', Record<'soft-boundary' | 'one-class', PaperCell[]>> = {
  mnist: {
    'soft-boundary': cells([[97.8, 0.7], [99.6, 0.1], [89.5, 1.2], [90.3, 2.1], [93.8, 1.5], [85.8, 2.5], [98.0, 0.4], [92.7, 1.4], [92.9, 1.4], [94.9, 0.6]]),
    'one-class': cells([[98.0, 0.7], [99.7, 0.1], [91.7, 0.8], [91.9, 1.5], [94.9, 0.8], [88.5, 0.9], [98.3, 0.5], [94.6, 0.9], [93.9, 1.6], [96.5, 0.3]]),
  },
  cifar10: {
    'soft-boundary': cells([[61.7, 4.1], [64.8, 1.4], [49.5, 1.4], [56.0, 1.1], [59.1, 1.1], [62.1, 2.4], [67.8, 2.4], [65.2, 1.0], [75.6, 1.7], [71.0, 1.1]]),
    'one-class': cells([[61.7, 4.1], [65.9, 2.1], [50.8, 0.8], [59.1, 1.4], [60.9, 1.1], [65.7, 2.5], [67.7, 2.6], [67.3, 0.9], [75.9, 1.2], [73.1, 1.2]]),
  },
};

/** Mean AUC (fraction) over the ten classes, per dataset and experiment. */
export const SEED_SUMMARY: Record<'mnist' | 'fashion-mnist' | 'cifar10', { baseline: number; hybrid: number; adaptive: number }> = {
  'fashion-mnist': { baseline: 0.9092, hybrid: 0.9135, adaptive: 0.8865 },
  mnist: { baseline: 0.9814, hybrid: 0.9863, adaptive: 0.9848 },
  cifar10: { baseline: 0.6074, hybrid: 0.6306, adaptive: 0.6142 },
};

export function paperCell(dataset: string, kind: string, cls: number): PaperCell | null {
  if (dataset !== 'mnist' && dataset !== 'cifar10') return null;
  if (kind !== 'one-class' && kind !== 'soft-boundary') return null;
  return PAPER_TABLE1[dataset][kind][cls] ?? null;
}
