/**
 * PNG output for inspection (image grids, heatmaps, overlays) and PNG input for prediction.
 * In-memory images are planar CHW float arrays in [0, 1], the layout the tensor engine uses,
 * so a batch slice can be passed without reshuffling.
 */
import { inflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { writeFileAtomic } from '../tensor/io/atomic.ts';
import { limitFromEnv, maxInputBytes, readRegularFile, type InputFileError } from '../tensor/io/bounded.ts';
import { DataError } from './data/errors.ts';

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

/** What a PNG's header says, read and checked before any pixel is decoded. */
export interface PngInfo {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlaced: boolean;
  /** 1 for grayscale (colour types 0 and 4), 3 otherwise, as decodePng returns them. */
  channels: 1 | 3;
  /** Bytes the image data must inflate to (filter bytes included, all Adam7 passes when interlaced). */
  inflatedBytes: number;
  /** The IDAT chunks' contents, concatenated. */
  idat: Uint8Array;
}

export interface DecodeOptions {
  /** Refuse images of more pixels than this (default: SVDD_MAX_PNG_PIXELS, else 4096 × 4096). */
  maxPixels?: number;
}

/** Default pixel cap: 4096 × 4096 (a 16-bit RGBA image of that size decodes to about 400 MB). */
export const DEFAULT_MAX_PNG_PIXELS = 4096 * 4096;

export function maxPngPixels(): number {
  return limitFromEnv('SVDD_MAX_PNG_PIXELS', DEFAULT_MAX_PNG_PIXELS);
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Allowed bit depths per colour type (PNG specification, table 11.1). */
const PNG_DEPTHS: Record<number, readonly number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const PNG_SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const ADAM7: readonly (readonly [number, number, number, number])[] = [
  [0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2],
];

let crcTable: Uint32Array | null = null;

/** CRC-32 (ISO 3309, as PNG chunks use it); zlib.crc32 only exists from Node 20.15 on. */
export function crc32(bytes: Uint8Array): number {
  if (crcTable === null) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const isPng = (b: Uint8Array): boolean => b.length >= 8 && PNG_SIGNATURE.every((v, i) => b[i] === v);

/**
 * Walks a PNG's chunks without decoding pixels: signature, chunk lengths within the file, CRCs,
 * IHDR first and valid (dimensions ≥ 1, a legal colour type / bit depth pair), PLTE where
 * required, at least one IDAT, IEND last. Returns the header; throws a one-line DataError.
 */
export function pngInfo(bytes: Uint8Array, source = '<buffer>'): PngInfo {
  const fail = (why: string): never => { throw new DataError(`cannot decode PNG ${source}: ${why}`, source === '<buffer>' ? undefined : source); };
  if (!isPng(bytes)) fail(bytes.length < 8 ? `not a PNG file (only ${bytes.length} bytes)` : 'not a PNG file (bad signature)');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = 8;
  let header: Omit<PngInfo, 'idat' | 'inflatedBytes' | 'channels'> | null = null;
  let palette = false;
  let ended = false;
  const idat: Uint8Array[] = [];
  let idatBytes = 0;
  while (!ended) {
    if (off + 12 > bytes.length) fail(`truncated: the file ends at byte ${bytes.length}, before the IEND chunk`);
    const len = dv.getUint32(off);
    const type = String.fromCharCode(bytes[off + 4]!, bytes[off + 5]!, bytes[off + 6]!, bytes[off + 7]!);
    if (!/^[A-Za-z]{4}$/.test(type)) fail(`corrupt chunk type at byte ${off}`);
    if (len > 0x7fffffff) fail(`chunk ${type} at byte ${off} declares ${len} bytes, more than the format allows`);
    if (off + 12 + len > bytes.length) fail(`truncated: chunk ${type} at byte ${off} needs ${len} bytes, the file ends first`);
    const body = bytes.subarray(off + 8, off + 8 + len);
    if ((crc32(bytes.subarray(off + 4, off + 8 + len)) >>> 0) !== dv.getUint32(off + 8 + len)) fail(`bad CRC in chunk ${type} at byte ${off} (corrupt file)`);
    if (header === null && type !== 'IHDR') fail(`the first chunk is ${type}, expected IHDR`);
    switch (type) {
      case 'IHDR': {
        if (header !== null) fail('more than one IHDR chunk');
        if (len !== 13) fail(`IHDR chunk has ${len} bytes, expected 13`);
        const width = dv.getUint32(off + 8);
        const height = dv.getUint32(off + 12);
        const [bitDepth, colorType, compression, filter, interlace] = [body[8]!, body[9]!, body[10]!, body[11]!, body[12]!];
        if (width === 0 || height === 0) fail(`header says ${width}×${height} pixels; a PNG has at least one row and one column`);
        if (width > 0x7fffffff || height > 0x7fffffff) fail(`header says ${width}×${height} pixels, more than the format allows`);
        if (!(colorType in PNG_DEPTHS)) fail(`unsupported colour type ${colorType} (valid: 0, 2, 3, 4, 6)`);
        if (!PNG_DEPTHS[colorType]!.includes(bitDepth)) fail(`bit depth ${bitDepth} is not valid for colour type ${colorType}`);
        if (compression !== 0) fail(`unsupported compression method ${compression}`);
        if (filter !== 0) fail(`unsupported filter method ${filter}`);
        if (interlace > 1) fail(`unsupported interlace method ${interlace}`);
        header = { width, height, bitDepth, colorType, interlaced: interlace === 1 };
        break;
      }
      case 'PLTE': palette = true; break;
      case 'IDAT': idat.push(body); idatBytes += len; break;
      case 'IEND': ended = true; break;
      default:
        // Lower-case first letter: ancillary, safe to skip; upper-case: critical and unknown.
        if (type.charCodeAt(0) < 0x61) fail(`unsupported critical chunk ${type}`);
    }
    off += 12 + len;
  }
  if (off !== bytes.length) fail(`${bytes.length - off} bytes of data after the IEND chunk`);
  const h = header!;
  if (h.colorType === 3 && !palette) fail('colour type 3 (palette) without a PLTE chunk');
  if (idatBytes === 0) fail('no image data (IDAT chunk)');
  const bitsPerPixel = PNG_SAMPLES[h.colorType]! * h.bitDepth;
  const rowBytes = (w: number): number => Math.ceil((w * bitsPerPixel) / 8) + 1;
  let inflatedBytes = 0;
  if (!h.interlaced) inflatedBytes = rowBytes(h.width) * h.height;
  else {
    for (const [x0, y0, dx, dy] of ADAM7) {
      const pw = Math.ceil((h.width - x0) / dx);
      const ph = Math.ceil((h.height - y0) / dy);
      if (pw > 0 && ph > 0) inflatedBytes += rowBytes(pw) * ph;
    }
  }
  const data = new Uint8Array(idatBytes);
  let at = 0;
  for (const c of idat) { data.set(c, at); at += c.length; }
  return { ...h, channels: h.colorType & 2 ? 3 : 1, inflatedBytes, idat: data };
}

/**
 * Decodes PNG bytes; `source` names the origin in error messages. The header is checked first
 * (pngInfo) and the pixel count capped, and the image data is inflated at most to the size the
 * header implies, so a small file cannot make the decoder allocate gigabytes. Every problem is
 * one DataError line: "cannot decode PNG <source>: <why>".
 */
export function decodePng(bytes: Uint8Array, source = '<buffer>', options: DecodeOptions = {}): DecodedImage {
  const fail = (why: string): never => { throw new DataError(`cannot decode PNG ${source}: ${why}`, source === '<buffer>' ? undefined : source); };
  let maxPixels: number;
  try {
    maxPixels = options.maxPixels ?? maxPngPixels();
  } catch (e) {
    return fail((e as Error).message);
  }
  const info = pngInfo(bytes, source);
  const pixels = info.width * info.height;
  if (pixels > maxPixels) {
    fail(`${info.width}×${info.height} = ${pixels} pixels, more than the limit of ${maxPixels} (SVDD_MAX_PNG_PIXELS)`);
  }
  let inflated: Buffer;
  try {
    inflated = inflateSync(info.idat, { maxOutputLength: Math.max(1, info.inflatedBytes) });
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      return fail(`more image data than a ${info.width}×${info.height} image holds (${info.inflatedBytes} bytes)`);
    }
    return fail(`corrupt image data (${(e as Error).message.split('\n')[0]})`);
  }
  if (inflated.length !== info.inflatedBytes) {
    fail(`truncated image data: ${inflated.length} of the ${info.inflatedBytes} bytes a ${info.width}×${info.height} image needs`);
  }
  let png: ReturnType<typeof PNG.sync.read>;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    return fail(String((e as Error)?.message ?? e).split('\n')[0]!);
  }
  // pngjs always hands back 8-bit RGBA (16-bit input is rescaled); the header says whether the file was grey.
  const { width, height, data } = png;
  if (width !== info.width || height !== info.height || data.length !== 4 * width * height) {
    fail(`decoder returned ${data.length} bytes for a ${info.width}×${info.height} image`);
  }
  const channels: 1 | 3 = png.color ? 3 : 1;
  const plane = width * height;
  const out = new Float32Array(channels * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < channels; c++) out[c * plane + i] = data[4 * i + c]! / 255;
  }
  return { width, height, channels, data: out };
}

/** Reads and decodes a PNG file (a regular file of at most SVDD_MAX_INPUT_BYTES bytes). */
export function readPng(path: string, options: DecodeOptions = {}): DecodedImage {
  let bytes: Buffer;
  try {
    bytes = readRegularFile(path, maxInputBytes(), 'a PNG file');
  } catch (e) {
    throw new DataError(`cannot read PNG ${path}: ${(e as InputFileError).code ?? (e as Error).message}`, path);
  }
  return decodePng(bytes, path, options);
}
