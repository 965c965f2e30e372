/**
 * `svdd explain --model DIR (--index N,… | --top-anomalies K | --input FILE…)`: attribution maps
 * of the anomaly score (Grad-CAM, gradient × input, integrated gradients, occlusion) for test
 * images or any image file the model accepts, written as PNGs and captioned figures with an index
 * in explain.json; `--evaluate` measures each method's faithfulness (deletion / insertion curves
 * against random orders) and writes faithfulness.json. The computations live in src/svdd/explain/.
 */
import { mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeFileAtomic } from '../tensor/io/atomic.ts';
import { BACKEND_NAMES } from '../tensor/backends.ts';
import { engine } from '../tensor/engine.ts';
import { Rng } from '../tensor/creation.ts';
import { CLASS_NAMES } from '../svdd/data/datasets.ts';
import { CAM_TARGETS, convLayerNames, lastConvLayer, type CamTarget } from '../svdd/gradcam.ts';
import { imageGridPng, imagePng, writePngAtomic } from '../svdd/images.ts';
import { loadModel, loadModelData, readRunConfig, runTestSubsetNote } from '../svdd/model.ts';
import type { SvddModel } from '../svdd/svdd-model.ts';
import { decide, decisionRuleFor, describeThreshold, preprocessRaw, readInputImages, scoreInputs, type DecisionThreshold } from '../svdd/predict.ts';
import { UsageError } from './usage-error.ts';
import { removeDeadTemporaries } from '../svdd/run-dir.ts';
import { BASELINE_KINDS, evaluateFaithfulness, explain, meanOfImages, type BaselineKind, type Explanation } from '../svdd/explain/explain.ts';
import { meanNormalizedCurves, type FaithfulnessSummary, type ImageFaithfulness } from '../svdd/explain/faithfulness.ts';
import { attributionRgb, formatValue, maxAbs, renderFigure, type FigureRow, type Scaling } from '../svdd/explain/figure.ts';
import { METHOD_NAMES, type Attribution, type MethodName, type MethodSpec } from '../svdd/explain/methods.ts';
import { EXPLAIN_SCORES, modelScorer, scoreFormula, scoreMany, type ExplainScore } from '../svdd/explain/score.ts';
import { parseChoice, parseNumber } from './args.ts';
import { defineCommand, invoke, processIo, type CliIo, type FlagTable, type FlagValues, type Parsed } from './command.ts';
import { progressLine, type ProgressLine } from './progress.ts';

