/**
 * PNG output for inspection (image grids, heatmaps, overlays) and PNG input for prediction.
 * In-memory images are planar CHW float arrays in [0, 1], the layout the tensor engine uses,
 * so a batch slice can be passed without reshuffling.
 */
import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { writeFileAtomic } from '../tensor/io/atomic.ts';

export type FloatImageData = Float32Array | Float64Array;

export interface GridOptions {
  /** Images per row; default min(count, 8) like torchvision's make_grid. */
  cols?: number;
  /** Pixels of padding between and around tiles; default 2. */
  pad?: number;
  /**
   * 'minmax-per-image' (default) stretches each image to [0, 1] on its own (a constant image
   * becomes 0, as torchvision does), which suits network outputs of arbitrary range; 'none'
   * clamps values to [0, 1] as given.
   */
  normalize?: 'minmax-per-image' | 'none';
  /** Padding intensity in [0, 1]; default 0 (black). */
  padValue?: number;
}

export interface DecodedImage {
  width: number;
  height: number;
  /** 1 for grayscale PNGs (colour types 0 and 4), 3 otherwise; alpha is dropped. */
  channels: 1 | 3;
  /** CHW, values in [0, 1]. */
  data: Float32Array;
}

const toByte = (v: number): number => (v > 0 ? (v < 1 ? Math.round(v * 255) : 255) : 0);

function encode(width: number, height: number, channels: 1 | 3, bytes: Uint8Array): Uint8Array {
  const png = new PNG({ width, height });
  png.data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Matching input and output colour types makes pngjs pass our interleaved bytes through untouched.
  const colorType = channels === 1 ? 0 : 2;
  const buf = PNG.sync.write(png, { colorType, inputColorType: colorType, inputHasAlpha: false });
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Tiles `count` CHW images (NCHW data, 1 or 3 channels) into one PNG: grayscale for 1 channel,
 * RGB for 3. Returns the encoded PNG bytes.
 */
export function imageGridPng(
  images: FloatImageData,
  count: number,
  channels: number,
  height: number,
  width: number,
  options: GridOptions = {},
): Uint8Array {
  if (channels !== 1 && channels !== 3) throw new Error(`imageGridPng: channels must be 1 or 3, got ${channels}`);
  if (!(count >= 1) || !Number.isInteger(count)) throw new Error(`imageGridPng: count must be a positive integer, got ${count}`);
  const plane = height * width;
  const per = channels * plane;
  if (images.length !== count * per) {
    throw new Error(`imageGridPng: expected ${count}×${channels}×${height}×${width} = ${count * per} values, got ${images.length}`);
  }
  const cols = options.cols ?? Math.min(count, 8);
  const pad = options.pad ?? 2;
  const normalize = options.normalize ?? 'minmax-per-image';
  if (!(cols >= 1) || !Number.isInteger(cols)) throw new Error(`imageGridPng: cols must be a positive integer, got ${cols}`);
  if (!(pad >= 0) || !Number.isInteger(pad)) throw new Error(`imageGridPng: pad must be a non-negative integer, got ${pad}`);
  const rows = Math.ceil(count / cols);
  const W = cols * width + (cols + 1) * pad;
  const H = rows * height + (rows + 1) * pad;
  const out = new Uint8Array(W * H * channels).fill(toByte(options.padValue ?? 0));
  for (let n = 0; n < count; n++) {
    const base = n * per;
    let lo = 0;
    let scale = 1;
    if (normalize === 'minmax-per-image') {
      let min = Infinity;
      let max = -Infinity;
      for (let i = 0; i < per; i++) {
        const v = images[base + i]!;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      lo = min;
      scale = max > min ? 1 / (max - min) : 0;
    }
    const x0 = pad + (n % cols) * (width + pad);
    const y0 = pad + Math.floor(n / cols) * (height + pad);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const o = ((y0 + y) * W + (x0 + x)) * channels;
        for (let c = 0; c < channels; c++) out[o + c] = toByte((images[base + c * plane + y * width + x]! - lo) * scale);
      }
    }
  }
  return encode(W, H, channels, out);
}

