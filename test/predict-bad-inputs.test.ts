/**
 * Malformed PNGs give one clear line, never a stack (issue 11, item 7), and `svdd predict` on a
 * batch with bad files scores the good ones, prints one line per bad file and exits non-zero.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { main } from '../src/cli/main.ts';
import { predictCommand } from '../src/cli/predict-command.ts';
import { predictFiles } from '../src/svdd/predict.ts';
import { loadModel } from '../src/svdd/model.ts';
import { DataError } from '../src/svdd/data/errors.ts';
import { decodePng, readPng } from '../src/svdd/images.ts';
import { ihdr, PNG_SIG, pngChunk, pngFile } from './bombs.ts';

async function capture(fn: () => Promise<unknown>): Promise<{ out: string; err: string }> {
  const o = process.stdout.write.bind(process.stdout), e = process.stderr.write.bind(process.stderr);
  let out = '', err = '';
  process.stdout.write = ((s: string | Uint8Array) => { out += String(s); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { err += String(s); return true; }) as typeof process.stderr.write;
  try { await fn(); } finally { process.stdout.write = o; process.stderr.write = e; }
  return { out, err };
}

function grayPng(width: number, height: number, fill = 128): Buffer {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) png.data.set([fill, fill, fill, 255], 4 * i);
  return PNG.sync.write(png, { colorType: 0 });
}

/** The malformed PNGs of the issue and their relatives, with what the one-line error must say. */
export function malformedPngs(): { name: string; bytes: Buffer; says: RegExp }[] {
  const good = grayPng(28, 28);
  const badCrc = Buffer.from(good);
  badCrc[good.length - 20] ^= 1;
  const iend = pngChunk('IEND', new Uint8Array(0));
  const raw = (rows: number, width: number): Buffer => deflateSync(Buffer.alloc(rows * (width + 1)));
  return [
    { name: 'truncated.png', bytes: good.subarray(0, 50), says: /truncated/ },
    { name: 'truncated-in-header.png', bytes: good.subarray(0, 20), says: /truncated/ },
    { name: 'signature-only.png', bytes: PNG_SIG, says: /truncated/ },
    { name: 'bad-crc.png', bytes: badCrc, says: /bad CRC in chunk/ },
    { name: 'bad-colour-type.png', bytes: pngFile(ihdr(28, 28, 8, 5), raw(28, 28)), says: /unsupported colour type 5/ },
    { name: 'bad-bit-depth.png', bytes: pngFile(ihdr(28, 28, 3, 0), raw(28, 28)), says: /bit depth 3 is not valid for colour type 0/ },
    { name: 'zero-by-zero.png', bytes: pngFile(ihdr(0, 0), raw(0, 0)), says: /0×0 pixels/ },
    { name: 'zero-width.png', bytes: pngFile(ihdr(0, 28), raw(28, 0)), says: /0×28 pixels/ },
    { name: 'not-a-png.png', bytes: Buffer.from('GIF89a, not a png at all'), says: /not a PNG file/ },
    { name: 'empty.png', bytes: Buffer.alloc(0), says: /not a PNG file \(only 0 bytes\)/ },
    { name: 'no-iend.png', bytes: good.subarray(0, good.length - 12), says: /before the IEND chunk/ },
    { name: 'after-iend.png', bytes: Buffer.concat([good, Buffer.from('junk')]), says: /after the IEND chunk/ },
    { name: 'no-idat.png', bytes: Buffer.concat([PNG_SIG, ihdr(28, 28), iend]), says: /no image data/ },
    { name: 'idat-first.png', bytes: Buffer.concat([PNG_SIG, pngChunk('IDAT', raw(28, 28)), ihdr(28, 28), iend]), says: /first chunk is IDAT, expected IHDR/ },
    { name: 'short-data.png', bytes: pngFile(ihdr(28, 28), raw(10, 28)), says: /truncated image data/ },
    { name: 'long-data.png', bytes: pngFile(ihdr(28, 28), raw(40, 28)), says: /more image data than a 28×28 image holds/ },
    { name: 'corrupt-zlib.png', bytes: pngFile(ihdr(28, 28), Buffer.from('this is no zlib stream')), says: /corrupt image data/ },
    { name: 'palette-without-plte.png', bytes: pngFile(ihdr(28, 28, 8, 3), raw(28, 28)), says: /without a PLTE chunk/ },
    { name: 'bad-filter-type.png', bytes: pngFile(ihdr(2, 2), deflateSync(Buffer.from([9, 0, 0, 9, 0, 0]))), says: /filter/i },
    { name: 'critical-unknown.png', bytes: Buffer.concat([PNG_SIG, ihdr(28, 28), pngChunk('ABCD', new Uint8Array(0)), pngChunk('IDAT', raw(28, 28)), iend]), says: /unsupported critical chunk ABCD/ },
    { name: 'huge-length.png', bytes: Buffer.concat([PNG_SIG, Buffer.from([0xff, 0xff, 0xff, 0xf0]), Buffer.from('IHDR'), Buffer.alloc(20)]), says: /more than the format allows/ },
  ];
}