const EXPLAIN_FLAGS = {
  model: { kind: 'string', arg: 'DIR', required: true, help: 'the model directory (a finished svdd train run)' },
  index: { kind: 'list', arg: 'N,M,...', section: 'images (exactly one of):', help: 'test-set indices to explain' },
  'top-anomalies': { kind: 'int', min: 1, arg: 'K', help: 'the K highest-scoring test images and the K lowest-scoring normal ones' },
  input: { kind: 'strings', arg: 'FILE...', help: 'PNGs (or IDX / CIFAR-10 batch files) of the model\'s input size (PNGs of any\nsize for a --dataset folder model: its saved --resize), preprocessed as\n\'svdd predict\' does' },
  method: { kind: 'string', arg: 'M[,M...]', default: 'gradcam', section: 'methods:', help: 'gradcam (default) | gradxinput | ig | occlusion | all' },
  layer: { kind: 'string', arg: 'L[,L...]', help: 'Grad-CAM conv layer(s) (default: the last one, conv2 for MNIST, conv3 for CIFAR-10)' },
  at: { kind: 'string', arg: 'T[,T...]', help: 'Grad-CAM features of the layer\'s block: bn (default: the BatchNorm output,\n0 = as in normal images) | act (after BatchNorm and activation, what the\nnext layer sees) | conv (the raw conv output before BatchNorm, the original\ndefinition; its maps are often empty: see README, Explanations)' },
  steps: { kind: 'int', min: 1, max: 4096, arg: 'N', default: '64', help: 'integrated gradients: points of the midpoint rule (default 64)' },
  patch: { kind: 'int', min: 1, arg: 'P', default: '4', help: 'occlusion: patch size in pixels, at most the image\'s side (default 4)' },
  stride: { kind: 'int', min: 1, arg: 'S', default: '2', help: 'occlusion: stride in pixels (default 2)' },
  baseline: { kind: { choices: BASELINE_KINDS }, arg: 'B', default: 'mean', help: 'mean (default: the mean preprocessed normal training image) | black (all\nzeros, the bottom of the model\'s input range); used by ig, occlusion and\nthe faithfulness curves' },
  score: { kind: { choices: EXPLAIN_SCORES }, arg: 'S', default: 'svdd', help: 'svdd (default; ||phi(x) - c||^2, - R^2 soft-boundary) | mahalanobis (needs\n--threshold adaptive) | combined (hybrid models: mu1*svdd + mu2*reconstruction)' },
  float64: { kind: 'boolean', help: 'compute in float64 (a float64 copy of the network; slower, exact gradients)' },
  scale: { kind: { choices: ['shared', 'per-image'] as const satisfies readonly Scaling[] }, arg: 'S', default: 'shared', section: 'figures:', help: 'shared (default: one colour range per method over all images of a figure,\nso maps can be compared across images) | per-image (each map to its own max)' },
  zoom: { kind: 'int', min: 1, max: 32, arg: 'Z', help: 'nearest-neighbour upscaling of the figures (default: 5 for 28x28, 4 for 32x32)' },
  evaluate: { kind: 'boolean', section: 'faithfulness:', help: 'deletion / insertion curves (pixels replaced by the baseline in attribution\norder) and their areas, against random orders; printed as a table and\nwritten to faithfulness.json. With --top-anomalies K: on the top K and on a\nrandom sample of anomalies; otherwise on the given images' },
  'random-anomalies': { kind: 'int', min: 0, arg: 'N', help: 'size of the random sample of anomalies (default K)' },
  'curve-steps': { kind: 'int', min: 1, max: 10000, arg: 'N', default: '50', help: 'points per curve - 1 (default 50)' },
  'random-orders': { kind: 'int', min: 0, max: 100, arg: 'N', default: '3', help: 'random orders averaged for the floor (default 3)' },
  seed: { kind: 'int', min: 0, arg: 'N', default: '0', help: 'seed of the random sample, the random orders and tie-breaking (default 0)' },
  out: { kind: 'string', arg: 'DIR', section: '', help: 'output directory (default: <model>/explain)' },
  'data-dir': { kind: 'string', arg: 'DIR', help: 'directory with the dataset files (default: the run\'s own, from its config.json)' },
  'test-subset': { kind: 'int', min: 1, arg: 'N', help: 'use only the first N test images (default with --top-anomalies: the run\'s own --test-subset)' },
  backend: { kind: { choices: BACKEND_NAMES }, arg: 'B', default: 'auto', help: 'compute backend (default auto)' },
} as const satisfies FlagTable;

export const explainCli = defineCommand({
  name: 'explain',
  synopsis: 'svdd explain --model DIR --top-anomalies K',
  summary: 'Grad-CAM of the anomaly score',
  usage: 'svdd explain --model DIR (--index N[,M...] | --top-anomalies K | --input FILE...) [flags]',
  description: `  attribution maps of the anomaly score (not of a class logit), every method explaining the same
  score S, positive values pushing S up (towards "anomalous")`,
  notes: `  writes <image>_input.png, <image>_<method>_heatmap.png and _overlay.png (28x28 for MNIST),
  grids <group>_<method>.png (inputs over overlays; --index: <method>.png), captioned figures
  figure_<group>.png with every method side by side, explain.json and, with --evaluate,
  faithfulness.json`,
  flags: EXPLAIN_FLAGS,
  positionals: { min: 0, max: Infinity, what: 'input files after --input' },
  helpColumn: 25,
  run: async (p, io) => {
    const progress = progressLine(io.stderrStream, 'explain');
    try {
      await explainImages(p, io, progress);
    } finally {
      progress.clear();
    }
  },
});

/** Tiles per grid row before the input/overlay row pair wraps. */
const GRID_COLS = 16;

type Group = 'top-anomaly' | 'most-normal' | 'random-anomaly' | 'selected' | 'input';
const GROUP_PREFIX: Record<Group, string> = {
  'top-anomaly': 'top_anomalies', 'most-normal': 'most_normal', 'random-anomaly': 'random_anomalies', selected: '', input: 'inputs',
};
const GROUP_TITLE: Record<Group, string> = {
  'top-anomaly': 'top anomalies', 'most-normal': 'most normal test images', 'random-anomaly': 'random anomalies', selected: 'selected test images', input: 'input files',
};

export interface ExplainEntry {
  group: Group;
  /** Test-set index; null for --input files. */
  index: number | null;
  /** The file (and image number) for --input. */
  input?: string;
  /** 0 = normal class, 1 = anomaly; null when unknown (--input). */
  label: number | null;
  class: number | null;
  className: string;
  /** The score as the model reports it (results.json, svdd predict). */
  score: number;
  /** By the model's decision rule for this score (as svdd predict decides); null without one. */
  decision: 'normal' | 'anomalous' | null;
  /** The first method's files (the per-method ones are under attributions). */
  files: { input: string; heatmap: string; overlay: string };
  attributions: Record<string, { heatmap: string; overlay: string; maxAbs: number; sum: number; completenessGap?: number; camZero?: boolean }>;
}

