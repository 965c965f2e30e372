/**
 * Memory bombs and non-regular files (issue 11, item 6): every reader of outside bytes refuses
 * them with one line, quickly, in bounded memory. The bombs run in a child process whose RSS is
 * watched: past RSS_LIMIT_MB it is killed and the test fails naming the probe, so a regression
 * cannot take the machine down.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DataError } from '../src/svdd/data/errors.ts';
import { readIdxImages } from '../src/svdd/data/idx.ts';
import { readCifarBatch } from '../src/svdd/data/cifar.ts';
import { decodePng, readPng } from '../src/svdd/images.ts';
import { readSafetensors, SafetensorsError } from '../src/tensor/io/safetensors.ts';
import { ihdr, pngFile } from './bombs.ts';
import { deflateSync } from 'node:zlib';

/** Peak RSS allowed for the child that reads every bomb (node + tsx alone take about 90 MB). */
const RSS_LIMIT_MB = 400;
/** A probe that takes longer than this is a hang. */
const PROBE_TIMEOUT_MS = 15_000;

interface Outcome { name: string; ms: number; errorClass: string | null; message: string | null; peakRssMB: number }

function rssMB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch { return 0; }
}

async function runBombs(dir: string): Promise<{ outcomes: Outcome[]; killed: string | null }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'bombs.ts'), dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const outcomes: Outcome[] = [];
  let current = '(startup)';
  let lastLine = Date.now();
  let killed: string | null = null;
  let buf = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = JSON.parse(buf.slice(0, nl)) as Outcome & { start?: string };
      buf = buf.slice(nl + 1);
      lastLine = Date.now();
      if (line.start !== undefined) current = line.start;
      else outcomes.push(line);
    }
  });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const watch = setInterval(() => {
    if (killed || child.pid === undefined) return;
    const rss = rssMB(child.pid);
    if (rss > RSS_LIMIT_MB) killed = `${current}: RSS ${Math.round(rss)} MB > ${RSS_LIMIT_MB} MB`;
    else if (Date.now() - lastLine > PROBE_TIMEOUT_MS) killed = `${current}: no answer within ${PROBE_TIMEOUT_MS / 1000} s (hang)`;
    if (killed) child.kill('SIGKILL');
  }, 20);
  const code = await new Promise<number | null>((ok) => child.on('close', ok));
  clearInterval(watch);
  if (!killed && code !== 0) killed = `${current}: child exited with ${code}: ${stderr.split('\n').slice(-8).join(' | ')}`;
  return { outcomes, killed };
}

