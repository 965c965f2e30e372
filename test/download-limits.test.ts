/**
 * `svdd data download` against hostile or broken servers and file systems (issue 11, item 13):
 * a size cap per file (an endless body stops), one-line errors for EISDIR / ENOSPC / FIFOs, a
 * base URL and a mirror variable, https where the official host serves it. The server is local
 * (127.0.0.1) and every response it sends is bounded.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOWNLOAD_SOURCES, downloadDataset, downloadFile, resolveBaseUrl, downloadCap, type RemoteFile } from '../src/svdd/data/download.ts';
import { DataError } from '../src/svdd/data/errors.ts';

const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');
const KiB = 1024;
/** The most any response of the test server sends. */
const SERVER_MAX = 64 * 2 ** 20;

class Host {
  files = new Map<string, Buffer>();
  urls: string[] = [];
  /** Bytes the endless responses actually sent before the client hung up. */
  endlessSent = 0;
  base = '';
  private server: Server = createServer((req, res) => {
    const url = req.url ?? '';
    this.urls.push(url);
    if (url === '/endless') { this.endless(res, undefined); return; }
    if (url === '/liar') { this.endless(res, 10 * 2 ** 30); return; }
    const name = url.replace(/^\/(data|mirror\/[a-z0-9-]+)\//, '');
    const body = this.files.get(name);
    if (!body) { res.writeHead(404, 'Not Found').end(); return; }
    res.writeHead(200, { 'Content-Length': body.length }).end(body);
  });

  /** Streams zeros (64 KiB at a time, never more than SERVER_MAX) until the client goes away. */
  private endless(res: ServerResponse, announce: number | undefined): void {
    res.writeHead(200, announce === undefined ? {} : { 'Content-Length': announce });
    const chunk = Buffer.alloc(64 * KiB);
    let sent = 0;
    const pump = (): void => {
      while (sent < SERVER_MAX && !res.destroyed) {
        sent += chunk.length;
        this.endlessSent = Math.max(this.endlessSent, sent);
        if (!res.write(chunk)) { res.once('drain', pump); return; }
      }
      res.destroy();
    };
    res.on('close', () => { sent = SERVER_MAX; });
    pump();
  }

  async start(): Promise<void> {
    await new Promise<void>((ok) => this.server.listen(0, '127.0.0.1', ok));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }
}

async function rejects(p: Promise<unknown>, ...fragments: (string | RegExp)[]): Promise<string> {
  let err: unknown;
  try { await p; } catch (e) { err = e; }
  expect(err, `expected a DataError (${fragments.join(', ')})`).to.be.instanceOf(DataError);
  const msg = (err as Error).message;
  expect(msg).to.not.contain('\n');
  for (const f of fragments) {
    if (typeof f === 'string') expect(msg).to.contain(f);
    else expect(msg).to.match(f);
  }
  return msg;
}

describe('data download: limits, file-system errors and mirrors', function () {
  this.timeout(60_000);
  const host = new Host();
  let dir = '';
  const blob = Buffer.alloc(100_000, 3);
  before(async () => { await host.start(); host.files.set('blob.bin', blob); });
  after(() => host.stop());
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'svdd-dl-lim-')); host.urls = []; host.endlessSent = 0; });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('every official file has an expected size, and every host is https', () => {
    for (const [name, src] of Object.entries(DOWNLOAD_SOURCES)) {
      expect(src.baseUrl, name).to.match(/^https:\/\//);
      for (const f of src.files) expect(f.size, `${name}/${f.name}`).to.be.a('number').and.greaterThan(1000);
    }
    expect(downloadCap({ name: 'x', md5: '', size: 1_000_000 })).to.be.within(1_000_000, 1_200_000);
  });

  it('stops an endless body at the cap and removes the partial file', async () => {
    const dest = join(dir, 'endless.bin');
    await rejects(downloadFile(`${host.base}/endless`, dest, md5(blob), { maxBytes: 200 * KiB }), 'endless', 'more than', '204800');
    expect(existsSync(`${dest}.part`)).to.equal(false);
    expect(existsSync(dest)).to.equal(false);
    expect(host.endlessSent).to.be.below(SERVER_MAX);
  });

  it('refuses a response that announces more than the cap before writing anything', async () => {
    const dest = join(dir, 'liar.bin');
    await rejects(downloadFile(`${host.base}/liar`, dest, md5(blob), { maxBytes: 200 * KiB }), 'announces 10737418240 bytes', '204800');
    expect(existsSync(`${dest}.part`)).to.equal(false);
  });

  it('caps a dataset file at its expected size plus a margin', async () => {
    const files: RemoteFile[] = [{ name: 'blob.bin', md5: md5(blob), size: 10_000 }];
    await rejects(downloadDataset('mnist', dir, { baseUrl: `${host.base}/data/`, files, verify: false }), 'blob.bin', 'more than');
    const ok: RemoteFile[] = [{ name: 'blob.bin', md5: md5(blob), size: blob.length }];
    const r = await downloadDataset('mnist', dir, { baseUrl: `${host.base}/data/`, files: ok, verify: false });
    expect(r.files[0]!.outcome).to.equal('downloaded');
  });

  it('gives one line when the partial file is a directory (EISDIR) or the target is a FIFO', async () => {
    const dest = join(dir, 'blob.bin');
    mkdirSync(`${dest}.part`);
    await rejects(downloadFile(`${host.base}/data/blob.bin`, dest, md5(blob)), `${dest}.part`, 'directory');
    const fifo = join(dir, 'fifo.bin');
    execFileSync('mkfifo', [fifo]);
    await rejects(downloadFile(`${host.base}/data/blob.bin`, fifo, md5(blob)), fifo, 'FIFO');
    const devPart = join(dir, 'dev.bin');
    symlinkSync('/dev/zero', `${devPart}.part`);
    await rejects(downloadFile(`${host.base}/data/blob.bin`, devPart, md5(blob)), 'character device');
  });

  it('gives one line when the disk is full (ENOSPC, on a 64 KiB tmpfs)', async function () {
    const mnt = join(dir, 'full');
    mkdirSync(mnt);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch {
      console.log('    (skipped: mounting a small tmpfs needs root; ENOSPC not exercised)');
      this.skip();
    }
    try {
      await rejects(downloadFile(`${host.base}/data/blob.bin`, join(mnt, 'blob.bin'), md5(blob)), 'no space left');
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  it('takes a base URL (validated) and the SVDD_DATA_MIRROR variable, one folder per dataset', async () => {
    host.files.set('train-images-idx3-ubyte.gz', blob);
    const files: RemoteFile[] = [{ name: 'train-images-idx3-ubyte.gz', md5: md5(blob), size: blob.length }];
    const old = process.env.SVDD_DATA_MIRROR;
    try {
      process.env.SVDD_DATA_MIRROR = `${host.base}/mirror`;
      expect(resolveBaseUrl('fashion-mnist')).to.equal(`${host.base}/mirror/fashion-mnist/`);
      await downloadDataset('fashion-mnist', dir, { files, verify: false });
      expect(host.urls).to.deep.equal(['/mirror/fashion-mnist/train-images-idx3-ubyte.gz']);
      rmSync(join(dir, 'train-images-idx3-ubyte.gz'));
      host.urls = [];
      await downloadDataset('fashion-mnist', dir, { files, verify: false, baseUrl: `${host.base}/data` });
      expect(host.urls).to.deep.equal(['/data/train-images-idx3-ubyte.gz']);
      process.env.SVDD_DATA_MIRROR = 'ftp://example.invalid/';
      await rejects(downloadDataset('mnist', dir, { files, verify: false }), 'SVDD_DATA_MIRROR', 'http');
      delete process.env.SVDD_DATA_MIRROR;
      expect(resolveBaseUrl('mnist')).to.equal(DOWNLOAD_SOURCES.mnist.baseUrl);
      await rejects(downloadDataset('mnist', dir, { files, verify: false, baseUrl: 'not a url' }), 'base URL', 'not a url');
    } finally {
      if (old === undefined) delete process.env.SVDD_DATA_MIRROR; else process.env.SVDD_DATA_MIRROR = old;
    }
    expect(readFileSync(join(dir, 'train-images-idx3-ubyte.gz')).equals(blob)).to.equal(true);
  });
});

describe('svdd data download --base-url', () => {
  it('fetches from the given folder and refuses a URL that is not http(s), in one line', async () => {
    const { main } = await import('../src/cli/main.ts');
    let err = '';
    const io = { out: () => undefined, err: (t: string) => { err += t; }, stderrStream: process.stderr };
    const dir = mkdtempSync(join(tmpdir(), 'svdd-baseurl-'));
    expect(await main(['data', 'download', 'mnist', '--dir', dir, '--base-url', 'ftp://mirror.invalid/mnist/'], io)).to.equal(2);
    expect(err.trim().split('\n')).to.have.length(1);
    expect(err).to.match(/not an http\(s\) URL/);
    // A mirror on this machine that has none of the files: the download names the mirror's URL.
    const server = createServer((_req, res) => { res.statusCode = 404; res.end(); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      err = '';
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/m/`;
      expect(await main(['data', 'download', 'mnist', '--dir', dir, '--base-url', base], io)).to.equal(2);
      expect(err).to.include(`${base}train-images-idx3-ubyte.gz`).and.to.match(/HTTP 404/);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
