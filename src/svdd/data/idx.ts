import { DataError } from './errors.ts';
import { readSizedMaybeGzip, resolveMaybeGz } from './files.ts';

/** IDX magic numbers: two zero bytes, data type 0x08 (unsigned byte), number of dimensions. */
export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

export interface IdxImages {
  /** count * rows * cols bytes, image-major, row-major within an image. */
  images: Uint8Array;
  count: number;
  rows: number;
  cols: number;
  /** The file actually read (may differ from the requested name by a `.gz`). */
  path: string;
}

export interface IdxLabels {
  labels: Uint8Array;
  count: number;
  path: string;
}

export interface IdxImageExpectations {
  rows?: number;
  cols?: number;
  count?: number;
}

function u32be(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) >>> 0) + (b[off + 1]! << 16) + (b[off + 2]! << 8) + b[off + 3]!;
}

function hex8(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/** Explains a wrong magic number in terms the user can act on (swapped files, wrong format). */
function magicProblem(path: string, magic: number, want: number): DataError {
  let hint = '';
  if (magic === IDX_LABELS_MAGIC) hint = ' (this looks like an IDX label file)';
  else if (magic === IDX_IMAGES_MAGIC) hint = ' (this looks like an IDX image file)';
  else if ((magic & 0xffff0000) !== 0) hint = ' (not an IDX file)';
  return new DataError(
    `${path}: bad magic number ${hex8(magic)}, expected ${hex8(want)}${hint}`, path);
}

/**
 * Reads an IDX3 unsigned-byte image file (MNIST / Fashion-MNIST layout), raw or gzipped,
 * accepting the name with or without `.gz`. The size check is exact: a file that is even one
 * byte off is either truncated or not what its header claims, and guessing would silently
 * shift every later image.
 */
export function readIdxImages(requested: string, expect: IdxImageExpectations = {}): IdxImages {
  const path = resolveMaybeGz(requested);
  const buf = readSizedMaybeGzip(path, 16, (head) => {
    const h = imageHeader(head, path);
    return { bytes: h.want, tooLong: `${path}: too long: header says ${h.count} images of ${h.rows}x${h.cols} (${h.want} bytes) but the file decompresses to more than that` };
  }, 'an IDX image file');
  const { count, rows, cols, want } = imageHeader(buf, path);
  if (buf.length !== want) {
    const what = buf.length < want ? 'truncated' : 'too long';
    throw new DataError(
      `${path}: ${what}: header says ${count} images of ${rows}x${cols} (${want} bytes) but the file has ${buf.length} bytes`,
      path);
  }
  if ((expect.rows !== undefined && rows !== expect.rows) || (expect.cols !== undefined && cols !== expect.cols)) {
    throw new DataError(
      `${path}: wrong image size ${rows}x${cols}, expected ${expect.rows ?? rows}x${expect.cols ?? cols}`, path);
  }
  if (expect.count !== undefined && count !== expect.count) {
    throw new DataError(`${path}: has ${count} images, expected ${expect.count}`, path);
  }
  return { images: buf.subarray(16), count, rows, cols, path };
}

/** Checks an IDX3 image header (the first 16 bytes, or all there is) and returns the file size it implies. */
function imageHeader(buf: Uint8Array, path: string): { count: number; rows: number; cols: number; want: number } {
  // Magic first: a swapped label file is shorter than an image header, and "wrong kind of
  // file" is the more useful message.
  if (buf.length >= 4 && u32be(buf, 0) !== IDX_IMAGES_MAGIC) throw magicProblem(path, u32be(buf, 0), IDX_IMAGES_MAGIC);
  if (buf.length < 16) {
    throw new DataError(`${path}: truncated: ${buf.length} bytes, shorter than the 16-byte IDX image header`, path);
  }
  const count = u32be(buf, 4);
  const rows = u32be(buf, 8);
  const cols = u32be(buf, 12);
  if (count === 0 || rows === 0 || cols === 0) {
    throw new DataError(`${path}: bad dimensions: header says ${count} images of ${rows}x${cols}`, path);
  }
  return { count, rows, cols, want: 16 + count * rows * cols };
}

/** Checks an IDX1 label header (the first 8 bytes, or all there is) and returns the file size it implies. */
function labelHeader(buf: Uint8Array, path: string): { count: number; want: number } {
  if (buf.length >= 4 && u32be(buf, 0) !== IDX_LABELS_MAGIC) throw magicProblem(path, u32be(buf, 0), IDX_LABELS_MAGIC);
  if (buf.length < 8) {
    throw new DataError(`${path}: truncated: ${buf.length} bytes, shorter than the 8-byte IDX label header`, path);
  }
  const count = u32be(buf, 4);
  if (count === 0) throw new DataError(`${path}: bad dimensions: header says 0 labels`, path);
  return { count, want: 8 + count };
}

/** Reads an IDX1 unsigned-byte label file, raw or gzipped; labels must be class ids 0..9. */
export function readIdxLabels(requested: string, expectCount?: number): IdxLabels {
  const path = resolveMaybeGz(requested);
  const buf = readSizedMaybeGzip(path, 8, (head) => {
    const h = labelHeader(head, path);
    return { bytes: h.want, tooLong: `${path}: too long: header says ${h.count} labels (${h.want} bytes) but the file decompresses to more than that` };
  }, 'an IDX label file');
  const { count, want } = labelHeader(buf, path);
  if (buf.length !== want) {
    const what = buf.length < want ? 'truncated' : 'too long';
    throw new DataError(
      `${path}: ${what}: header says ${count} labels (${want} bytes) but the file has ${buf.length} bytes`, path);
  }
  const labels = buf.subarray(8);
  const bad = labels.findIndex((l) => l > 9);
  if (bad >= 0) {
    throw new DataError(`${path}: label ${labels[bad]} at index ${bad} is out of range 0..9`, path);
  }
  if (expectCount !== undefined && count !== expectCount) {
    throw new DataError(`${path}: has ${count} labels, expected ${expectCount} (one per image)`, path);
  }
  return { labels, count, path };
}
