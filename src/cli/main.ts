/**
 * The `svdd` command line: train, test, data download. Errors a user can act on print one line
 * and exit non-zero; anything else is a bug and prints its stack.
 */
import { join } from 'node:path';
import { SvddError } from '../svdd/errors.ts';
import { isDatasetName, DATASET_NAMES } from '../svdd/data/datasets.ts';
import { downloadDataset } from '../svdd/data/download.ts';
import { packageVersion } from '../svdd/model.ts';
import { runTraining } from '../svdd/run.ts';
import { UsageError } from './usage-error.ts';
import { SafetensorsError } from '../tensor/io/safetensors.ts';
import { TRAIN_FLAGS, buildTrainConfig } from './train-flags.ts';
import { defineCommand, invoke, invokeGroup, overviewText, processIo, type CliIo, type Command, type CommandGroup, type FlagSpec, type FlagTable } from './command.ts';
import type { TrainConfig } from '../svdd/config.ts';
import { progressHooks } from './progress.ts';
import { claimDefaultOutDir, fsErrorMessage, isFsError } from '../svdd/run-dir.ts';
import { test } from './test-command.ts';
import { explainCli } from './explain-command.ts';
import { predict } from './predict-command.ts';
import { report } from './report-command.ts';
import { study } from './study-command.ts';
import { BackendError, shutdownBackends } from '../tensor/backends.ts';


const TRAIN_FLAGS_TABLE: FlagTable = {
  ...Object.fromEntries(TRAIN_FLAGS.map((f) => [f.flag, { kind: f.kind === 'bool' ? 'boolean' : 'string', arg: '<v>', help: f.help } satisfies FlagSpec])),
  resume: { kind: 'string', arg: 'DIR', nonEmpty: true, help: 'continue the interrupted run in DIR from its last checkpoint (same results as an uninterrupted run)' },
  'checkpoint-every': { kind: 'int', min: 0, arg: '<n>', help: 'epochs between checkpoints of each phase (default 5; 0: none)' },
};

/**
 * `svdd train`: its training settings are text to buildTrainConfig, which merges them over the
 * preset and --config file and checks them by the config's schema (its messages name the flags).
 */
const train = defineCommand({
  name: 'train',
  synopsis: 'svdd train [--dataset mnist] [--normal-class 0] [--preset paper|short|quick] [--out DIR] ...',
  summary: 'train and evaluate Deep SVDD on one class of a dataset',
  usage: 'svdd train [flags]: train and evaluate Deep SVDD on one class of a dataset',
  flags: TRAIN_FLAGS_TABLE,
  helpColumn: 26,
  run: async ({ values, given }, io) => {
    // Only the flags given: an absent switch must not override the --config file's setting.
    const settings: Record<string, string | boolean | undefined> = {};
    for (const k of given) if (k !== 'resume' && k !== 'checkpoint-every') settings[k] = values[k] as string | boolean;
    const checkpointEvery = values['checkpoint-every'] as number | undefined;
    const resume = values.resume as string | undefined;
    let cfg: TrainConfig, outDir: string;
    if (resume !== undefined) {
      // The run's own config.json decides everything; other settings would make it another run.
      const extra = Object.keys(settings);
      if (extra.length > 0) throw new UsageError(`--resume continues a run with its own config.json; drop ${extra.map((k) => `--${k}`).join(', ')}`);
      outDir = resume;
      cfg = buildTrainConfig({ config: join(outDir, 'config.json') }).cfg;
    } else {
      const built = buildTrainConfig(settings);
      cfg = built.cfg;
      for (const w of built.warnings) io.err(`svdd: warning: ${w}\n`);
      // The default directory is claimed (created) here, with millisecond resolution and a counter.
      outDir = built.out ?? claimDefaultOutDir('runs', `${cfg.dataset}-${cfg.normalClass}`);
    }
    const epochsOf = (phase: string): number => (phase === 'pretrain' ? cfg.aeEpochs : cfg.epochs);
    const progress = progressHooks(io.stderrStream, epochsOf);
    try {
      await runTraining(cfg, outDir, { log: (l) => io.out(`${l}\n`), hooks: progress }, { resume: resume !== undefined, checkpointEvery });
    } finally {
      progress.clear(); // an error line must not land after a half-drawn bar
    }
  },
});