export interface ExplainReport {
  model: string;
  score: ExplainScore;
  formula: string;
  /** The (first) Grad-CAM layer and features, null without Grad-CAM. */
  layer: string | null;
  at: CamTarget | null;
  /** frameShare: share of the positive attribution mass within 2 px of the image edge, over all explained images. */
  methods: { id: string; label: string; spec: MethodSpec; frameShare: number }[];
  baseline: BaselineKind;
  scale: Scaling;
  dtype: string;
  /** The model's decision rule for the score: its calibrated τ, else (svdd score) contamination or the soft-boundary radius. */
  threshold: DecisionThreshold | null;
  testImages: number | null;
  images: ExplainEntry[];
  grids: string[];
  figures: string[];
  faithfulness: string | null;
}

interface Chosen {
  group: Group;
  index: number | null;
  input?: string;
  label: number | null;
  cls: number | null;
  /** The image as people see it, CHW in [0, 1]. */
  display: Float32Array;
  /** Row in the explained batch. */
  row: number;
  score: number;
}

/** Rows of GRID_COLS: inputs above their overlays, short rows padded with black tiles. */
function inputOverlayGrid(inputs: Float32Array[], overlays: Float32Array[], h: number, w: number): Uint8Array {
  const per = 3 * h * w;
  const cols = Math.min(GRID_COLS, inputs.length);
  const rowPairs = Math.ceil(inputs.length / cols);
  const data = new Float32Array(rowPairs * 2 * cols * per);
  for (let i = 0; i < inputs.length; i++) {
    const r = Math.floor(i / cols), c = i % cols;
    data.set(inputs[i]!, ((2 * r) * cols + c) * per);
    data.set(overlays[i]!, ((2 * r + 1) * cols + c) * per);
  }
  return imageGridPng(data, rowPairs * 2 * cols, 3, h, w, { cols, normalize: 'none' });
}

function toRgb(img: Float32Array, channels: number, plane: number): Float32Array {
  return channels === 3 ? img : Float32Array.from({ length: 3 * plane }, (_, i) => img[i % plane]!);
}

/** Pixels of the image frame checked for border attributions (one conv2 cell of the 28×28 LeNet). */
const FRAME = 2;

/** Share of the positive attribution mass of `rows` that lies within FRAME pixels of the image edge. */
function frameShare(a: Attribution, rows: readonly number[], h: number, w: number): number {
  let inFrame = 0, total = 0;
  for (const r of rows) for (let p = 0; p < h * w; p++) {
    const v = a.pixels[r * h * w + p]!;
    if (!(v > 0)) continue;
    const y = Math.floor(p / w), x = p % w;
    total += v;
    if (y < FRAME || x < FRAME || y >= h - FRAME || x >= w - FRAME) inFrame += v;
  }
  return total > 0 ? inFrame / total : 0;
}

function rowLabel(a: Attribution): string[] {
  switch (a.spec.method) {
    case 'gradcam': return ['Grad-CAM', a.cam!.layer, { conv: 'raw conv', bn: 'after BN', act: 'BN + act' }[a.cam!.at]];
    case 'gradxinput': return ['gradient', 'x input'];
    case 'ig': return ['integrated', 'gradients', `${a.spec.steps} steps`];
    case 'occlusion': return ['occlusion', `patch ${a.spec.patch}`, `stride ${a.spec.stride}`];
  }
}

