/**
 * Runs the CLI in-process for tests, capturing everything it prints (commands that write to
 * process.stdout / process.stderr directly included) and telling a clean exit from an escaped
 * exception (a stack trace for a user).
 */
import { writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { main, type CliIo } from '../src/cli/main.ts';
import { loadRaw } from '../src/svdd/data/datasets.ts';

export interface CliRun { code: number | null; out: string; err: string; threw: Error | null }

export async function runCli(argv: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  let out = '', err = '';
  const o = process.stdout.write.bind(process.stdout), e = process.stderr.write.bind(process.stderr);
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) { saved[k] = process.env[k]; if (v === undefined) delete process.env[k]; else process.env[k] = v; }
  process.stdout.write = ((s: string | Uint8Array) => { out += String(s); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { err += String(s); return true; }) as typeof process.stderr.write;
  // Not a terminal, whatever mocha's stderr is: no progress lines in what the tests read.
  const stderrStream = { isTTY: false, write: (s: string | Uint8Array) => { err += String(s); return true; } } as unknown as NodeJS.WriteStream;
  const io: CliIo = { out: (t) => { out += t; }, err: (t) => { err += t; }, stderrStream };
  let code: number | null = null, threw: Error | null = null;
  try { code = await main(argv, io); } catch (x) { threw = x as Error; } finally {
    process.stdout.write = o; process.stderr.write = e;
    for (const [k, v] of Object.entries(saved)) { if (v === undefined) delete process.env[k]; else process.env[k] = v; }
  }
  return { code, out, err, threw };
}

/** The lines of stderr that start with 'svdd: ' (the one-line errors). */
export const errorLines = (r: CliRun): string[] => r.err.split('\n').filter((l) => l.startsWith('svdd: '));

/** A tiny MNIST run's flags: seconds on one thread. */
export const TINY = ['--subset', '200', '--test-subset', '300', '--ae-epochs', '1', '--epochs', '1', '--threads', '1'];

/** A grayscale PNG of MNIST test image i (for predict). */
export function mnistPng(path: string, i: number): void {
  const raw = loadRaw('mnist');
  const png = new PNG({ width: 28, height: 28 });
  for (let k = 0; k < 784; k++) {
    const v = raw.test.images[i * 784 + k]!;
    png.data[4 * k] = v; png.data[4 * k + 1] = v; png.data[4 * k + 2] = v; png.data[4 * k + 3] = 255;
  }
  writeFileSync(path, PNG.sync.write(png, { colorType: 0 }));
}