describe('input bounds: memory bombs, devices and FIFOs', function () {
  this.timeout(120_000);
  let dir = '';
  before(() => { dir = mkdtempSync(join(tmpdir(), 'svdd-bombs-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses every bomb, device and FIFO with one line, in bounded memory, without hanging', async function () {
    if (process.platform !== 'linux') this.skip();
    const { outcomes, killed } = await runBombs(join(dir, 'b'));
    if (process.env.SVDD_SHOW_BOMBS) for (const o of outcomes) console.log(`${String(o.peakRssMB).padStart(5)} MB ${String(o.ms).padStart(5)} ms  ${o.name}: ${o.message}`);
    expect(killed, 'a probe ran out of bounds').to.equal(null);
    expect(outcomes.length).to.be.greaterThan(20);
    for (const o of outcomes) {
      expect(o.errorClass, `${o.name} was accepted or threw a non-domain error: ${o.message}`).to.be.oneOf(['DataError', 'SafetensorsError']);
      expect(o.message, o.name).to.not.contain('\n');
      expect(o.peakRssMB, o.name).to.be.below(RSS_LIMIT_MB);
    }
    const by = (name: string): string => outcomes.find((o) => o.name === name)!.message!;
    expect(by('PNG header 20000x20000 RGBA16 (68 bytes)')).to.match(/20000×20000/);
    expect(by('PNG 28x28 interlaced, IDAT inflates to 1 GiB')).to.match(/more image data/);
    expect(by('IDX images gzip: header 60000x28x28, 1 GiB of data')).to.match(/too long/);
    expect(by('IDX images gzip: header claims 2^64 bytes, 1 MiB of data')).to.match(/limit|cannot hold/);
    expect(by('CIFAR batch gzip: 1 GiB of zero records')).to.match(/10000 records/);
    expect(by('symlink to /dev/zero (idx-images)')).to.match(/character device, not a regular file/);
    expect(by('FIFO (cifar)')).to.match(/FIFO/);
  });

  it('caps raw files by SVDD_MAX_INPUT_BYTES and rejects a malformed value in one line', () => {
    const p = join(dir, 'big-idx3-ubyte');
    const img = Buffer.alloc(16 + 3 * 28 * 28);
    img.writeUInt32BE(0x803, 0); img.writeUInt32BE(3, 4); img.writeUInt32BE(28, 8); img.writeUInt32BE(28, 12);
    writeFileSync(p, img);
    const st = join(dir, 'm.safetensors');
    writeFileSync(st, Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{}')]));
    const old = process.env.SVDD_MAX_INPUT_BYTES;
    try {
      process.env.SVDD_MAX_INPUT_BYTES = '1000';
      expect(() => readIdxImages(p)).to.throw(DataError, /2368 bytes, more than the 1000-byte limit/);
      process.env.SVDD_MAX_INPUT_BYTES = '2k';
      expect(() => readIdxImages(p)).to.throw(DataError, /more than the 2048-byte limit/);
      const gz = join(dir, 'big2-idx3-ubyte.gz');
      writeFileSync(gz, gzipSync(img));
      expect(() => readIdxImages(gz)).to.throw(DataError, /2368 bytes.*2048-byte limit/);
      process.env.SVDD_MAX_INPUT_BYTES = 'lots';
      expect(() => readIdxImages(p)).to.throw(DataError, /SVDD_MAX_INPUT_BYTES='lots' is not a positive size/);
      expect(() => readSafetensors(st)).to.throw(SafetensorsError, /SVDD_MAX_INPUT_BYTES/);
    } finally {
      if (old === undefined) delete process.env.SVDD_MAX_INPUT_BYTES; else process.env.SVDD_MAX_INPUT_BYTES = old;
    }
    expect(readIdxImages(p).count).to.equal(3);
    expect(readSafetensors(st).tensors.size).to.equal(0);
  });

  it('refuses a CIFAR batch of more than 10000 records before reading it all', () => {
    const p = join(dir, 'huge.bin');
    writeFileSync(p, Buffer.alloc(10001 * 3073));
    expect(() => readCifarBatch(p)).to.throw(DataError, /10000 records/);
  });

  it('checks PNG dimensions from IHDR against a configurable pixel cap before decoding', () => {
    const png = pngFile(ihdr(300, 200, 8, 0), deflateSync(Buffer.alloc(200 * 301)));
    const p = join(dir, 'wide.png');
    writeFileSync(p, png);
    expect(readPng(p).width).to.equal(300);
    expect(() => decodePng(png, 'wide.png', { maxPixels: 59_999 })).to.throw(DataError, /300×200 = 60000 pixels, more than the limit of 59999/);
    const old = process.env.SVDD_MAX_PNG_PIXELS;
    try {
      process.env.SVDD_MAX_PNG_PIXELS = '50000';
      expect(() => readPng(p)).to.throw(DataError, /more than the limit of 50000/);
      process.env.SVDD_MAX_PNG_PIXELS = '-3';
      expect(() => readPng(p)).to.throw(DataError, /SVDD_MAX_PNG_PIXELS/);
    } finally {
      if (old === undefined) delete process.env.SVDD_MAX_PNG_PIXELS; else process.env.SVDD_MAX_PNG_PIXELS = old;
    }
  });
});
