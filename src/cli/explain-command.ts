/**
 * `svdd explain --model DIR (--index N,… | --top-anomalies K)`: Grad-CAM heatmaps of the anomaly
 * score for test images, written as PNGs with an index in explain.json.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../tensor/io/atomic.ts';
import { BACKEND_NAMES, useBackend } from '../tensor/backends.ts';
import { tensorFromArray } from '../tensor/tensor.ts';
import { CLASS_NAMES } from '../svdd/data/datasets.ts';
import { convLayerNames, gradCam, lastConvLayer, modelScoreFn, type CamScore } from '../svdd/gradcam.ts';
import { heatmapRgb, imageGridPng, imagePng, overlay, writePngAtomic } from '../svdd/images.ts';
import { loadModel, loadModelData } from '../svdd/model.ts';
import { scoreInputs } from '../svdd/predict.ts';
import { UsageError } from '../svdd/run.ts';
import { parseChoice, parseList, parseNumber } from './args.ts';

export const EXPLAIN_HELP = `svdd explain --model DIR (--index N[,M...] | --top-anomalies K) [flags]
  Grad-CAM of the anomaly score (not of a class logit) for test images of the model's dataset:
  heat = ReLU(sum_k mean_hw(dS/dA_k) * A_k) for the output A of a conv layer (before its
  BatchNorm), bilinearly upsampled to the image and scaled to [0, 1]

  --index N,M,...     test-set indices to explain
  --top-anomalies K   the K highest-scoring test images and the K lowest-scoring normal ones
  --layer NAME        conv layer (default: the last one, conv2 for MNIST, conv3 for CIFAR-10)
  --score S           svdd (default; ||phi(x) - c||^2) | mahalanobis (needs --threshold adaptive)
  --out DIR           output directory (default: <model>/explain)
  --data-dir DIR      directory with the dataset files
  --test-subset N     rank only the first N test images
  --backend B         compute backend (default auto)

  writes <index>_input.png, <index>_heatmap.png (viridis), <index>_overlay.png per image,
  grids top_anomalies_gradcam.png and most_normal_gradcam.png (--index: gradcam.png) with a row
  of inputs over a row of overlays, and explain.json
`;

const OPTIONS = {
  model: { type: 'string' },
  index: { type: 'string' },
  'top-anomalies': { type: 'string' },
  layer: { type: 'string' },
  score: { type: 'string' },
  out: { type: 'string' },
  'data-dir': { type: 'string' },
  'test-subset': { type: 'string' },
  backend: { type: 'string' },
  help: { type: 'boolean' },
} as const;

/** Images per Grad-CAM batch: bounds the memory of the recorded graph. */
const CAM_BATCH = 32;
/** Tiles per grid row before the input/overlay row pair wraps. */
const GRID_COLS = 16;

type Group = 'top-anomaly' | 'most-normal' | 'selected';

export interface ExplainEntry {
  group: Group;
  index: number;
  /** 0 = normal class, 1 = anomaly. */
  label: number;
  class: number;
  className: string;
  score: number;
  files: { input: string; heatmap: string; overlay: string };
}

