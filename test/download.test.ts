import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CIFAR_RECORD } from '../src/svdd/data/cifar.ts';
import { loadRaw } from '../src/svdd/data/datasets.ts';
import { DOWNLOAD_SOURCES, downloadDataset, downloadFile, readTar, type RemoteFile } from '../src/svdd/data/download.ts';
import { DataError } from '../src/svdd/data/errors.ts';

const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

/** Minimal ustar writer, the counterpart of the reader under test. */
function tar(entries: { name: string; data?: Uint8Array; dir?: boolean }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const h = Buffer.alloc(512);
    const data = e.data ?? new Uint8Array(0);
    h.write(e.name, 0, 100, 'utf8');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write(e.dir ? '5' : '0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const v of h) sum += v;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(h, Buffer.from(data), Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

interface Seen { url: string; headers: IncomingHttpHeaders }

/** Local stand-in for the dataset hosts: serves `files`, honours `Range: bytes=N-` unless told not to. */
class FakeHost {
  files = new Map<string, Buffer>();
  seen: Seen[] = [];
  ignoreRange = false;
  private server: Server = createServer((req, res) => {
    this.seen.push({ url: req.url ?? '', headers: req.headers });
    const body = this.files.get((req.url ?? '').replace(/^\/data\//, ''));
    if (!body) { res.writeHead(404, 'Not Found').end(); return; }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m && !this.ignoreRange) {
      const from = Number(m[1]);
      if (from >= body.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, { 'Content-Range': `bytes ${from}-${body.length - 1}/${body.length}`, 'Content-Length': body.length - from });
      res.end(body.subarray(from));
      return;
    }
    res.writeHead(200, { 'Content-Length': body.length });
    res.end(body);
  });
  base = '';

  async start(): Promise<void> {
    await new Promise<void>((ok) => this.server.listen(0, '127.0.0.1', ok));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/data/`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }
}

async function rejects(p: Promise<unknown>, ...fragments: string[]): Promise<DataError> {
  let err: unknown;
  try { await p; } catch (e) { err = e; }
  expect(err, 'expected a DataError').to.be.instanceOf(DataError);
  for (const f of fragments) expect((err as Error).message).to.contain(f);
  return err as DataError;
}

describe('data: download', () => {
  const host = new FakeHost();
  let dir: string;
  const blob = Buffer.alloc(100_000);
  for (let i = 0; i < blob.length; i++) blob[i] = (i * 131 + (i >> 8)) & 0xff;

  before(async () => {
    await host.start();
    host.files.set('blob.bin', blob);
  });
  after(() => host.stop());
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'svdd-dl-'));
    host.seen = [];
    host.ignoreRange = false;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('has the official file tables', () => {
    expect(DOWNLOAD_SOURCES.mnist.files.map((f) => f.name)).to.include('train-images-idx3-ubyte.gz');
    expect(DOWNLOAD_SOURCES.cifar10.files[0]!.md5).to.equal('c32a1d4ab5d03f1284b67883e8d87530');
  });

  it('downloads, verifies and renames atomically; then skips a verified file', async () => {
    const dest = join(dir, 'blob.bin');
    expect(await downloadFile(`${host.base}blob.bin`, dest, md5(blob))).to.equal('downloaded');
    expect(readFileSync(dest).equals(blob)).to.equal(true);
    expect(existsSync(`${dest}.part`)).to.equal(false);
    host.seen = [];
    expect(await downloadFile(`${host.base}blob.bin`, dest, md5(blob))).to.equal('skipped');
    expect(host.seen).to.have.length(0);
  });

  it('fails clearly on a checksum mismatch and deletes the bad part file', async () => {
    const dest = join(dir, 'blob.bin');
    const want = '0123456789abcdef0123456789abcdef';
    await rejects(downloadFile(`${host.base}blob.bin`, dest, want), 'blob.bin', 'checksum mismatch', want, md5(blob));
    expect(existsSync(dest)).to.equal(false);
    expect(existsSync(`${dest}.part`)).to.equal(false);
  });

  it('resumes a partial .part file with a Range request', async () => {
    const dest = join(dir, 'blob.bin');
    writeFileSync(`${dest}.part`, blob.subarray(0, 40_000));
    expect(await downloadFile(`${host.base}blob.bin`, dest, md5(blob))).to.equal('resumed');
    expect(host.seen[0]!.headers.range).to.equal('bytes=40000-');
    expect(readFileSync(dest).equals(blob)).to.equal(true);
    expect(existsSync(`${dest}.part`)).to.equal(false);
  });

  it('restarts when the server ignores Range, and when a resumed prefix was corrupt', async () => {
    const dest = join(dir, 'blob.bin');
    writeFileSync(`${dest}.part`, blob.subarray(0, 40_000));
    host.ignoreRange = true;
    expect(await downloadFile(`${host.base}blob.bin`, dest, md5(blob))).to.equal('downloaded');
    expect(readFileSync(dest).equals(blob)).to.equal(true);

    const dest2 = join(dir, 'again.bin');
    host.ignoreRange = false;
    writeFileSync(`${dest2}.part`, Buffer.alloc(500, 7));
    const logs: string[] = [];
    await downloadFile(`${host.base}blob.bin`, dest2, md5(blob), { log: (l) => logs.push(l) });
    expect(readFileSync(dest2).equals(blob)).to.equal(true);
    expect(logs.join('\n')).to.contain('checksum mismatch after resuming');
  });

  it('treats a complete .part (server answers 416) as done after verifying it', async () => {
    const dest = join(dir, 'blob.bin');
    writeFileSync(`${dest}.part`, blob);
    expect(await downloadFile(`${host.base}blob.bin`, dest, md5(blob))).to.equal('resumed');
    expect(readFileSync(dest).equals(blob)).to.equal(true);
  });

  it('reports HTTP errors and unreachable hosts', async () => {
    await rejects(downloadFile(`${host.base}missing.bin`, join(dir, 'm'), md5(blob)), 'missing.bin', 'HTTP 404');
    await rejects(downloadFile('http://127.0.0.1:1/x.bin', join(dir, 'x'), md5(blob)), 'http://127.0.0.1:1/x.bin',
      'download failed');
  });

  it('downloads an IDX dataset and loads it', async () => {
    const idx = (magic: number, dims: number[], body: Uint8Array): Buffer => {
      const h = Buffer.alloc(4 + 4 * dims.length);
      h.writeUInt32BE(magic, 0);
      dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
      return gzipSync(Buffer.concat([h, body]));
    };
    const content: Record<string, Buffer> = {
      'train-images-idx3-ubyte.gz': idx(0x803, [3, 28, 28], new Uint8Array(3 * 784).fill(9)),
      'train-labels-idx1-ubyte.gz': idx(0x801, [3], Uint8Array.from([1, 2, 3])),
      't10k-images-idx3-ubyte.gz': idx(0x803, [2, 28, 28], new Uint8Array(2 * 784).fill(200)),
      't10k-labels-idx1-ubyte.gz': idx(0x801, [2], Uint8Array.from([4, 5])),
    };
    const files: RemoteFile[] = Object.entries(content).map(([name, b]) => {
      host.files.set(name, b);
      return { name, md5: md5(b) };
    });
    const r = await downloadDataset('mnist', dir, { baseUrl: host.base, files });
    expect(r.files.map((f) => f.outcome)).to.deep.equal(['downloaded', 'downloaded', 'downloaded', 'downloaded']);
    const raw = loadRaw('mnist', dir);
    expect(Array.from(raw.train.labels)).to.deep.equal([1, 2, 3]);
    const again = await downloadDataset('mnist', dir, { baseUrl: host.base, files });
    expect(again.files.every((f) => f.outcome === 'skipped')).to.equal(true);
  });

  it('downloads the CIFAR-10 tarball, extracts the batches and removes the archive', async () => {
    const batch = (label: number): Buffer => {
      const b = Buffer.alloc(2 * CIFAR_RECORD, 17);
      b[0] = label;
      b[CIFAR_RECORD] = label;
      return b;
    };
    const members = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin',
      'test_batch.bin'];
    const archive = gzipSync(tar([
      { name: 'cifar-10-batches-bin/', dir: true },
      ...members.map((m, i) => ({ name: `cifar-10-batches-bin/${m}`, data: batch(i) })),
      { name: 'cifar-10-batches-bin/readme.html', data: Buffer.from('<html></html>') },
      { name: 'cifar-10-batches-bin/batches.meta.txt', data: Buffer.from('airplane\nautomobile\n') },
    ]));
    host.files.set('cifar-10-binary.tar.gz', archive);
    const files: RemoteFile[] = [{ name: 'cifar-10-binary.tar.gz', md5: md5(archive), extract: [...members, 'batches.meta.txt'] }];
    const r = await downloadDataset('cifar10', dir, { baseUrl: host.base, files });
    expect(r.files[0]!.outcome).to.equal('extracted');
    expect(existsSync(join(dir, 'cifar-10-binary.tar.gz'))).to.equal(false);
    expect(existsSync(join(dir, 'readme.html'))).to.equal(false);
    const raw = loadRaw('cifar10', dir);
    expect(Array.from(raw.train.labels)).to.deep.equal([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
    expect(Array.from(raw.test.labels)).to.deep.equal([5, 5]);
    host.seen = [];
    const again = await downloadDataset('cifar10', dir, { baseUrl: host.base, files });
    expect(again.files[0]!.outcome).to.equal('skipped');
    expect(host.seen).to.have.length(0);
  });

  it('readTar rejects corrupt and truncated archives', () => {
    const t = tar([{ name: 'a.bin', data: Buffer.alloc(1000, 1) }]);
    expect(readTar(t).map((e) => [e.name, e.data.length])).to.deep.equal([['a.bin', 1000]]);
    const bad = Buffer.from(t);
    bad[10] = 65;
    expect(() => readTar(bad, 'x.tar')).to.throw(DataError, 'x.tar: corrupt tar header');
    expect(() => readTar(t.subarray(0, 700), 'y.tar')).to.throw(DataError, 'y.tar: truncated');
  });
});
