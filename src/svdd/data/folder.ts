/**
 * A folder of PNG images in anomalib's "folder" layout, for data of one's own:
 *
 *   ROOT/train/good/*.png        normal training images
 *   ROOT/test/good/*.png         normal test images
 *   ROOT/test/<defect>/*.png     anomalous test images, one folder per kind of defect
 *
 * Images may have any size and be grayscale or RGB (alpha is dropped): each is converted to the
 * network's channels (grey → RGB repeats the grey value; RGB → grey is ITU-R BT.601 luma,
 * 0.299 R + 0.587 G + 0.114 B, as PIL's convert('L')) and brought to the network's height × width
 * by `resize`:
 *   'bilinear'     stretched to h × w (the aspect ratio is not kept); bilinear interpolation with
 *                  half-pixel centres and no antialiasing, as PyTorch's F.interpolate(mode='bilinear',
 *                  align_corners=False);
 *   'center-crop'  scaled (bilinear, as above) so that it covers h × w with its aspect ratio kept,
 *                  then the centre h × w cut out, as torchvision's Resize + CenterCrop.
 * Results are rounded to 8-bit pixels, as an image library's resize of an 8-bit image gives.
 * Every file goes through the bounded PNG reader (size checked from the header before decoding).
 */
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readPng, type DecodedImage } from '../images.ts';
import { DataError } from './errors.ts';

export type ResizeMode = 'bilinear' | 'center-crop';
export const RESIZE_MODES: readonly ResizeMode[] = ['bilinear', 'center-crop'];

/** The layout, for messages. */
export const FOLDER_LAYOUT = 'ROOT/train/good/*.png (normal), ROOT/test/good/*.png and ROOT/test/<defect>/*.png';

/** One channel plane [h, w] per output channel, converted from the decoded image's channels. */
function toChannels(img: DecodedImage, channels: number): Float32Array {
  const plane = img.height * img.width;
  if (img.channels === channels) return img.data;
  const out = new Float32Array(channels * plane);
  if (img.channels === 1) {
    for (let c = 0; c < channels; c++) out.set(img.data.subarray(0, plane), c * plane);
    return out;
  }
  if (channels === 1) {
    const d = img.data;
    for (let i = 0; i < plane; i++) out[i] = 0.299 * d[i]! + 0.587 * d[plane + i]! + 0.114 * d[2 * plane + i]!;
    return out;
  }
  throw new DataError(`cannot convert a ${img.channels}-channel image to ${channels} channels`);
}

/** Bilinear resampling of one plane (align_corners=False, no antialiasing), as PyTorch. */
function bilinear(src: Float32Array, inH: number, inW: number, outH: number, outW: number): Float32Array {
  const out = new Float32Array(outH * outW);
  const sy = inH / outH, sx = inW / outW;
  for (let y = 0; y < outH; y++) {
    const fy = Math.max(0, (y + 0.5) * sy - 0.5);
    const y0 = Math.min(Math.floor(fy), inH - 1), y1 = Math.min(y0 + 1, inH - 1), ly = fy - y0;
    for (let x = 0; x < outW; x++) {
      const fx = Math.max(0, (x + 0.5) * sx - 0.5);
      const x0 = Math.min(Math.floor(fx), inW - 1), x1 = Math.min(x0 + 1, inW - 1), lx = fx - x0;
      const top = src[y0 * inW + x0]! * (1 - lx) + src[y0 * inW + x1]! * lx;
      const bottom = src[y1 * inW + x0]! * (1 - lx) + src[y1 * inW + x1]! * lx;
      out[y * outW + x] = top * (1 - ly) + bottom * ly;
    }
  }
  return out;
}

/** A decoded image as the network's CHW bytes: converted to `shape`'s channels and resized by `mode`. */
export function fitImage(img: DecodedImage, shape: readonly [number, number, number], mode: ResizeMode): Uint8Array {
  const [c, h, w] = shape;
  const planes = toChannels(img, c);
  const plane = img.height * img.width;
  let scaledH = h, scaledW = w;
  if (mode === 'center-crop') {
    const scale = Math.max(h / img.height, w / img.width);
    scaledH = Math.max(h, Math.round(img.height * scale));
    scaledW = Math.max(w, Math.round(img.width * scale));
  }
  const top = Math.round((scaledH - h) / 2), left = Math.round((scaledW - w) / 2);
  const out = new Uint8Array(c * h * w);
  for (let ch = 0; ch < c; ch++) {
    const p = planes.subarray(ch * plane, (ch + 1) * plane);
    const scaled = scaledH === img.height && scaledW === img.width ? p : bilinear(p, img.height, img.width, scaledH, scaledW);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = scaled[(y + top) * scaledW + x + left]!;
        out[ch * h * w + y * w + x] = v > 0 ? (v < 1 ? Math.round(v * 255) : 255) : 0;
      }
    }
  }
  return out;
}

