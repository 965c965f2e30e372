/**
 * The `svdd` command line: train, test, data download. Errors a user can act on print one line
 * and exit non-zero; anything else is a bug and prints its stack.
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { DataError } from '../svdd/data/errors.ts';
import { isDatasetName, DATASET_NAMES } from '../svdd/data/datasets.ts';
import { downloadDataset } from '../svdd/data/download.ts';
import { ModelError, packageVersion } from '../svdd/model.ts';
import { UsageError, runTraining } from '../svdd/run.ts';
import { SafetensorsError } from '../tensor/io/safetensors.ts';
import { buildTrainConfig, trainHelp, trainParseOptions } from './train-flags.ts';
import { parseNumber } from './args.ts';
import type { TrainConfig } from '../svdd/config.ts';
import { progressHooks } from './progress.ts';
import { DivergenceError } from '../svdd/trainer.ts';
import { claimDefaultOutDir, fsErrorMessage, isFsError } from '../svdd/run-dir.ts';
import { testCommand, TEST_HELP } from './test-command.ts';
import { explainCommand } from './explain-command.ts';
import { predictCommand } from './predict-command.ts';
import { reportCommand } from './report-command.ts';
import { studyCommand } from './study-command.ts';
import { BackendError, shutdownBackends } from '../tensor/backends.ts';

const USAGE = `svdd: Deep SVDD one-class anomaly detection (Ruff et al., ICML 2018) in TypeScript

usage:
  svdd train [--dataset mnist] [--normal-class 0] [--preset paper|short|quick] [--out DIR] ...
  svdd test --model DIR
  svdd predict --model DIR --input FILE...          score images, decide with the saved threshold
  svdd explain --model DIR --top-anomalies K        Grad-CAM of the anomaly score
  svdd report DIR                                   DIR/report.html with plots
  svdd study run SPEC --out DIR                     a grid of runs (resumable, shardable); status, summarize, slurm
  svdd data download <mnist|fashion-mnist|cifar10> --dir DIR
  svdd --version

'svdd <command> --help' lists a command's flags.
`;

function parse(argv: string[], options: Record<string, { type: 'string' | 'boolean' }>, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
}

/** Where a command's output goes (tests capture it). */
export interface CliIo { out(text: string): void; err(text: string): void; stderrStream: NodeJS.WriteStream }
const processIo: CliIo = { out: (t) => { process.stdout.write(t); }, err: (t) => { process.stderr.write(t); }, stderrStream: process.stderr };

async function train(argv: string[], io: CliIo): Promise<void> {
  const { values } = parse(argv, { ...trainParseOptions(), resume: { type: 'string' }, 'checkpoint-every': { type: 'string' } });
  if (values.help) { io.out(trainHelp()); return; }
  const checkpointEvery = values['checkpoint-every'] === undefined ? undefined : parseNumber('--checkpoint-every', String(values['checkpoint-every']), { integer: true, min: 0 });
  let cfg: TrainConfig, outDir: string;
  if (typeof values.resume === 'string') {
    // The run's own config.json decides everything; other settings would make it another run.
    const extra = Object.keys(values).filter((k) => !['resume', 'checkpoint-every'].includes(k));
    if (extra.length > 0) throw new UsageError(`--resume continues a run with its own config.json; drop ${extra.map((k) => `--${k}`).join(', ')}`);
    outDir = values.resume;
    cfg = buildTrainConfig({ config: join(outDir, 'config.json') }).cfg;
  } else {
    const built = buildTrainConfig(values as Record<string, string | boolean | undefined>);
    cfg = built.cfg;
    for (const w of built.warnings) io.err(`svdd: warning: ${w}\n`);
    // The default directory is claimed (created) here, with millisecond resolution and a counter.
    outDir = built.out ?? claimDefaultOutDir('runs', `${cfg.dataset}-${cfg.normalClass}`);
  }
  const epochsOf = (phase: string): number => (phase === 'pretrain' ? cfg.aeEpochs : cfg.epochs);
  const progress = progressHooks(io.stderrStream, epochsOf);
  try {
    await runTraining(cfg, outDir, { log: (l) => io.out(`${l}\n`), hooks: progress }, { resume: typeof values.resume === 'string', checkpointEvery });
  } finally {
    progress.clear(); // an error line must not land after a half-drawn bar
  }
}

async function data(argv: string[], io: CliIo): Promise<void> {
  const { values, positionals } = parse(argv, { dir: { type: 'string' }, 'base-url': { type: 'string' }, help: { type: 'boolean' } }, true);
  if (values.help || positionals[0] !== 'download') {
    io.out('svdd data download <mnist|fashion-mnist|cifar10> --dir DIR [--base-url URL]\n  fetches the official files with checksum verification; resumable, atomic, each file capped at its known size\n'
      + '  --base-url URL   the folder holding the dataset\'s files on a mirror (default: $SVDD_DATA_MIRROR/<dataset>/, else the official host)\n');
    if (!values.help) throw new UsageError('expected: svdd data download <dataset> --dir DIR');
    return;
  }
  const name = positionals[1] ?? '';
  if (!isDatasetName(name)) throw new UsageError(`unknown dataset '${name}' (expected ${DATASET_NAMES.join(', ')})`);
  if (!values.dir) throw new UsageError('svdd data download: --dir DIR is required');
  const baseUrl = typeof values['base-url'] === 'string' ? values['base-url'] : undefined;
  const res = await downloadDataset(name, String(values.dir), { log: (l: string) => io.err(`${l}\n`), baseUrl });
  for (const f of res.files) io.out(`${f.outcome.padEnd(10)} ${f.name}\n`);
  io.out(`${name} is ready in ${res.dir} (use --data-dir ${res.dir})\n`);
}

export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'train': await train(rest, io); return 0;
      case 'test': {
        const { values } = parse(rest, { model: { type: 'string' }, 'data-dir': { type: 'string' }, 'test-subset': { type: 'string' }, backend: { type: 'string' }, threads: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean' } });
        if (values.help) { io.out(TEST_HELP); return 0; }
        await testCommand(values, io.out);
        return 0;
      }
      case 'data': await data(rest, io); return 0;
      case 'explain': await explainCommand(rest, io.stderrStream); return 0;
      case 'predict': await predictCommand(rest, io.stderrStream); return 0;
      case 'report': await reportCommand(rest, io.stderrStream); return 0;
      case 'study': return await studyCommand(rest, io.out);
      case '--version': case '-V': case 'version':
        io.out(`svdd-ts ${packageVersion()}\n`); return 0;
      case undefined: case '--help': case '-h': case 'help':
        io.out(USAGE); return cmd === undefined ? 1 : 0;
      default:
        throw new UsageError(`unknown command '${cmd}' ('svdd --help' lists the commands)`);
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof DataError || e instanceof ModelError || e instanceof SafetensorsError || e instanceof BackendError || e instanceof DivergenceError) {
      // One line per problem, each with the prefix.
      io.err(e.message.split('\n').map((l) => `svdd: ${l}\n`).join(''));
      return 2;
    }
    // A file-system error (a full disk, a read-only directory, --out naming a file, …) is one line too.
    if (isFsError(e)) { io.err(`svdd: ${fsErrorMessage(e)}\n`); return 2; }
    throw e;
  } finally {
    await shutdownBackends();
  }
}
