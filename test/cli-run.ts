/**
 * Runs the CLI in-process for tests, capturing everything it prints (commands that write to
 * process.stdout / process.stderr directly included) and telling a clean exit from an escaped
 * exception (a stack trace for a user).
 */
import { main, type CliIo } from '../src/cli/main.ts';

export interface CliRun { code: number | null; out: string; err: string; threw: Error | null }

export async function runCli(argv: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  let out = '', err = '';
  const o = process.stdout.write.bind(process.stdout), e = process.stderr.write.bind(process.stderr);
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) { saved[k] = process.env[k]; if (v === undefined) delete process.env[k]; else process.env[k] = v; }
  process.stdout.write = ((s: string | Uint8Array) => { out += String(s); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { err += String(s); return true; }) as typeof process.stderr.write;
  const io: CliIo = { out: (t) => { out += t; }, err: (t) => { err += t; }, stderrStream: process.stderr };
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