export interface ExplainReport {
  model: string;
  layer: string;
  score: CamScore;
  testImages: number;
  images: ExplainEntry[];
  grids: string[];
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

export async function explainCommand(argv: string[]): Promise<void> {
  let values;
  try {
    values = parseArgs({ args: argv, options: OPTIONS, strict: true }).values;
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
  if (values.help) { process.stdout.write(EXPLAIN_HELP); return; }
  if (typeof values.model !== 'string') throw new UsageError('svdd explain: --model DIR is required');
  if ((values.index === undefined) === (values['top-anomalies'] === undefined)) {
    throw new UsageError('svdd explain: give exactly one of --index N[,M...] and --top-anomalies K');
  }
  const indices = values.index !== undefined ? parseList('--index', values.index) : null;
  if (indices && indices.length === 0) throw new UsageError('--index: expected at least one test-set index');
  const topK = values['top-anomalies'] !== undefined ? parseNumber('--top-anomalies', values['top-anomalies'], { integer: true, min: 1 }) : 0;
  const scoreName = parseChoice<CamScore>('--score', values.score ?? 'svdd', ['svdd', 'mahalanobis']);
  const testSubset = values['test-subset'] !== undefined ? parseNumber('--test-subset', values['test-subset'], { integer: true, min: 1 }) : undefined;

  await useBackend(parseChoice('--backend', values.backend ?? 'auto', BACKEND_NAMES));
  const model = loadModel(values.model);
  const { meta } = model;
  const layers = convLayerNames(model.net);
  const layer = values.layer ?? lastConvLayer(model.net);
  if (!layers.includes(layer)) throw new UsageError(`--layer: '${layer}' is not a conv layer of ${meta.net} (conv layers: ${layers.join(', ')})`);
  const scoreFn = modelScoreFn(meta, scoreName);

  const { raw, data } = loadModelData(meta, values['data-dir'], testSubset);
  const test = data.test;
  const per = data.pixelsPerImage;
  const [ch, h, w] = [data.channels, data.height, data.width];
  const subsetX = (idx: readonly number[]): Float32Array => {
    const out = new Float32Array(idx.length * per);
    idx.forEach((i, k) => out.set(test.x.subarray(i * per, (i + 1) * per), k * per));
    return out;
  };

  // Every explained image, in output order, with its group; scores as the model reports them.
  const chosen: { group: Group; index: number; score: number }[] = [];
  if (indices) {
    const bad = indices.find((i) => i >= test.count);
    if (bad !== undefined) throw new UsageError(`--index: ${bad} is outside the test set (0..${test.count - 1})`);
    const s = scoreInputs(model, subsetX(indices), indices.length, scoreName);
    indices.forEach((index, k) => chosen.push({ group: 'selected', index, score: s[k]! }));
  } else {
    const all = scoreInputs(model, test.x, test.count, scoreName);
    const order = Array.from({ length: test.count }, (_, i) => i);
    const top = [...order].sort((a, b) => all[b]! - all[a]! || a - b).slice(0, topK);
    const normal = order.filter((i) => test.labels[i] === 0).sort((a, b) => all[a]! - all[b]! || a - b).slice(0, topK);
    for (const index of top) chosen.push({ group: 'top-anomaly', index, score: all[index]! });
    for (const index of normal) chosen.push({ group: 'most-normal', index, score: all[index]! });
  }

  const heat: Float64Array[] = [];
  for (let start = 0; start < chosen.length; start += CAM_BATCH) {
    const idx = chosen.slice(start, start + CAM_BATCH).map((c) => c.index);
    const x = tensorFromArray(subsetX(idx), [idx.length, ch, h, w]);
    const r = gradCam(x, { net: model.net, encode: model.encode, score: scoreFn, layer });
    for (let k = 0; k < idx.length; k++) heat.push(r.heatmap.subarray(k * h * w, (k + 1) * h * w));
  }

  const outDir = values.out ?? join(values.model, 'explain');
  mkdirSync(outDir, { recursive: true });
  const plane = h * w;
  const entries: ExplainEntry[] = [];
  const inputsRgb = new Map<Group, Float32Array[]>(), overlaysRgb = new Map<Group, Float32Array[]>();
  chosen.forEach((c, k) => {
    // The unpreprocessed pixels: what a person looks at, and a file `svdd predict` scores exactly as here.
    const pixels = Float32Array.from(raw.test.images.subarray(test.indices[c.index]! * per, (test.indices[c.index]! + 1) * per), (b) => b / 255);
    const ov = overlay(pixels, ch, h, w, heat[k]!);
    const files = { input: `${c.index}_input.png`, heatmap: `${c.index}_heatmap.png`, overlay: `${c.index}_overlay.png` };
    writePngAtomic(join(outDir, files.input), imagePng(pixels, ch, h, w));
    writePngAtomic(join(outDir, files.heatmap), imagePng(heatmapRgb(heat[k]!), 3, h, w));
    writePngAtomic(join(outDir, files.overlay), imagePng(ov, 3, h, w));
    const rgb = ch === 3 ? pixels : Float32Array.from({ length: 3 * plane }, (_, i) => pixels[i % plane]!);
    if (!inputsRgb.has(c.group)) { inputsRgb.set(c.group, []); overlaysRgb.set(c.group, []); }
    inputsRgb.get(c.group)!.push(rgb);
    overlaysRgb.get(c.group)!.push(ov);
    const cls = test.classes[c.index]!;
    entries.push({ group: c.group, index: c.index, label: test.labels[c.index]!, class: cls, className: CLASS_NAMES[meta.dataset][cls] ?? String(cls), score: c.score, files });
  });

  const gridNames: Record<Group, string> = { 'top-anomaly': 'top_anomalies_gradcam.png', 'most-normal': 'most_normal_gradcam.png', 'selected': 'gradcam.png' };
  const grids: string[] = [];
  for (const [group, ins] of inputsRgb) {
    writePngAtomic(join(outDir, gridNames[group]), inputOverlayGrid(ins, overlaysRgb.get(group)!, h, w));
    grids.push(gridNames[group]);
  }
  const report: ExplainReport = { model: values.model, layer, score: scoreName, testImages: test.count, images: entries, grids };
  writeFileAtomic(join(outDir, 'explain.json'), `${JSON.stringify(report, null, 2)}\n`);

  const say = (l: string): void => { process.stdout.write(`${l}\n`); };
  say(`Grad-CAM of the ${scoreName} score at ${layer} (${meta.net}), ${entries.length} test image(s) of ${test.count}; written to ${outDir}`);
  for (const e of entries) {
    say(`  ${e.group.padEnd(11)} #${String(e.index).padEnd(5)} class ${e.className.padEnd(11)} ${e.label === 0 ? 'normal ' : 'anomaly'}  score ${e.score.toPrecision(6).padStart(11)}  ${e.files.input} ${e.files.heatmap} ${e.files.overlay}`);
  }
  say(`  grids: ${grids.join(', ')}; index: explain.json`);
}
