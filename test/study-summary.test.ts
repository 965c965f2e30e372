/**
 * `study summarize` over several studies: methods of one kind with different settings (a hybrid
 * with μ2 = 1 in one study, μ2 = 1/784 in another that reruns the same cells) are separate columns,
 * paired tests and timings, never pooled. Synthetic records, so every expected number is known.
 */
import { expect } from 'chai';
import type { CellRecord, MethodRecord, ScoreMetrics } from '../src/svdd/study/records.ts';
import { RECORD_FORMAT, ROC_GRID } from '../src/svdd/study/records.ts';
import { buildSections, methodQualifier, renderSummary, sectionTitle, type Section } from '../src/svdd/study/summary.ts';

const metrics = (auroc: number): ScoreMetrics => ({
  auroc, averagePrecision: 0.9, bestF1Oracle: 0.9, atTau: null, roc: Array.from({ length: ROC_GRID }, (_, i) => i / (ROC_GRID - 1)),
});

const method = (id: string, kind: string, auroc: number): MethodRecord => ({
  method: id, kind, finalLoss: 0.1, radiusR: 0, collapse: null, seconds: 1,
  scores: kind === 'hybrid' ? { distance: metrics(auroc), combined: metrics(auroc) } : { distance: metrics(auroc) },
});

function record(cls: number, seed: number, methods: MethodRecord[], seconds: number): CellRecord {
  return {
    format: RECORD_FORMAT, version: 1, cell: `mnist-short-c${cls}-s${seed}`, configHash: '0', dataset: 'mnist', normalClass: cls, seed,
    preprocessing: 'gcn-minmax', protocol: 'short', counts: { train: 10, validation: 2, test: 20, anomalous: 18 }, f1AllAnomalous: 0.95,
    pretrainTestAuroc: null, methods,
    timings: { seconds, pretrainSeconds: 1, threads: 1, backend: 'wasm', host: 'h', finished: '2026-12-02T00:00:00Z' },
    versions: { svddTs: '0', node: 'v20', commit: null },
  };
}

const SEED_HYBRID = 'hybrid-mu1=1-mu2=1';
const PER_PIXEL = 'hybrid-mu1=1-mu2=0.0012755102040816326';

/** Two studies over classes 0–5, seed 0: the grid (one-class, hybrid μ2 = 1) and the per-pixel hybrid. */
function twoStudies(): CellRecord[] {
  const out: CellRecord[] = [];
  for (let c = 0; c < 6; c++) out.push(record(c, 0, [method('one-class', 'one-class', 0.9), method(SEED_HYBRID, 'hybrid', 0.8 - 0.01 * c)], 300));
  for (let c = 0; c < 6; c++) out.push(record(c, 0, [method(PER_PIXEL, 'hybrid', 0.95 + 0.001 * c)], 100));
  return out;
}

