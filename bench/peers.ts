/**
 * What bench/run.ts says about its PyTorch peer: the ratio that matters (our best configuration
 * against PyTorch's best, same run) and whether a peer figure is sane, judged against the peer's
 * recorded history (bench/peer-history.json, each figure with its source). A peer figure far from
 * its history (the CIFAR-10 autoencoder once measured 21 images/s instead of ~170) makes every
 * ratio built on it wrong, so the benchmark warns instead of printing it silently.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PeerHistory {
  about?: string;
  /** Warn when a figure is more than this many times above or below its reference. */
  warnFactor: number;
  runs: { source: string; figures: Record<string, number>; excluded?: Record<string, [number, string]> }[];
}

export const peerKey = (net: string, workload: string, threads: number): string => `${net}/${workload}/${threads}`;

export function loadPeerHistory(file = join(dirname(fileURLToPath(import.meta.url)), 'peer-history.json')): PeerHistory {
  return JSON.parse(readFileSync(file, 'utf8')) as PeerHistory;
}

/** The median of a key's recorded figures (excluded ones left out), and how many there are; null when none. */
export function peerReference(history: PeerHistory, key: string): { median: number; count: number } | null {
  const xs = history.runs.map((r) => r.figures[key]).filter((v): v is number => typeof v === 'number' && v > 0).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = xs.length >> 1;
  return { median: xs.length % 2 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2, count: xs.length };
}

/** A warning line when `value` is more than warnFactor× above or below the key's history, else null. */
export function peerWarning(history: PeerHistory, key: string, value: number): string | null {
  const ref = peerReference(history, key);
  if (!ref || !(value > 0)) return null;
  const factor = value / ref.median;
  if (factor <= history.warnFactor && factor >= 1 / history.warnFactor) return null;
  const [net, workload, threads] = key.split('/');
  const off = factor > 1 ? `${factor.toFixed(1)}× above` : `${(1 / factor).toFixed(1)}× below`;
  return `WARNING: PyTorch ${net} ${workload} at ${threads} thread${threads === '1' ? '' : 's'}: ${value.toFixed(0)} images/s is ${off} `
    + `its recorded history (median ${ref.median.toFixed(0)} of ${ref.count} runs, bench/peer-history.json); ratios against it are suspect `
    + '(busy machine? rerun the peer alone; Debian\'s PyTorch on the reference BLAS, libblas3, is ~20× slower on transposed convolutions: apt-get install libopenblas0-pthread)';
}

export interface EpochFigure { net: string; workload: string; backend: string; threads: number; imagesPerS: number; torch1?: number; torch2?: number }

export interface BestRatio {
  net: string;
  workload: string;
  backend: string;
  /** Our best images/s over the thread counts run, and the thread count that gave it. */
  ours: number;
  oursThreads: number;
  /** PyTorch's best over its 1 and 2 threads (same run), and which; undefined without a peer. */
  torch?: number;
  torchThreads?: number;
  /** ours / torch. */
  ratio?: number;
  /** The peer figure behind `torch` drew a sanity warning. */
  suspect?: boolean;
}

/** Per backend and workload: our best thread count against PyTorch's best thread count. */
export function bestRatios(rows: readonly EpochFigure[], history?: PeerHistory): BestRatio[] {
  const groups = new Map<string, EpochFigure[]>();
  for (const r of rows) {
    const k = `${r.backend}|${r.net}|${r.workload}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  return [...groups.values()].map((rs) => {
    const best = rs.reduce((a, b) => (b.imagesPerS > a.imagesPerS ? b : a));
    const out: BestRatio = { net: best.net, workload: best.workload, backend: best.backend, ours: best.imagesPerS, oursThreads: best.threads };
    const peers = ([[1, best.torch1], [2, best.torch2]] as const).filter((p): p is readonly [1 | 2, number] => typeof p[1] === 'number' && p[1] > 0);
    if (peers.length > 0) {
      const [threads, torch] = peers.reduce((a, b) => (b[1] > a[1] ? b : a));
      Object.assign(out, { torch, torchThreads: threads, ratio: best.imagesPerS / torch });
      if (history && peerWarning(history, peerKey(best.net, best.workload, threads), torch)) out.suspect = true;
    }
    return out;
  });
}

/** The ratio table printed at the end of a run. */
export function formatBestRatios(ratios: readonly BestRatio[]): string {
  const lines = ['workload               | ours best (images/s)  | PyTorch best (images/s) | ours best / PyTorch best'];
  for (const r of ratios) {
    const ours = `${r.ours.toFixed(0)} (${r.backend} ${r.oursThreads}t)`;
    const torch = r.torch === undefined ? 'n/a' : `${r.torch.toFixed(0)} (${r.torchThreads}t)`;
    const ratio = r.ratio === undefined ? 'n/a' : `${r.ratio.toFixed(2)}×${r.suspect ? ' (peer figure suspect, see warning)' : ''}`;
    lines.push(`${`${r.net} ${r.workload}`.padEnd(22)} | ${ours.padEnd(21)} | ${torch.padEnd(23)} | ${ratio}`);
  }
  return lines.join('\n');
}
