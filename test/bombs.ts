/**
 * Hostile inputs for the readers of outside bytes, built cheaply (a 1 GiB gzip bomb is 1 MiB of
 * concatenated gzip members; a 1 GiB zlib bomb is 1 MiB of sync-flushed deflate blocks), and a
 * child-process runner (`node --import tsx test/bombs.ts DIR`) that feeds each one to its reader
 * and prints one JSON line per probe with the outcome and the peak RSS so far. The parent
 * (test/input-bounds.test.ts) watches the child's RSS and kills it past a limit, so a regression
 * fails the test instead of exhausting the machine.
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { deflateRawSync, deflateSync, gzipSync, constants as zc } from 'node:zlib';
import { crc32 } from '../src/svdd/images.ts';

const MiB = 2 ** 20;

/** A gzip stream of `head` followed by `mib` MiB of zeros (multi-member: ~1 KiB per MiB). */
export function gzipBomb(head: Uint8Array, mib: number): Buffer {
  const member = gzipSync(Buffer.alloc(MiB), { level: 9 });
  const parts: Buffer[] = [gzipSync(head)];
  for (let i = 0; i < mib; i++) parts.push(member);
  return Buffer.concat(parts);
}

/** A zlib stream of `mib` MiB of zeros (valid header, blocks and Adler-32). */
export function zlibZeros(mib: number): Buffer {
  const block = deflateRawSync(Buffer.alloc(MiB), { level: 9, finishFlush: zc.Z_SYNC_FLUSH });
  const last = deflateRawSync(Buffer.alloc(0));
  const n = mib * MiB;
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE((((n % 65521) << 16) | 1) >>> 0);
  const parts: Buffer[] = [Buffer.from([0x78, 0xda])];
  for (let i = 0; i < mib; i++) parts.push(block);
  parts.push(last, adler);
  return Buffer.concat(parts);
}

export function pngChunk(type: string, data: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

export const PNG_SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function ihdr(width: number, height: number, depth = 8, colorType = 0, interlace = 0): Buffer {
  const b = Buffer.alloc(13);
  b.writeUInt32BE(width >>> 0, 0);
  b.writeUInt32BE(height >>> 0, 4);
  b[8] = depth;
  b[9] = colorType;
  b[12] = interlace;
  return pngChunk('IHDR', b);
}

export function pngFile(header: Buffer, idat: Uint8Array, extra: Buffer[] = []): Buffer {
  return Buffer.concat([PNG_SIG, header, ...extra, pngChunk('IDAT', idat), pngChunk('IEND', new Uint8Array(0))]);
}

function be32(...v: number[]): Buffer {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((x, i) => b.writeUInt32BE(x >>> 0, 4 * i));
  return b;
}

export interface Probe { name: string; reader: string; path: string }

/** Writes the hostile files into `dir` and lists the probes. */
export function makeBombs(dir: string): Probe[] {
  mkdirSync(dir, { recursive: true });
  const w = (name: string, data: Uint8Array): string => { const p = join(dir, name); writeFileSync(p, data); return p; };
  const probes: Probe[] = [];
  const add = (name: string, reader: string, path: string): void => { probes.push({ name, reader, path }); };

  const pngHeader = w('header-20000x20000.png', pngFile(ihdr(20000, 20000, 16, 6), deflateSync(Buffer.alloc(16))));
  add('PNG header 20000x20000 RGBA16 (68 bytes)', 'png', pngHeader);
  add('PNG header 20000x20000, predict', 'predict-mnist', pngHeader);
  const pngIdat = w('interlaced-idat-1GiB.png', pngFile(ihdr(28, 28, 8, 0, 1), zlibZeros(1024)));
  add('PNG 28x28 interlaced, IDAT inflates to 1 GiB', 'png', pngIdat);
  add('PNG 28x28 interlaced bomb, predict', 'predict-mnist', pngIdat);

  const idx = w('bomb-idx3-ubyte.gz', gzipBomb(Buffer.concat([be32(0x803, 60000, 28, 28)]), 1024));
  add('IDX images gzip: header 60000x28x28, 1 GiB of data', 'idx-images', idx);
  add('IDX images gzip bomb, predict', 'predict-mnist', idx);
  const claims = w('claims-idx3-ubyte.gz', gzipBomb(be32(0x803, 0xffffffff, 0xffff, 0xffff), 1));
  add('IDX images gzip: header claims 2^64 bytes, 1 MiB of data', 'idx-images', claims);
  const labels = w('bomb-idx1-ubyte.gz', gzipBomb(be32(0x801, 60000), 1024));
  add('IDX labels gzip: header 60000, 1 GiB of data', 'idx-labels', labels);
  const cifar = w('bomb.bin.gz', gzipBomb(new Uint8Array(0), 1024));
  add('CIFAR batch gzip: 1 GiB of zero records', 'cifar', cifar);
  add('CIFAR batch gzip bomb, predict', 'predict-cifar', cifar);

  for (const [name, reader] of [
    ['zero-idx3-ubyte', 'idx-images'], ['zero-idx1-ubyte', 'idx-labels'], ['zero.bin', 'cifar'], ['zero.png', 'png'],
    ['zero.safetensors', 'safetensors'], ['zero-input', 'predict-mnist'],
  ] as const) {
    const p = join(dir, name);
    symlinkSync('/dev/zero', p);
    add(`symlink to /dev/zero (${reader})`, reader, p);
  }
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  for (const reader of ['idx-images', 'idx-labels', 'cifar', 'png', 'safetensors', 'predict-mnist']) add(`FIFO (${reader})`, reader, fifo);
  return probes;
}

/**
 * This process's own peak RSS (VmHWM). Not `process.resourceUsage().maxRSS`: getrusage's maxrss
 * survives fork and exec, so a child of a large mocha process would report its parent's size.
 */
function peakRssMB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error('no VmHWM in /proc/self/status');
  return Math.round(Number(m[1]) / 1024);
}

async function run(dir: string): Promise<void> {
  const { readPng } = await import('../src/svdd/images.ts');
  const { readIdxImages, readIdxLabels } = await import('../src/svdd/data/idx.ts');
  const { readCifarBatch } = await import('../src/svdd/data/cifar.ts');
  const { readSafetensors } = await import('../src/tensor/io/safetensors.ts');
  const { readInputImages } = await import('../src/svdd/predict.ts');
  const readers: Record<string, (p: string) => unknown> = {
    'png': readPng,
    'idx-images': (p) => readIdxImages(p),
    'idx-labels': (p) => readIdxLabels(p),
    'cifar': readCifarBatch,
    'safetensors': readSafetensors,
    'predict-mnist': (p) => readInputImages(p, [1, 28, 28]),
    'predict-cifar': (p) => readInputImages(p, [3, 32, 32]),
  };
  for (const probe of makeBombs(dir)) {
    process.stdout.write(`${JSON.stringify({ start: probe.name })}\n`);
    const t0 = performance.now();
    let error: unknown = null;
    try { readers[probe.reader]!(probe.path); } catch (e) { error = e; }
    const err = error as Error | null;
    process.stdout.write(`${JSON.stringify({
      name: probe.name,
      ms: Math.round(performance.now() - t0),
      errorClass: err ? err.constructor.name : null,
      message: err ? String(err.message) : null,
      peakRssMB: peakRssMB(),
    })}\n`);
  }
}

if (process.argv[1]?.endsWith('bombs.ts') && process.argv[2]) await run(process.argv[2]);
