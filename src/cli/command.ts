/**
 * One command interface for `svdd`: every command (and every subcommand of `study` and `data`) is
 * a Command with a flag table. One parser reads argv against the table and checks each value by
 * type and range, so a bad flag is the same one line (exit 2) for every command; the --help text
 * is generated from the same table; run() gets the parsed values and the injectable IO.
 */
import { parseArgs } from 'node:util';
import { UsageError } from './usage-error.ts';
import { parseChoice, parseList, parseNumber } from './args.ts';

/** Where a command's output goes (tests capture it), and the environment it reads. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Progress lines are drawn here when it is a terminal. */
  stderrStream: NodeJS.WriteStream;
  /** The environment variables the command reads (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export const processIo: CliIo = { out: (t) => { process.stdout.write(t); }, err: (t) => { process.stderr.write(t); }, stderrStream: process.stderr };

/**
 * A flag's type: text, text repeatable (each occurrence kept), a switch, an integer or a number
 * (with min / max), a comma-separated list of non-negative integers, or one of fixed choices.
 */
export type FlagKind = 'string' | 'strings' | 'boolean' | 'int' | 'number' | 'list' | { readonly choices: readonly string[] };

export interface FlagSpec {
  readonly kind: FlagKind;
  /** Inclusive bounds of an int or number flag. */
  readonly min?: number;
  readonly max?: number;
  /** A string that must not be empty. */
  readonly nonEmpty?: boolean;
  /** The command cannot run without it. */
  readonly required?: boolean;
  /** The value when the flag is absent, written as on the command line (checked like a given value). */
  readonly default?: string;
  /** The placeholder after the flag in --help (DIR, FILE..., N). */
  readonly arg?: string;
  /** Help text; each '\n' starts a line aligned under the first. */
  readonly help: string;
  /** A heading printed above this flag in --help (a group of flags). */
  readonly section?: string;
}

export type FlagTable = Readonly<Record<string, FlagSpec>>;

type ValueOf<K extends FlagKind> =
  K extends 'string' ? string
    : K extends 'strings' ? string[]
      : K extends 'boolean' ? boolean
        : K extends 'int' | 'number' ? number
          : K extends 'list' ? number[]
            : K extends { readonly choices: readonly (infer C)[] } ? C
              : never;

/** The parsed flags: each flag's value by its kind; absent flags are undefined unless they have a default (switches: false). */
export type FlagValues<F extends FlagTable> = {
  -readonly [K in keyof F]: F[K] extends { kind: 'boolean' } ? boolean
    : F[K] extends { default: string } | { required: true } ? ValueOf<F[K]['kind']> : ValueOf<F[K]['kind']> | undefined;
};

export interface Parsed<F extends FlagTable> {
  values: FlagValues<F>;
  positionals: string[];
  /** The flags given on the command line (defaults not included). */
  given: ReadonlySet<string>;
  /** The arguments as given (a command that starts copies of itself passes them on). */
  argv: readonly string[];
}

export interface Command<F extends FlagTable = FlagTable> {
  /** The words that select it: 'predict', 'study run'. */
  readonly name: string;
  /** `svdd --help`'s line for it: the short form and what it does. */
  readonly synopsis: string;
  readonly summary: string;
  /** The usage line(s) at the top of --help. */
  readonly usage: string;
  /** What the command does, lines under the usage. */
  readonly description?: string;
  readonly flags: F;
  /** Positional arguments: how many (checked by the parser) and what they are, for the message. */
  readonly positionals?: { readonly min: number; readonly max: number; readonly what: string };
  /** Text after the flags in --help. */
  readonly notes?: string;
  /** Column where flag help starts in --help. */
  readonly helpColumn?: number;
  run(parsed: Parsed<F>, io: CliIo): Promise<number | void> | number | void;
}

/** Declares a command, keeping its flag table's literal types for run(). */
export function defineCommand<const F extends FlagTable>(c: Command<F>): Command<F> {
  return c;
}

/** A group of subcommands (`svdd study …`, `svdd data …`). */
export interface CommandGroup {
  readonly name: string;
  readonly synopsis: string;
  readonly summary: string;
  /** --help of the group. */
  readonly help: string;
  readonly subcommands: readonly Command[];
  /** The bare group word with no subcommand prints the help, then this one-line error (exit 2); without it, exits 2 quietly. */
  readonly bareError?: string;
  /** The message for an unknown subcommand. */
  unknown(sub: string): string;
}

const flagLabel = (name: string, spec: FlagSpec): string => `--${name}${spec.kind === 'boolean' ? '' : ` ${spec.arg ?? 'V'}`}`;