function isDir(path: string): boolean {
  try { return statSync(path).isDirectory(); } catch { return false; }
}

/** The PNG files of a directory, sorted by name; any other file (but hidden ones) is refused. */
function pngFiles(dir: string): string[] {
  const names = readdirSync(dir).filter((n) => !n.startsWith('.')).sort();
  const files: string[] = [];
  for (const n of names) {
    const path = join(dir, n);
    if (isDir(path)) throw new DataError(`${path}: a directory inside an image folder (expected only .png files; layout ${FOLDER_LAYOUT})`, path);
    if (!/\.png$/i.test(n)) throw new DataError(`${path}: not a .png file (an image folder holds only PNG images; layout ${FOLDER_LAYOUT})`, path);
    files.push(path);
  }
  return files;
}

/** The images of one folder, fitted to `shape`, as count × C×H×W bytes. */
function readFolderImages(paths: string[], shape: readonly [number, number, number], mode: ResizeMode): Uint8Array {
  const per = shape[0] * shape[1] * shape[2];
  const out = new Uint8Array(paths.length * per);
  paths.forEach((p, i) => out.set(fitImage(readPng(p), shape, mode), i * per));
  return out;
}

export interface ImageFolder {
  root: string;
  /** 'good' first, then the defect folders of ROOT/test in name order; a test image's class is its index here. */
  classNames: string[];
  train: { images: Uint8Array; count: number; files: string[] };
  test: { images: Uint8Array; labels: Uint8Array; count: number; files: string[] };
}

/** Reads ROOT in the folder layout, every image fitted to `shape` [c, h, w] by `mode`. */
export function readImageFolder(root: string, shape: readonly [number, number, number], mode: ResizeMode): ImageFolder {
  const dir = resolve(root);
  if (!isDir(dir)) throw new DataError(`folder: ${root} is not a directory (expected ${FOLDER_LAYOUT})`, root);
  const trainDir = join(dir, 'train', 'good'), testDir = join(dir, 'test');
  if (!isDir(trainDir)) throw new DataError(`folder: ${trainDir} does not exist (expected ${FOLDER_LAYOUT})`, trainDir);
  if (!isDir(testDir)) throw new DataError(`folder: ${testDir} does not exist (expected ${FOLDER_LAYOUT})`, testDir);
  const trainFiles = pngFiles(trainDir);
  if (trainFiles.length === 0) throw new DataError(`folder: ${trainDir} holds no .png images`, trainDir);
  const defects = readdirSync(testDir).filter((n) => !n.startsWith('.') && n !== 'good').sort();
  for (const d of defects) if (!isDir(join(testDir, d))) throw new DataError(`folder: ${join(testDir, d)} is not a directory (ROOT/test holds one folder per kind of image: good and each defect)`, join(testDir, d));
  const classNames = [...(isDir(join(testDir, 'good')) ? ['good'] : []), ...defects];
  if (classNames[0] !== 'good') classNames.unshift('good');
  if (classNames.length > 256) throw new DataError(`folder: ${testDir} holds ${classNames.length - 1} defect folders; at most 255 are supported`, testDir);
  const testFiles: string[] = [];
  const labels: number[] = [];
  classNames.forEach((name, k) => {
    const d = join(testDir, name);
    if (!isDir(d)) return;
    for (const f of pngFiles(d)) { testFiles.push(f); labels.push(k); }
  });
  if (testFiles.length === 0) throw new DataError(`folder: ${testDir} holds no .png images (expected ${FOLDER_LAYOUT})`, testDir);
  return {
    root: dir, classNames,
    train: { images: readFolderImages(trainFiles, shape, mode), count: trainFiles.length, files: trainFiles },
    test: { images: readFolderImages(testFiles, shape, mode), labels: Uint8Array.from(labels), count: testFiles.length, files: testFiles },
  };
}