function parseMethods(values: FlagValues<typeof EXPLAIN_FLAGS>, model: SvddModel): MethodSpec[] {
  const list = values.method.split(',').map((s) => s.trim()).filter(Boolean);
  const names = list.includes('all') ? [...METHOD_NAMES] : list.map((m) => parseChoice<MethodName>('--method', m, METHOD_NAMES));
  if (names.length === 0) throw new UsageError('--method: expected at least one of gradcam, gradxinput, ig, occlusion, all');
  const conv = convLayerNames(model.net);
  const layers = values.layer === undefined ? [lastConvLayer(model.net)] : values.layer.split(',').map((s) => s.trim());
  for (const l of layers) if (!conv.includes(l)) throw new UsageError(`--layer: '${l}' is not a conv layer of ${model.meta.net} (conv layers: ${conv.join(', ')})`);
  const ats = values.at === undefined ? ['bn' as CamTarget] : values.at.split(',').map((s) => parseChoice<CamTarget>('--at', s.trim(), CAM_TARGETS));
  const { steps, stride } = values;
  const [, h, w] = model.meta.inputShape;
  // The patch's upper bound is the model's: checked here, worded as the parser words a range.
  const patch = parseNumber('--patch', String(values.patch), { integer: true, min: 1, max: Math.min(h, w) });
  const specs: MethodSpec[] = [];
  for (const m of [...new Set(names)]) {
    if (m === 'gradcam') for (const layer of layers) for (const at of ats) specs.push({ method: 'gradcam', layer, at });
    else if (m === 'gradxinput') specs.push({ method: 'gradxinput' });
    else if (m === 'ig') specs.push({ method: 'ig', steps });
    else specs.push({ method: 'occlusion', patch, stride });
  }
  return specs;
}

