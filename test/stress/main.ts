/**
 * `npm run stress`: the contention stress suite (contention.ts) with flags, longer than the
 * version in `npm test`. Exits 1 when any case fails.
 *
 *   npm run stress                                   # 200 repeats, batch 8, 2 threads, 2 busy loops, stalls, 6 training steps
 *   npm run stress -- --repeats 300 --batch 200      # the setting (batch 200), longer
 *   npm run stress -- --filter Winograd --repeats 50
 *   SVDD_STRESS_REPEATS=20 npm run stress
 *
 * Flags: --repeats N (or SVDD_STRESS_REPEATS), --batch N, --threads N, --busy N (busy-loop
 * processes), --stall P (probability of a main-thread stall at each scheduling point, default 0.5),
 * --stall-ms MS (longest stall, default 2), --no-stall (busy loops only), --steps N (training steps
 * per determinism run, 0: none), --train-batch N, --filter REGEX (case names, or "training"),
 * --ci (the fixed settings of `npm test`).
 */
import { shutdownBackends, useBackend } from '../../src/tensor/backends.ts';
import { CI_OPTIONS, DEFAULT_OPTIONS, formatReport, runStress, type StressOptions } from './contention.ts';

function parse(argv: string[]): StressOptions {
  const opts: StressOptions = { ...(argv.includes('--ci') ? CI_OPTIONS : DEFAULT_OPTIONS) };
  if (process.env.SVDD_STRESS_REPEATS) opts.repeats = Number(process.env.SVDD_STRESS_REPEATS);
  const int = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a whole number, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!, v = argv[i + 1];
    switch (a) {
      case '--ci': break;
      case '--repeats': opts.repeats = Math.max(1, int(a, v)); i++; break;
      case '--batch': opts.batch = Math.max(2, int(a, v)); i++; break;
      case '--threads': opts.threads = Math.max(1, int(a, v)); i++; break;
      case '--busy': opts.busy = int(a, v); i++; break;
      case '--stall': opts.stall = Number(v); i++; if (!(opts.stall >= 0 && opts.stall <= 1)) throw new Error('--stall needs a probability'); break;
      case '--stall-ms': opts.stallMs = Number(v); i++; if (!(opts.stallMs >= 0)) throw new Error('--stall-ms needs a duration'); break;
      case '--no-stall': opts.stall = 0; break;
      case '--steps': opts.trainSteps = int(a, v); i++; break;
      case '--train-batch': opts.trainBatch = Math.max(2, int(a, v)); i++; break;
      case '--filter': opts.filter = new RegExp(v ?? ''); i++; break;
      case '--help': case '-h':
        process.stdout.write('npm run stress -- [--repeats N] [--batch N] [--threads N] [--busy N] [--stall P] [--stall-ms MS] [--no-stall]\n'
          + '                    [--steps N] [--train-batch N] [--filter REGEX] [--ci]\n');
        process.exit(0);
        break;
      default: throw new Error(`unknown flag ${a} (see --help)`);
    }
  }
  return opts;
}

const opts = parse(process.argv.slice(2));
// Ctrl-C must not leave busy loops behind: exit through process.exit, whose 'exit' hook kills them.
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));
const report = await runStress({ ...opts, log: (line) => process.stdout.write(`${line}\n`) });
process.stdout.write(`\n${formatReport(report)}\n`);
for (const f of report.failures) process.stdout.write(`FAIL: ${f}\n`);
await useBackend('ts');
await shutdownBackends();
process.exitCode = report.failures.length > 0 ? 1 : 0;
