/**
 * The command interface: every command parses and validates through one path (the same one-line
 * wording, exit 2, for an unknown flag, a missing value, a wrong type and an out-of-range value),
 * its --help lists every flag of its table, and its output goes through the injected IO only.
 */
import { expect } from 'chai';
import { COMMANDS, main, type CliIo } from '../src/cli/main.ts';
import type { Command } from '../src/cli/command.ts';

interface Captured { code: number; out: string; err: string; leaked: string }

/** Runs main with an injected IO; `leaked` is whatever reached process.stdout / stderr directly. */
async function run(argv: string[]): Promise<Captured> {
  let out = '', err = '', leaked = '';
  const o = process.stdout.write.bind(process.stdout), e = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => { leaked += String(s); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { leaked += String(s); return true; }) as typeof process.stderr.write;
  const io: CliIo = { out: (t) => { out += t; }, err: (t) => { err += t; }, stderrStream: { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream };
  try {
    return { code: await main(argv, io), out, err, leaked };
  } finally {
    process.stdout.write = o; process.stderr.write = e;
  }
}

const commands: Command[] = COMMANDS.flatMap((c) => ('subcommands' in c ? [...c.subcommands] : [c]));

describe('CLI: one command interface', () => {
  it('covers every command', () => {
    expect(commands.map((c) => c.name)).to.deep.equal(['train', 'test', 'predict', 'explain', 'report', 'study run', 'study status', 'study summarize', 'study slurm', 'study specs', 'data download']);
  });

  for (const c of commands) {
    const words = c.name.split(' ');
    it(`svdd ${c.name}: --help lists every flag; bad flags are one line, exit 2, in the common wording`, async () => {
      const help = await run([...words, '--help']);
      expect(help.code).to.equal(0);
      expect(help.leaked).to.equal('');
      for (const name of Object.keys(c.flags)) expect(help.out, name).to.contain(`--${name}`);

      const unknown = await run([...words, '--no-such-flag']);
      expect([unknown.code, unknown.err, unknown.leaked]).to.deep.equal([2, `svdd: unknown flag --no-such-flag for svdd ${c.name} (svdd ${c.name} --help lists its flags)\n`, '']);

      for (const [name, spec] of Object.entries(c.flags)) {
        if (spec.kind === 'boolean') continue;
        const missing = await run([...words, `--${name}`]);
        expect([missing.code, missing.err], name).to.deep.equal([2, `svdd: --${name} needs a value\n`]);
        if (spec.kind === 'int' || spec.kind === 'number') {
          const word = await run([...words, `--${name}`, 'many']);
          expect([word.code, word.err], name).to.deep.equal([2, `svdd: --${name}: expected a number, got 'many'\n`]);
          if (spec.min !== undefined) {
            const low = await run([...words, `--${name}=${spec.min - 1}`]);
            expect([low.code, low.err], name).to.deep.equal([2, `svdd: --${name}: must be ≥ ${spec.min}, got ${spec.min - 1}\n`]);
          }
        }
        if (typeof spec.kind === 'object') {
          const other = await run([...words, `--${name}`, 'no-such-choice']);
          expect([other.code, other.err], name).to.deep.equal([2, `svdd: --${name}: expected one of ${spec.kind.choices.join(', ')}, got 'no-such-choice'\n`]);
        }
      }
    });
  }
});