/** --help of a command, generated from its table. */
export function helpText(c: Command): string {
  const column = c.helpColumn ?? 20;
  const lines: string[] = [c.usage.replace(/\n$/, '')];
  if (c.description) lines.push(...c.description.replace(/\n$/, '').split('\n'));
  const entries = Object.entries(c.flags);
  if (entries.length > 0) lines.push('');
  for (const [name, spec] of entries) {
    if (spec.section !== undefined) {
      if (lines.at(-1) !== '') lines.push('');
      if (spec.section !== '') lines.push(`  ${spec.section}`);
    }
    const label = `  ${flagLabel(name, spec)}`;
    const [first, ...rest] = spec.help.split('\n');
    lines.push(label.length < column ? `${label.padEnd(column)}${first}` : `${label}  ${first}`);
    for (const l of rest) lines.push(`${' '.repeat(column)}${l}`);
  }
  if (c.notes) lines.push('', ...c.notes.replace(/\n$/, '').split('\n'));
  return `${lines.join('\n')}\n`;
}

/** One flag's text value, checked and converted by its kind; every bad value is one UsageError. */
function convert(name: string, spec: FlagSpec, v: string): unknown {
  const flag = `--${name}`;
  const k = spec.kind;
  if (k === 'int' || k === 'number') return parseNumber(flag, v, { integer: k === 'int', min: spec.min, max: spec.max });
  if (k === 'list') return parseList(flag, v);
  if (k === 'string' || k === 'strings') {
    if (spec.nonEmpty && v === '') throw new UsageError(`${flag}: expected ${spec.arg ?? 'a value'}, got ''`);
    return v;
  }
  if (k === 'boolean') return v;
  return parseChoice(flag, v, k.choices);
}

/**
 * Parses argv against a command's table: unknown flags, missing values, wrong types and values
 * out of range are each one UsageError in the same wording for every command.
 */
export function parseCommand<F extends FlagTable>(c: Command<F>, argv: string[]): Parsed<F> | 'help' {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = { help: { type: 'boolean' } };
  for (const [name, spec] of Object.entries(c.flags)) {
    options[name] = { type: spec.kind === 'boolean' ? 'boolean' : 'string', ...(spec.kind === 'strings' ? { multiple: true } : {}) };
  }
  let raw;
  try {
    raw = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    // node's own wording names neither the command nor where its flags are listed.
    const code = (e as { code?: string }).code;
    const flag = /'(--?[^' <]+)/.exec((e as Error).message)?.[1];
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && flag) throw new UsageError(`unknown flag ${flag} for svdd ${c.name} (svdd ${c.name} --help lists its flags)`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && flag) throw new UsageError(`${flag} needs a value`);
    throw new UsageError((e as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
  if (raw.values.help === true) return 'help';
  const values: Record<string, unknown> = {};
  const given = new Set<string>();
  for (const [name, spec] of Object.entries(c.flags)) {
    const v = (raw.values as Record<string, string | boolean | string[] | undefined>)[name];
    if (v !== undefined) given.add(name);
    if (spec.kind === 'boolean') { values[name] = v === true; continue; }
    if (v === undefined) { values[name] = spec.default === undefined ? undefined : convert(name, spec, spec.default); continue; }
    values[name] = Array.isArray(v) ? v.map((s) => convert(name, spec, s)) : convert(name, spec, String(v));
  }
  // Required flags after the given values: a bad value is named before a missing flag.
  for (const [name, spec] of Object.entries(c.flags)) {
    if (spec.required && !given.has(name)) throw new UsageError(`svdd ${c.name}: --${name} ${spec.arg ?? 'V'} is required`);
  }
  const positionals = raw.positionals;
  const p = c.positionals ?? { min: 0, max: 0, what: 'no arguments' };
  if (positionals.length < p.min || positionals.length > p.max) {
    throw new UsageError(p.max === 0
      ? `svdd ${c.name}: unexpected argument '${positionals[0]}'`
      : `svdd ${c.name}: expected ${p.what}, got ${positionals.length}`);
  }
  return { values: values as FlagValues<F>, positionals, given, argv };
}

/** Parses and runs a command; --help prints its help. Errors propagate (main words them). */
export async function invoke<F extends FlagTable>(c: Command<F>, argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(c, argv);
  if (parsed === 'help') { io.out(helpText(c)); return 0; }
  return (await c.run(parsed, io)) ?? 0;
}

/** `svdd --help`: one line per command, from each command's synopsis and summary. */
export function overviewText(header: string, commands: readonly (Command | CommandGroup)[], footer: string): string {
  const lines = commands.map((c) => {
    const left = `  ${c.synopsis}`;
    return left.length < 52 ? `${left.padEnd(52)}${c.summary}` : `${left}\n${' '.repeat(52)}${c.summary}`;
  });
  return `${header}\n${lines.join('\n')}\n  svdd --version\n\n${footer}`;
}

/** Runs `group sub …`: the bare group prints its help; an unknown subcommand is one UsageError. */
export async function invokeGroup(g: CommandGroup, argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.out(g.help);
    if (sub !== undefined) return 0;
    if (g.bareError !== undefined) throw new UsageError(g.bareError);
    return 2;
  }
  const c = g.subcommands.find((s) => s.name === `${g.name} ${sub}`);
  if (!c) throw new UsageError(g.unknown(sub));
  return invoke(c, rest, io);
}