const DATA_HELP = 'svdd data download <mnist|fashion-mnist|cifar10> --dir DIR [--base-url URL]\n  fetches the official files with checksum verification; resumable, atomic, each file capped at its known size\n'
  + '  --base-url URL   the folder holding the dataset\'s files on a mirror (default: $SVDD_DATA_MIRROR/<dataset>/, else the official host)\n';

const dataDownload = defineCommand({
  name: 'data download',
  synopsis: 'svdd data download <mnist|fashion-mnist|cifar10> --dir DIR',
  summary: 'fetch a dataset, checksums verified',
  usage: 'svdd data download <mnist|fashion-mnist|cifar10> --dir DIR [--base-url URL]',
  description: '  fetches the official files with checksum verification; resumable, atomic, each file capped at its known size',
  flags: {
    dir: { kind: 'string', arg: 'DIR', nonEmpty: true, required: true, help: 'where the dataset\'s files go' },
    'base-url': { kind: 'string', arg: 'URL', help: 'the folder holding the dataset\'s files on a mirror (default: $SVDD_DATA_MIRROR/<dataset>/, else the official host)' },
  },
  positionals: { min: 1, max: 1, what: `one dataset (${DATASET_NAMES.join(', ')})` },
  helpColumn: 19,
  run: async ({ values, positionals }, io) => {
    const name = positionals[0]!;
    if (!isDatasetName(name)) throw new UsageError(`unknown dataset '${name}' (expected ${DATASET_NAMES.join(', ')})`);
    const res = await downloadDataset(name, values.dir, { log: (l: string) => io.err(`${l}\n`), baseUrl: values['base-url'] });
    for (const f of res.files) io.out(`${f.outcome.padEnd(10)} ${f.name}\n`);
    io.out(`${name} is ready in ${res.dir} (use --data-dir ${res.dir})\n`);
  },
});

const data: CommandGroup = {
  name: 'data',
  synopsis: 'svdd data download <mnist|fashion-mnist|cifar10> --dir DIR',
  summary: 'fetch a dataset, checksums verified',
  help: DATA_HELP,
  subcommands: [dataDownload],
  bareError: 'expected: svdd data download <dataset> --dir DIR',
  unknown: () => 'expected: svdd data download <dataset> --dir DIR',
};

/** Every command `svdd` runs, in the order --help lists them. */
export const COMMANDS: readonly (Command | CommandGroup)[] = [train, test, predict, explainCli, report, study, data];

/** Where a command's output goes (tests capture it); defined with the command interface. */
export type { CliIo };

const USAGE = overviewText('svdd: Deep SVDD one-class anomaly detection (Ruff et al., ICML 2018) in TypeScript\n\nusage:', COMMANDS,
  "'svdd <command> --help' lists a command's flags.\n");

export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case '--version': case '-V': case 'version':
        io.out(`svdd-ts ${packageVersion()}\n`); return 0;
      case undefined: case '--help': case '-h': case 'help':
        io.out(USAGE); return cmd === undefined ? 1 : 0;
    }
    const c = COMMANDS.find((k) => k.name === cmd);
    if (!c) throw new UsageError(`unknown command '${cmd}' ('svdd --help' lists the commands)`);
    return 'subcommands' in c ? await invokeGroup(c, rest, io) : await invoke(c, rest, io);
  } catch (e) {
    // The CLI's own usage errors, and every error the library throws on purpose (SvddError: DataError, ModelError, RunError, DivergenceError, …).
    if (e instanceof UsageError || e instanceof SvddError || e instanceof SafetensorsError || e instanceof BackendError) {
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