/** Encodes one CHW image (1 or 3 channels, values clamped to [0, 1]) as PNG bytes. */
export function imagePng(image: FloatImageData, channels: number, height: number, width: number): Uint8Array {
  return imageGridPng(image, 1, channels, height, width, { pad: 0, normalize: 'none' });
}

export function writePngAtomic(path: string, bytes: Uint8Array): void {
  writeFileAtomic(path, bytes);
}

// Viridis as a published degree-6 polynomial fit per channel. Measured against matplotlib's
// 256-entry table, the largest deviation is 0.0126 (blue, at t = 1), at most 4 of 255 levels after
// quantisation: invisible in a heatmap, and it keeps a 768-number table out of the source.
const VIRIDIS: readonly (readonly [number, number, number])[] = [
  [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
  [0.1050930431085774, 1.404613529898575, 1.384590162594685],
  [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
  [-4.634230498983486, -5.799100973351585, -19.33244095627987],
  [6.228269936347081, 14.17993336680509, 56.69055260068105],
  [4.776384997670288, -13.74514537774601, -65.35303263337234],
  [-5.435455855934631, 4.645852612178535, 26.3124352495832],
];

/** Viridis colour of t (clamped to [0, 1]; NaN maps to 0) as [r, g, b] in [0, 1]. */
export function viridis(t: number): [number, number, number] {
  const u = t > 0 ? (t < 1 ? t : 1) : 0;
  const rgb: [number, number, number] = [0, 0, 0];
  for (let k = 0; k < 3; k++) {
    let v = VIRIDIS[6]![k]!;
    for (let i = 5; i >= 0; i--) v = VIRIDIS[i]![k]! + u * v;
    rgb[k] = v > 0 ? (v < 1 ? v : 1) : 0;
  }
  return rgb;
}

/** Maps n values in [0, 1] (e.g. an H×W heatmap) to a 3×n CHW RGB image via viridis. */
export function heatmapRgb(values01: ArrayLike<number>): Float32Array {
  const n = values01.length;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    const [r, g, b] = viridis(values01[i]!);
    out[i] = r;
    out[n + i] = g;
    out[2 * n + i] = b;
  }
  return out;
}

/**
 * Alpha-blends a viridis heatmap (H×W values in [0, 1]) over a CHW image (1 or 3 channels,
 * values in [0, 1]): (1 - alpha)·image + alpha·colour. Returns a 3×H×W RGB image.
 */
export function overlay(image: FloatImageData, channels: number, height: number, width: number, heat: ArrayLike<number>, alpha = 0.5): Float32Array {
  if (channels !== 1 && channels !== 3) throw new Error(`overlay: channels must be 1 or 3, got ${channels}`);
  const plane = height * width;
  if (image.length !== channels * plane) throw new Error(`overlay: image has ${image.length} values, expected ${channels}×${height}×${width}`);
  if (heat.length !== plane) throw new Error(`overlay: heatmap has ${heat.length} values, expected ${height}×${width} = ${plane}`);
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`overlay: alpha must be in [0, 1], got ${alpha}`);
  const colour = heatmapRgb(heat);
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const src = channels === 1 ? 0 : c * plane;
    for (let i = 0; i < plane; i++) out[c * plane + i] = (1 - alpha) * image[src + i]! + alpha * colour[c * plane + i]!;
  }
  return out;
}

/** Decodes PNG bytes; `source` names the origin in error messages. */
export function decodePng(bytes: Uint8Array, source = '<buffer>'): DecodedImage {
  let png: ReturnType<typeof PNG.sync.read>;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw new Error(`cannot decode PNG ${source}: ${(e as Error).message}`);
  }
  // pngjs always hands back 8-bit RGBA (16-bit input is rescaled); the header says whether the file was grey.
  const { width, height, data } = png;
  const channels: 1 | 3 = png.color ? 3 : 1;
  const plane = width * height;
  const out = new Float32Array(channels * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < channels; c++) out[c * plane + i] = data[4 * i + c]! / 255;
  }
  return { width, height, channels, data: out };
}

export function readPng(path: string): DecodedImage {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read PNG ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return decodePng(bytes, path);
}
