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