function formatTable(title: string, s: FaithfulnessSummary): string[] {
  const cell = (m: { mean: number | null; sd: number | null }): string => (m.mean === null ? 'n/a' : `${m.mean.toFixed(3)} ± ${(m.sd ?? 0).toFixed(3)}`);
  const width = Math.max(12, ...s.rows.map((r) => r.id.length));
  const lines = [`${title} (${s.images} image${s.images === 1 ? '' : 's'}${s.degenerate ? `, ${s.degenerate} with S(x) at the score's lower bound left out` : ''}${s.baselineAbove ? `, ${s.baselineAbove} scoring below the baseline` : ''})`];
  lines.push(`  ${'method'.padEnd(width)}  ${'deletion AUC ↓'.padEnd(15)}  ${'insertion AUC ↑'.padEnd(15)}  deletion / insertion AUC in score units`);
  for (const r of s.rows) {
    const raw = `${r.deletionRaw.mean === null ? 'n/a' : formatValue(r.deletionRaw.mean)} / ${r.insertionRaw.mean === null ? 'n/a' : formatValue(r.insertionRaw.mean)}`;
    lines.push(`  ${r.id.padEnd(width)}  ${cell(r.deletion).padEnd(15)}  ${cell(r.insertion).padEnd(15)}  ${raw}`);
  }
  return lines;
}

/** `svdd explain` with argv, output on this process's stdout and stderr (`stderr` gets the progress line when it is a terminal). */
export async function explainCommand(argv: string[], stderr: NodeJS.WriteStream = process.stderr): Promise<void> {
  await invoke(explainCli, argv, { ...processIo, stderrStream: stderr });
}

async function explainImages({ values, positionals }: Parsed<typeof EXPLAIN_FLAGS>, io: CliIo, progress: ProgressLine): Promise<void> {
  // Files after the first --input (shell globs) arrive as positionals.
  const inputs = [...(values.input ?? []), ...positionals];
  if (positionals.length > 0 && (values.input ?? []).length === 0) throw new UsageError(`svdd explain: unexpected argument '${positionals[0]}' (input files follow --input)`);
  const modes = [values.index !== undefined, values['top-anomalies'] !== undefined, inputs.length > 0].filter(Boolean).length;
  if (modes !== 1) throw new UsageError('svdd explain: give exactly one of --index N[,M...], --top-anomalies K and --input FILE...');
  if (values.index && values.index.length === 0) throw new UsageError('--index: expected at least one test-set index');
  // The backend for this command only: the caller's is active again afterwards.
  await engine.withBackend(values.backend, () => explainOnBackend(values, inputs, io, progress));
}

/** explainImages's work once the flags are checked and --backend is active: inputs are the --input files. */
function explainOnBackend(values: FlagValues<typeof EXPLAIN_FLAGS>, inputs: string[], io: CliIo, progress: ProgressLine): void {
  const { onProgress } = progress;
  const indices = values.index ?? null;
  const topK = values['top-anomalies'] ?? 0;
  const scoreName = values.score;
  const baselineKind = values.baseline;
  const scaling = values.scale;
  const zoom = values.zoom;
  let testSubset = values['test-subset'];
  const randomK = values['random-anomalies'] ?? topK;
  const curveSteps = values['curve-steps'];
  const randomOrders = values['random-orders'];
  const seed = values.seed;
  const dtype = values.float64 ? 'float64' as const : 'float32' as const;

  const model = loadModel(values.model);
  const { meta } = model;
  const run = readRunConfig(values.model);
  // Ranking (--top-anomalies) happens among the test images the run was evaluated on, as svdd
  // test scores them; --index names test-set indices and keeps the whole test set.
  if (testSubset === undefined && topK > 0 && run.testSubset !== undefined) {
    testSubset = run.testSubset;
    io.out(runTestSubsetNote(testSubset));
  }
  const dataDir = values['data-dir'] ?? run.dataDir;
  const specs = parseMethods(values, model);
  const scorer = modelScorer(model, scoreName, { dtype });
  const [ch, h, w] = meta.inputShape;
  const plane = h * w, per = ch * plane;
  // The rule svdd predict decides with: a calibrated τ, else the model's contamination or radius rule.
  const threshold = scoreName === 'combined' ? null : decisionRuleFor(meta, scoreName);
  // The score as the model reports it: its own float32 scoring path (results.json, svdd predict).
  // (The hybrid's combined score has no scoring path of its own: the float32 scorer is it.)
  const combined = scoreName === 'combined' ? modelScorer(model, 'combined') : null;
  const reported = (x: Float32Array, n: number): Float64Array => (combined
    ? scoreMany(combined, x, n, undefined, (done) => onProgress(done, n, 'scoring'))
    : scoreInputs(model, x, n, scoreName as 'svdd' | 'mahalanobis', onProgress));

  const chosen: Chosen[] = [];
  let batch: Float32Array;
  let meanImage: Float64Array | undefined;
  let testCount: number | null = null;
  if (inputs.length > 0) {
    // A --dataset folder model fits PNGs of any size with its saved resize, as svdd predict does.
    const files = inputs.map((p) => readInputImages(p, meta.inputShape, meta.resize));
    const count = files.reduce((a, f) => a + f.count, 0);
    const bytes = new Uint8Array(count * per);
    let at = 0;
    for (const f of files) { bytes.set(f.images, at * per); at += f.count; }
    batch = preprocessRaw(bytes, count, per, meta.preprocessing);
    const s = reported(batch, count);
    files.flatMap((f) => f.names).forEach((name, k) => chosen.push({
      group: 'input', index: null, input: name, label: null, cls: null, row: k, score: s[k]!,
      display: Float32Array.from(bytes.subarray(k * per, (k + 1) * per), (b) => b / 255),
    }));
    if (baselineKind === 'mean') {
      const { data } = loadModelData(meta, dataDir, 1);
      meanImage = meanOfImages(data.train.x, data.train.count, per);
    }
  } else {
    onProgress(0, 1, 'loading the test set');
    const { raw, data } = loadModelData(meta, dataDir, testSubset);
    onProgress(1, 1, 'loading the test set');
    const test = data.test;
    testCount = test.count;
    if (baselineKind === 'mean') meanImage = meanOfImages(data.train.x, data.train.count, per);
    const picks: { group: Group; index: number; score: number }[] = [];
    if (indices) {
      const bad = indices.find((i) => i >= test.count);
      if (bad !== undefined) throw new UsageError(`--index: ${bad} is outside the test set (0..${test.count - 1})`);
      const sub = new Float32Array(indices.length * per);
      indices.forEach((i, k) => sub.set(test.x.subarray(i * per, (i + 1) * per), k * per));
      const s = reported(sub, indices.length);
      indices.forEach((index, k) => picks.push({ group: 'selected', index, score: s[k]! }));
    } else {
      const all = reported(test.x, test.count);
      const order = Array.from({ length: test.count }, (_, i) => i);
      const top = [...order].sort((a, b) => all[b]! - all[a]! || a - b).slice(0, topK);
      const normal = order.filter((i) => test.labels[i] === 0).sort((a, b) => all[a]! - all[b]! || a - b).slice(0, topK);
      for (const index of top) picks.push({ group: 'top-anomaly', index, score: all[index]! });
      for (const index of normal) picks.push({ group: 'most-normal', index, score: all[index]! });
      if (values.evaluate && randomK > 0) {
        const anomalies = Int32Array.from(order.filter((i) => test.labels[i] === 1));
        new Rng(`explain-random-anomalies/${seed}`).shuffle(anomalies);
        for (const index of Array.from(anomalies.subarray(0, randomK)).sort((a, b) => a - b)) picks.push({ group: 'random-anomaly', index, score: all[index]! });
      }
    }
    batch = new Float32Array(picks.length * per);
    picks.forEach((p, k) => {
      batch.set(test.x.subarray(p.index * per, (p.index + 1) * per), k * per);
      const rawAt = test.indices[p.index]! * per;
      chosen.push({
        group: p.group, index: p.index, label: test.labels[p.index]!, cls: test.classes[p.index]!, row: k, score: p.score,
        display: Float32Array.from(raw.test.images.subarray(rawAt, rawAt + per), (b) => b / 255),
      });
    });
  }

  const e: Explanation = explain(model, batch, chosen.length, { score: scoreName, methods: specs, baseline: baselineKind, meanImage, dtype, onProgress });
  const atts = e.attributions;

  const outDir = values.out ?? join(values.model, 'explain');
  mkdirSync(outDir, { recursive: true });
  // A killed explain into this directory may have left a temporary; its files are rewritten below.
  removeDeadTemporaries(outDir);
  const groups = [...new Set(chosen.map((c) => c.group))];
  // Colour range per group and method: the largest |value| over the group's maps (shared scaling).
  const sharedRange = new Map<string, number>();
  for (const g of groups) for (const a of atts) {
    let m = 0;
    for (const c of chosen) if (c.group === g) m = Math.max(m, maxAbs(a.pixels.subarray(c.row * plane, (c.row + 1) * plane)));
    sharedRange.set(`${g}/${a.id}`, m);
  }
  const decisionOf = (s: number): 'normal' | 'anomalous' | null => (threshold ? decide(s, threshold.tau) : null);
  const names = CLASS_NAMES[meta.dataset];
  const entries: ExplainEntry[] = [];
  const gridTiles = new Map<string, { inputs: Float32Array[]; overlays: Float32Array[] }>();
  // Files: per image, then a grid per group and method, then a figure per group.
  const fileSteps = chosen.length + groups.length * (atts.length + 1);
  let filesDone = 0;
  const fileDone = (): void => { onProgress(++filesDone, fileSteps, 'writing the images'); };
  chosen.forEach((c, k) => {
    const stem = c.index !== null ? String(c.index) : `input${k}`;
    const files = { input: `${stem}_input.png` };
    writePngAtomic(join(outDir, files.input), imagePng(c.display, ch, h, w));
    const rgb = toRgb(c.display, ch, plane);
    const attributions: ExplainEntry['attributions'] = {};
    for (const a of atts) {
      const map = a.pixels.subarray(c.row * plane, (c.row + 1) * plane);
      const own = maxAbs(map);
      const range = scaling === 'shared' ? sharedRange.get(`${c.group}/${a.id}`)! : own;
      const ov = attributionRgb(map, range, c.display, ch);
      const f = { heatmap: `${stem}_${a.id}_heatmap.png`, overlay: `${stem}_${a.id}_overlay.png` };
      writePngAtomic(join(outDir, f.heatmap), imagePng(attributionRgb(map, range, null, ch), 3, h, w));
      writePngAtomic(join(outDir, f.overlay), imagePng(ov, 3, h, w));
      let sum = 0;
      for (let p = 0; p < plane; p++) sum += map[p]!;
      attributions[a.id] = {
        ...f, maxAbs: own, sum,
        ...(a.completeness ? { completenessGap: a.completeness.gaps[c.row]! } : {}),
        ...(a.cam ? { camZero: own === 0 } : {}),
      };
      const key = `${c.group}/${a.id}`;
      if (!gridTiles.has(key)) gridTiles.set(key, { inputs: [], overlays: [] });
      gridTiles.get(key)!.inputs.push(rgb);
      gridTiles.get(key)!.overlays.push(ov);
    }
    const first = attributions[atts[0]!.id]!;
    entries.push({
      group: c.group, index: c.index, ...(c.input !== undefined ? { input: c.input } : {}), label: c.label, class: c.cls,
      className: c.cls === null ? '?' : names[c.cls] ?? String(c.cls), score: c.score, decision: decisionOf(c.score),
      files: { input: files.input, heatmap: first.heatmap, overlay: first.overlay }, attributions,
    });
    fileDone();
  });

  const grids: string[] = [];
  for (const g of groups) for (const a of atts) {
    const name = GROUP_PREFIX[g] ? `${GROUP_PREFIX[g]}_${a.id}.png` : `${a.id}.png`;
    const t = gridTiles.get(`${g}/${a.id}`)!;
    writePngAtomic(join(outDir, name), inputOverlayGrid(t.inputs, t.overlays, h, w));
    grids.push(name);
    fileDone();
  }

  const figures: string[] = [];
  const modelWords = `model ${values.model} (${meta.net}, ${meta.dataset} normal class ${meta.normalClass})`;
  const tauWords = threshold === null ? `decision: none (no threshold τ saved for the ${scoreName} score)`
    : threshold.method === 'quantile' || threshold.method === 'chi2'
      ? `decision: anomalous when S > τ = ${formatValue(threshold.tau)} (${threshold.method}, α ${threshold.alpha})`
      : `decision: anomalous when S > τ = ${formatValue(threshold.tau)} (${describeThreshold(threshold)})`;
  const scaleWords = scaling === 'shared'
    ? 'scale: shared - one colour range per method row over all images of this figure (compare images; the numbers at the right)'
    : 'scale: per-image - every map stretched to its own max |value| (compare regions within an image, not images)';
  for (const g of groups) {
    const cols = chosen.filter((c) => c.group === g);
    const rows: FigureRow[] = atts.map((a) => ({
      label: rowLabel(a), signed: a.signed, unit: a.unit,
      maps: cols.map((c) => a.pixels.subarray(c.row * plane, (c.row + 1) * plane)),
    }));
    const png = renderFigure({
      caption: [
        `Attributions of the ${scoreName} score S = ${scoreFormula(meta, scoreName)}: ${GROUP_TITLE[g]}; ${modelWords}`,
        `rows: ${atts.map((a) => a.label).join('; ')}; baseline ${baselineKind}${e.baseline.kind === 'mean' ? ' (mean normal training image)' : ' (all zeros)'}`,
        `${scaleWords}. Red to yellow: raises S (evidence of anomaly); blue: lowers S. "max": the map's largest |value|.`,
        `${tauWords}. Images x${zoom ?? Math.max(4, Math.round(140 / w))}, nearest neighbour.`,
      ],
      columns: cols.map((c) => ({
        header: [
          c.index !== null ? `#${c.index}` : basename(c.input!),
          // 'class Sandal' does not fit a 28-pixel column at 5×: the bare name does.
          c.cls === null ? 'class ?' : `class ${names[c.cls] ?? c.cls}`.length <= 11 ? `class ${names[c.cls] ?? c.cls}` : String(names[c.cls]),
          `S ${formatValue(c.score)}`,
          decisionOf(c.score) ?? 'no τ',
        ],
        image: c.display,
      })),
      rows, channels: ch, height: h, width: w, scaling, zoom,
    });
    const name = `figure_${GROUP_PREFIX[g] || 'selected'}.png`;
    writePngAtomic(join(outDir, name), png);
    figures.push(name);
    fileDone();
  }

  // The progress line is cleared before each printed line, so none is left in the scroll-back.
  const say = (l: string): void => { progress.clear(); io.out(`${l}\n`); };
  say(`${atts.map((a) => a.label).join(', ')} of the ${scoreName} score (${scoreFormula(meta, scoreName)}), ${meta.net}, ${entries.length} image(s); written to ${outDir}`);
  say(threshold === null
    ? `  decision: none (no decision rule for the ${scoreName} score)`
    : `  decision: anomalous when score > τ = ${threshold.tau.toPrecision(6)} (${describeThreshold(threshold)})`);
  for (const en of entries) {
    const who = en.index !== null ? `#${String(en.index).padEnd(5)}` : en.input!;
    const cls = en.label === null ? 'class ?' : `class ${en.className.padEnd(11)} ${en.label === 0 ? 'normal ' : 'anomaly'}`;
    const maxes = atts.map((a) => `${a.id} max ${formatValue(en.attributions[a.id]!.maxAbs)}`).join(', ');
    say(`  ${en.group.padEnd(14)} ${who} ${cls}  score ${en.score.toPrecision(6).padStart(11)}${en.decision ? ` ${en.decision}` : ''}  ${en.files.input} ${en.files.heatmap} ${en.files.overlay}  (${maxes})`);
  }
  const framePixels = 1 - ((h - 2 * FRAME) * (w - 2 * FRAME)) / (h * w);
  const allRows = chosen.map((c) => c.row);
  const frameShares: Record<string, number> = {};
  for (const a of atts) frameShares[a.id] = frameShare(a, allRows, h, w);
  say(`  share of positive attribution within ${FRAME} px of the edge (${(100 * framePixels).toFixed(1)}% of the pixels): ${atts.map((a) => `${a.id} ${(100 * frameShares[a.id]!).toFixed(1)}%`).join(', ')}`);
  for (const a of atts) {
    if (a.completeness) {
      const abs = Array.from(a.completeness.gaps, (g) => Math.abs(g));
      const rel = abs.map((g, i) => g / Math.max(1e-12, Math.abs(a.scores[i]! - a.completeness!.baselineScores[i]!)));
      const median = (v: number[]): number => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)]!;
      say(`  ${a.id}: completeness gap |sum of attributions - (S(x) - S(baseline))|: max ${formatValue(Math.max(...abs))}, median ${formatValue(median(abs))} (score units); relative to |S(x) - S(baseline)|: median ${formatValue(median(rel))} (${a.spec.method === 'ig' ? a.spec.steps : 0} steps, ${dtype}, ${abs.length} image(s))`);
    }
    if (a.cam) {
      const zero = chosen.filter((c) => maxAbs(a.pixels.subarray(c.row * plane, (c.row + 1) * plane)) === 0);
      if (zero.length > 0) {
        const cells = a.cam.height * a.cam.width;
        const onBorder = zero.filter((c) => {
          const lin = a.cam!.linear.subarray(c.row * cells, (c.row + 1) * cells);
          let best = 0;
          for (let p = 1; p < cells; p++) if (lin[p]! > lin[best]!) best = p;
          const y = Math.floor(best / a.cam!.width), x = best % a.cam!.width;
          return y === 0 || x === 0 || y === a.cam!.height - 1 || x === a.cam!.width - 1;
        }).length;
        say(`  ${a.id}: ${zero.length} of ${chosen.length} maps are zero everywhere (sum_k w_k A_k < 0 at every cell of ${a.cam.layer}); in ${onBorder} of them the least negative cell is on the border`);
      }
    }
  }
  say(`  grids: ${grids.join(', ')}; figures: ${figures.join(', ')}; index: explain.json`);

  let faithFile: string | null = null;
  if (values.evaluate) {
    const sets: { name: string; group: Group[] }[] = inputs.length > 0 ? [{ name: 'input files', group: ['input'] }]
      : indices ? [{ name: 'selected test images', group: ['selected'] }]
        : [{ name: `top ${topK} anomalies`, group: ['top-anomaly'] }, ...(randomK > 0 ? [{ name: `${randomK} random anomalies (seed ${seed})`, group: ['random-anomaly'] as Group[] }] : [])];
    const out: { name: string; images: (number | string)[]; summary: FaithfulnessSummary; perImage: (ImageFaithfulness & { image: number | string })[]; meanCurves: ReturnType<typeof meanNormalizedCurves> }[] = [];
    say(`Faithfulness: deletion / insertion of pixels in attribution order, replaced by the ${baselineKind} baseline; areas under the normalised score curve S / S(x) clipped to [0, 1]${scorer.floor !== 0 ? ` (scores shifted by ${formatValue(-scorer.floor)} so that 0 is their lower bound)` : ''}, ${curveSteps} steps; mean ± sd over images; random = ${randomOrders} random orders averaged. Deletion: lower is better; insertion: higher is better.`);
    for (const set of sets) {
      const members = chosen.filter((c) => set.group.includes(c.group));
      const { perImage, summary } = evaluateFaithfulness(e, batch, members.map((c) => c.row), { steps: curveSteps, randomSeeds: randomOrders, seed, onProgress });
      for (const l of formatTable(set.name, summary)) say(l);
      const ids = members.map((c) => c.index ?? c.input!);
      out.push({
        name: set.name, images: ids, summary,
        perImage: perImage.map((r, k) => ({ image: ids[k]!, ...r, curves: {} })),
        meanCurves: meanNormalizedCurves(perImage),
      });
    }
    faithFile = 'faithfulness.json';
    writeFileAtomic(join(outDir, faithFile), `${JSON.stringify({
      model: values.model, score: scoreName, formula: scoreFormula(meta, scoreName), baseline: baselineKind, curveSteps, randomOrders, seed, dtype,
      methods: atts.map((a) => ({ id: a.id, label: a.label, spec: a.spec })),
      floor: scorer.floor,
      note: 'areas of the normalised curves (S - floor) / (S(x) - floor), clipped to [0, 1], on a [0, 1] axis (floor: the score\'s lower bound, 0 unless soft-boundary): deletion lower is better, insertion higher is better; *Raw: areas of the unclipped curves in score units; meanCurves: normalised, unclipped',
      sets: out,
    }, null, 2)}\n`);
    say(`  written to ${join(outDir, faithFile)}`);
  }

  const firstCam = atts.find((a) => a.cam);
  const report: ExplainReport = {
    model: values.model, score: scoreName, formula: scoreFormula(meta, scoreName),
    layer: firstCam?.cam?.layer ?? null, at: firstCam?.cam?.at ?? null,
    methods: atts.map((a) => ({ id: a.id, label: a.label, spec: a.spec, frameShare: frameShares[a.id]! })),
    baseline: baselineKind, scale: scaling, dtype, threshold, testImages: testCount,
    images: entries, grids, figures, faithfulness: faithFile,
  };
  writeFileAtomic(join(outDir, 'explain.json'), `${JSON.stringify(report, null, 2)}\n`);
}
