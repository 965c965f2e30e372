import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from './errors.ts';
import { readMaybeGzip, resolveMaybeGz } from './files.ts';

export const CIFAR_CHANNELS = 3;
export const CIFAR_SIZE = 32;
export const CIFAR_PIXELS = CIFAR_CHANNELS * CIFAR_SIZE * CIFAR_SIZE; // 3072
export const CIFAR_RECORD = 1 + CIFAR_PIXELS; // 3073
/** Records in an official batch file; a batch file may hold fewer, never more. */
export const CIFAR_BATCH_RECORDS = 10000;
export const CIFAR_TRAIN_FILES: readonly string[] = [
  'data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin',
];
export const CIFAR_TEST_FILE = 'test_batch.bin';
/** The official tarball unpacks into this folder; users often point at its parent. */
export const CIFAR_TAR_FOLDER = 'cifar-10-batches-bin';

export interface CifarBatch {
  /** count * 3072 bytes, each image CHW (1024 R, 1024 G, 1024 B; planes row-major). */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  path: string;
}

/** Raw or decompressed, a batch file holds at most 10000 records (30,730,000 bytes). */
export const CIFAR_BATCH_LIMIT = {
  maxBytes: CIFAR_BATCH_RECORDS * CIFAR_RECORD,
  what: `a CIFAR-10 batch (${CIFAR_BATCH_RECORDS} records of ${CIFAR_RECORD} bytes)`,
} as const;

/** Reads one CIFAR-10 binary batch (`.bin` or `.bin.gz`, name given with or without `.gz`). */
export function readCifarBatch(requested: string): CifarBatch {
  const path = resolveMaybeGz(requested);
  const buf = readMaybeGzip(path, CIFAR_BATCH_LIMIT);
  if (buf.length === 0 || buf.length % CIFAR_RECORD !== 0) {
    const n = Math.floor(buf.length / CIFAR_RECORD);
    throw new DataError(
      `${path}: truncated or not a CIFAR-10 binary batch: ${buf.length} bytes is not a positive multiple of the ` +
      `${CIFAR_RECORD}-byte record (1 label + 3072 pixels); ${n} whole records and ${buf.length - n * CIFAR_RECORD} extra bytes`,
      path);
  }
  const count = buf.length / CIFAR_RECORD;
  const images = new Uint8Array(count * CIFAR_PIXELS);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const off = i * CIFAR_RECORD;
    const label = buf[off]!;
    if (label > 9) {
      throw new DataError(`${path}: label ${label} of record ${i} (byte offset ${off}) is out of range 0..9`, path);
    }
    labels[i] = label;
    images.set(buf.subarray(off + 1, off + CIFAR_RECORD), i * CIFAR_PIXELS);
  }
  return { images, labels, count, path };
}

function hasBatch(dir: string, name: string): boolean {
  return existsSync(join(dir, name)) || existsSync(join(dir, `${name}.gz`));
}

/**
 * Where the batch files are: `dir` itself, or the `cifar-10-batches-bin/` folder the official
 * tarball creates inside it.
 */
export function findCifarDir(dir: string): string {
  if (hasBatch(dir, CIFAR_TEST_FILE)) return dir;
  const nested = join(dir, CIFAR_TAR_FOLDER);
  if (hasBatch(nested, CIFAR_TEST_FILE)) return nested;
  return dir;
}

function concat(batches: readonly CifarBatch[]): { images: Uint8Array; labels: Uint8Array; count: number } {
  const count = batches.reduce((s, b) => s + b.count, 0);
  if (batches.length === 1) return { images: batches[0]!.images, labels: batches[0]!.labels, count };
  const images = new Uint8Array(count * CIFAR_PIXELS);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const b of batches) {
    images.set(b.images, at * CIFAR_PIXELS);
    labels.set(b.labels, at);
    at += b.count;
  }
  return { images, labels, count };
}

export interface CifarSplits {
  dir: string;
  train: { images: Uint8Array; labels: Uint8Array; count: number };
  test: { images: Uint8Array; labels: Uint8Array; count: number };
}

/** Reads data_batch_1..5 (concatenated, official order) and test_batch from `dir`. */
export function readCifar10(dir: string): CifarSplits {
  const at = findCifarDir(dir);
  const train = concat(CIFAR_TRAIN_FILES.map((f) => readCifarBatch(join(at, f))));
  const test = concat([readCifarBatch(join(at, CIFAR_TEST_FILE))]);
  return { dir: at, train, test };
}