describe('study summarize: several studies, several methods of a kind', () => {
  it('names a method by the settings that tell it from others of its kind', () => {
    expect(methodQualifier(PER_PIXEL)).to.equal('μ2=0.00128');
    expect(methodQualifier('hybrid-mu1=0.5-mu2=2')).to.equal('μ1=0.5 μ2=2');
    expect(methodQualifier('soft-boundary-nu0.1')).to.equal('ν=0.1');
    expect(methodQualifier('my-name')).to.equal('my-name');
  });

  it('gives each hybrid setting its own columns with its own numbers', () => {
    const [s] = buildSections(twoStudies());
    expect(s!.cells).to.equal(6);
    const labels = s!.columns.map((c) => c.label);
    expect(labels).to.deep.equal(['one-class', 'hybrid μ2=1 (distance)', 'hybrid μ2=0.00128 (distance)', 'hybrid μ2=1 (combined)', 'hybrid μ2=0.00128 (combined)']);
    const col = (label: string) => s!.columns.find((c) => c.label === label)!;
    const row0 = s!.rows[0]!;
    expect(row0.cells.get(`${col('hybrid μ2=1 (distance)').method}/distance`)!.map((m) => m.auroc)).to.deep.equal([0.8]);
    expect(row0.cells.get(`${col('hybrid μ2=0.00128 (distance)').method}/distance`)!.map((m) => m.auroc)).to.deep.equal([0.95]);
    expect(new Set(s!.columns.map((c) => c.color)).size).to.equal(s!.columns.length);
  });

  it('tests each hybrid against the baseline and times each study apart', () => {
    const { markdown, csv } = renderSummary(twoStudies(), 'svdd study summarize a b --out c');
    expect(markdown).to.include('6 cells (12 cell records');
    expect(markdown).to.include('Regenerate: `svdd study summarize a b --out c`');
    // μ2 = 1: 80, 79, …, 75 against 90: every class worse by 12.5 on average.
    expect(markdown).to.match(/\| hybrid μ2=1 \(distance\) − one-class \| 6 \| -12\.50 \| 0 of 6 \|/);
    // Per pixel: 95.0 … 95.5 against 90: better by 5.25 in every class.
    expect(markdown).to.match(/\| hybrid μ2=0\.00128 \(distance\) − one-class \| 6 \| \+5\.25 \| 6 of 6 \|/);
    expect(markdown).to.include('hybrid μ2=1 77.5 (distance) / 77.5 (combined), hybrid μ2=0.00128 95.3 (distance) / 95.3 (combined)');
    expect(markdown).to.include('Wall time per cell of one-class + hybrid μ2=1 (pretraining included): mean 300 s, total 0.50 h over 6 cells.');
    expect(markdown).to.include('Wall time per cell of hybrid μ2=0.00128 (pretraining included): mean 100 s, total 0.17 h over 6 cells.');
    const lines = csv.trim().split('\n');
    expect(lines[0]).to.match(/^dataset,preprocessing,protocol,class,method,method_id,score,n,auroc_mean/);
    const perPixel = lines.find((l) => l.startsWith(`mnist,gcn-minmax,short,0,hybrid,${PER_PIXEL},distance,`))!;
    expect(perPixel.split(',')[8]).to.equal('95.000');
    expect(perPixel.split(',').at(-1)).to.equal('100.0');
  });

  it('keeps the labels and the single timing line of one study with one method per kind', () => {
    const one = twoStudies().slice(0, 6);
    const { markdown } = renderSummary(one);
    expect(markdown).to.include('| class | one-class | paper one-class | Δ/σ | hybrid (distance) | hybrid (combined) |');
    expect(markdown).to.include('Wall time per cell (all methods): mean 300 s, total 0.50 h over 6 cells.');
    expect(markdown).to.match(/^6 cells \(one cell/m);
  });

  it('sets the seed repository\'s 30 + 30-epoch means beside the short protocol only', () => {
    const short = twoStudies().slice(0, 6);
    const paper = short.map((r) => ({ ...r, cell: r.cell.replace('short', 'paper'), protocol: 'paper' }));
    expect(renderSummary(short).markdown).to.include("- Seed repository's means: baseline 98.14");
    expect(renderSummary(paper).markdown).to.not.include('Seed repository');
  });

  it('titles a section with its protocol\'s epochs for that dataset, from the presets', () => {
    const title = (dataset: Section['dataset'], protocol: string, preprocessing = 'gcn-minmax'): string => sectionTitle({ dataset, protocol, preprocessing } as Section);
    expect(title('mnist', 'paper')).to.equal('MNIST, paper protocol (150 + 150 epochs), GCN + min-max preprocessing');
    expect(title('cifar10', 'paper')).to.equal('CIFAR-10, paper protocol (350 + 150 epochs), GCN + min-max preprocessing');
    expect(title('fashion-mnist', 'short', 'none')).to.equal('Fashion-MNIST, short protocol (30 + 30 epochs), no preprocessing (pixels / 255)');
    expect(title('mnist', 'custom')).to.equal('MNIST, protocol custom, GCN + min-max preprocessing');
  });
});
