/**
 * Reading an image folder in anomalib's layout into the estimator's arrays (the same images, in
 * the same order, as `svdd train --dataset folder` trains and tests on).
 */
import { RESIZE_MODES, readImageFolder, type ResizeMode } from '../svdd/data/folder.ts';
import { NET_NAMES, NET_SHAPES, type NetName } from '../svdd/networks.ts';
import { OptionError } from './errors.ts';
import type { ImageArray } from './images.ts';

export interface ImageFolderData {
  /** ROOT/train/good, uint8 [n, c, h, w]. */
  train: ImageArray;
  /** ROOT/test/good, then each ROOT/test/<defect> in name order, uint8 [m, c, h, w]. */
  test: ImageArray;
  /** Per test image: 0 = normal (test/good), 1 = anomalous. */
  labels: Uint8Array;
  /** Per test image: its folder's index in classNames. */
  classes: Uint8Array;
  /** 'good', then the defect folders' names. */
  classNames: string[];
  trainFiles: string[];
  testFiles: string[];
}

/**
 * Reads ROOT/train/good/*.png and ROOT/test/<good|defect>/*.png, every image converted to the
 * network's channels and brought to its height × width by `resize` ('bilinear', the default, or
 * 'center-crop'; see the README's folder recipe).
 */
export async function loadImageFolder(root: string, options: { net?: NetName; resize?: ResizeMode } = {}): Promise<ImageFolderData> {
  const net = options.net ?? 'mnist_LeNet';
  const resize = options.resize ?? 'bilinear';
  if (typeof root !== 'string' || root === '') throw new OptionError(`loadImageFolder: root must be a directory name, got ${JSON.stringify(root)}`);
  if (!NET_NAMES.includes(net)) throw new OptionError(`loadImageFolder: option net must be one of ${NET_NAMES.join(', ')}, got ${JSON.stringify(net)}`);
  if (!RESIZE_MODES.includes(resize)) throw new OptionError(`loadImageFolder: option resize must be one of ${RESIZE_MODES.join(', ')}, got ${JSON.stringify(resize)}`);
  const shape = NET_SHAPES[net].inputShape;
  const f = readImageFolder(root, shape, resize);
  return {
    train: { data: f.train.images, shape: [f.train.count, ...shape] },
    test: { data: f.test.images, shape: [f.test.count, ...shape] },
    labels: Uint8Array.from(f.test.labels, (c) => (c === 0 ? 0 : 1)),
    classes: f.test.labels, classNames: f.classNames, trainFiles: f.train.files, testFiles: f.test.files,
  };
}