describe('PNG: malformed files give one clear line', () => {
  let dir = '';
  before(() => { dir = mkdtempSync(join(tmpdir(), 'svdd-badpng-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const { name, bytes, says } of malformedPngs()) {
    it(name, () => {
      const p = join(dir, name);
      writeFileSync(p, bytes);
      let err: unknown;
      try { readPng(p); } catch (e) { err = e; }
      expect(err, 'a DataError').to.be.instanceOf(DataError);
      const msg = (err as Error).message;
      expect(msg).to.match(new RegExp(`^cannot decode PNG ${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
      expect(msg).to.match(says);
      expect(msg).to.not.contain('\n');
      expect(() => decodePng(bytes)).to.throw(DataError, /^cannot decode PNG <buffer>: /);
    });
  }

  it('still decodes valid PNGs of every colour type, depth and interlacing', () => {
    for (const [colorType, inputHasAlpha] of [[0, false], [2, false], [4, true], [6, true]] as const) {
      for (const bitDepth of [8, 16] as const) {
        const png = new PNG({ width: 5, height: 3 });
        for (let i = 0; i < 15; i++) png.data.set([i * 10, 255 - i * 10, i, 200], 4 * i);
        const bytes = PNG.sync.write(png, { colorType, bitDepth, inputHasAlpha: true });
        const img = decodePng(bytes);
        expect([img.width, img.height, img.channels], `${colorType}/${bitDepth}/${inputHasAlpha}`).to.deep.equal([5, 3, colorType & 2 ? 3 : 1]);
      }
    }
    // Interlaced (Adam7) and 1-bit grey, built by hand: pngjs only writes non-interlaced images.
    const adam7Bytes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]]
      .map(([x0, y0, dx, dy]) => [Math.ceil((9 - x0!) / dx!), Math.ceil((7 - y0!) / dy!)])
      .filter(([w, h]) => w! > 0 && h! > 0)
      .reduce((s, [w, h]) => s + (w! + 1) * h!, 0);
    const inter = decodePng(pngFile(ihdr(9, 7, 8, 0, 1), deflateSync(Buffer.alloc(adam7Bytes))));
    expect([inter.width, inter.height, inter.channels]).to.deep.equal([9, 7, 1]);
    const bits = decodePng(pngFile(ihdr(10, 2, 1, 0), deflateSync(Buffer.from([0, 0xff, 0xc0, 0, 0, 0]))));
    expect(Array.from(bits.data.subarray(0, 10))).to.deep.equal([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(Array.from(bits.data.subarray(10))).to.deep.equal(new Array(10).fill(0));
  });
});

describe('svdd predict: a batch with bad files', function () {
  this.timeout(120_000);
  let tmp = '';
  let modelDir = '';
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'svdd-predict-bad-'));
    modelDir = join(tmp, 'model');
    let code = -1;
    await capture(async () => {
      code = await main(['train', '--preset', 'quick', '--subset', '200', '--test-subset', '100', '--ae-epochs', '1', '--epochs', '1',
        '--threshold', 'adaptive', '--backend', 'ts', '--out', modelDir]);
    });
    expect(code).to.equal(0);
  });
  after(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

  function batch(): { inputs: string[]; good: string[]; bad: string[] } {
    const w = (name: string, data: Uint8Array): string => { const p = join(tmp, name); writeFileSync(p, data); return p; };
    const good = [w('a.png', grayPng(28, 28, 10)), w('b.png.gz', gzipSync(grayPng(28, 28, 200)))];
    const bad = [
      ...malformedPngs().slice(0, 7).map((m) => w(m.name, m.bytes)),
      w('wrong-size.png', grayPng(20, 20)),
      join(tmp, 'missing.png'),
      w('notes.txt', Buffer.from('hello')),
    ];
    const idx = Buffer.concat([Buffer.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28]), Buffer.alloc(2 * 784, 77)]);
    good.push(w('two-idx3-ubyte', idx));
    return { inputs: [bad[0]!, good[0]!, ...bad.slice(1, 5), good[1]!, ...bad.slice(5), good[2]!], good, bad };
  }

  it('predictFiles scores the good files and reports each bad one', () => {
    const { inputs, good, bad } = batch();
    const r = predictFiles(loadModel(modelDir), inputs, 'svdd');
    expect(r.predictions.map((p) => p.input)).to.deep.equal([good[0], good[1], `${good[2]}#0`, `${good[2]}#1`]);
    expect(r.predictions.every((p) => Number.isFinite(p.score))).to.equal(true);
    expect(r.failures.map((f) => f.input)).to.deep.equal(bad);
    for (const f of r.failures) {
      expect(f.error).to.contain(f.input);
      expect(f.error).to.not.contain('\n');
    }
  });

  it('prints scores for the good files, one line per bad file, and exits 2', async () => {
    const { inputs, good, bad } = batch();
    let code = -1;
    const { out, err } = await capture(async () => { code = await main(['predict', '--model', modelDir, '--backend', 'ts', '--input', ...inputs]); });
    expect(code).to.equal(2);
    const lines = out.trim().split('\n');
    expect(lines.map((l) => l.split(/\s+/)[0])).to.deep.equal([good[0], good[1], `${good[2]}#0`, `${good[2]}#1`]);
    const errLines = err.trim().split('\n');
    for (const b of bad) expect(errLines.filter((l) => l.includes(b)), b).to.have.length(1);
    expect(err).to.not.match(/\n\s+at /);
    expect(errLines.at(-1)).to.match(new RegExp(`^svdd: ${bad.length} of ${inputs.length} input files could not be read`));
  });

  it('--json lists the failures next to the predictions and still exits non-zero', async () => {
    const { inputs, bad } = batch();
    let err: unknown = null;
    const { out } = await capture(async () => {
      try { await predictCommand(['--model', modelDir, '--backend', 'ts', '--json', '--input', ...inputs]); } catch (e) { err = e; }
    });
    expect(err).to.be.instanceOf(DataError);
    const r = JSON.parse(out) as { predictions: unknown[]; failures: { input: string; error: string }[] };
    expect(r.predictions).to.have.length(4);
    expect(r.failures.map((f) => f.input)).to.deep.equal(bad);
  });

  it('a batch of only bad files scores nothing and exits 2; a clean batch prints no failures', async () => {
    const { bad, good } = batch();
    let code = -1;
    const { out, err } = await capture(async () => { code = await main(['predict', '--model', modelDir, '--backend', 'ts', '--input', ...bad.slice(0, 3)]); });
    expect(code).to.equal(2);
    expect(out).to.equal('');
    expect(err.trim().split('\n')).to.have.length(4);
    const clean = await capture(async () => { code = await main(['predict', '--model', modelDir, '--backend', 'ts', '--json', '--input', good[0]!]); });
    expect(code).to.equal(0);
    expect(Object.keys(JSON.parse(clean.out) as object)).to.deep.equal(['model', 'score', 'threshold', 'predictions']);
  });
});
