/**
 * Fault suite of issue 11: SIGKILL at random points. `svdd train` (with checkpoints), `svdd test`,
 * `svdd explain --out` and `svdd report` run as child processes and are killed after a delay drawn
 * (fast-check) over the whole duration of an uninterrupted run, measured first: uniformly over
 * the part after Node and the CLI have loaded (`svdd --version`, also measured; before that no file
 * can be touched), with a margin on both sides (some kills land in the start-up, some after the
 * end). Then:
 *
 * - every output is absent or complete: each file present is byte-identical to the uninterrupted
 *   run's file of that name (so its JSON parses, its safetensors load, its PNG decodes), except
 *   log.txt (a log, appended line by line), timings.json (wall-clock times; it must parse) and
 *   checkpoint.safetensors (it must load as a checkpoint);
 * - a temporary `*.tmp-<pid>` is left only by the killed process and never under a final name;
 * - without results.json the run is incomplete, and `svdd predict`, `test`, `explain` and `report`
 *   refuse it in one line, writing nothing; explain.json (report.html) exists only with every other
 *   file of the explanation (report), and report shows an explanation's images only with it;
 * - a rerun into the same place succeeds, replaces what the killed one left (temporaries included)
 *   and gives the uninterrupted outputs; `svdd train --resume` from a checkpoint gives a results.json
 *   byte-identical to the uninterrupted run's, also when that recovery was itself killed.
 *
 * `npm test`: KILLS_PER_COMMAND kills of each command with a fixed seed. `npm run fuzz`:
 * SVDD_KILL_RUNS kills of each, with a fresh seed (printed; SVDD_FUZZ_SEED replays one).
 */
import fc from 'fast-check';
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCheckpoint } from '../src/svdd/checkpoint.ts';
import { errorLines, mnistPng, runCli, type CliRun } from './cli-run.ts';

const KILLS_PER_COMMAND = Number(process.env.SVDD_KILL_RUNS ?? 3);
const LONG = process.env.SVDD_KILL_RUNS !== undefined;
const SEED = process.env.SVDD_FUZZ_SEED !== undefined ? Number(process.env.SVDD_FUZZ_SEED) : LONG ? Date.now() % 2 ** 31 : 20261202;
/** Delays are drawn from start-up + [EARLY, LATE] × (duration − start-up). */
const EARLY = -0.05, LATE = 1.05;
/** Durations drift with the machine's load: a long campaign times each command again every this many kills. */
const REMEASURE_EVERY = LONG ? 5 : Infinity;
type Command = 'train' | 'test' | 'explain' | 'report';

const SVDD_BIN = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'bin', 'svdd.js');
const TRAIN = ['--subset', '200', '--test-subset', '300', '--ae-epochs', '2', '--epochs', '2', '--threads', '1', '--checkpoint-every', '1'];
const EXPLAIN = ['--top-anomalies', '2', '--test-subset', '300', '--method', 'gradcam,ig', '--steps', '8', '--evaluate', '--curve-steps', '5', '--random-orders', '1'];
const TMP = /\.tmp-(\d+)$/;

interface Killed { pid: number; signal: NodeJS.Signals | null; code: number | null; err: string }

/** Runs `svdd …` as a child process; SIGKILL after `killAfterMs` (never when undefined). */
function svdd(args: string[], killAfterMs?: number): Promise<Killed> {
  const child = spawn(process.execPath, [SVDD_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const timer = killAfterMs === undefined ? null : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => { if (timer) clearTimeout(timer); resolve({ pid: child.pid!, signal, code, err }); });
  });
}

async function timed(args: string[]): Promise<number> {
  const t0 = performance.now();
  const r = await svdd(args);
  if (r.code !== 0) throw new Error(`svdd ${args.join(' ')}: exit ${r.code}: ${r.err}`);
  return performance.now() - t0;
}

/** Every file under `dir`, as paths relative to it. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => statSync(join(dir, f)).isFile()).sort();
}

function expectOneLine(r: CliRun, pattern: RegExp): void {
  if (r.threw) throw new Error(`escaped exception (a stack trace for a user): ${r.threw.stack}`);
  expect(r.code, r.err).to.equal(2);
  const lines = errorLines(r);
  expect(lines, r.err).to.have.length(1);
  expect(lines[0]).to.match(pattern);
}

function expectOk(r: CliRun): void {
  if (r.threw) throw r.threw;
  expect(r.code, r.err).to.equal(0);
}

/** Where the kills landed, for the printed summary. */
const outcomes = new Map<string, number>();
const tally = (what: string): void => { outcomes.set(what, (outcomes.get(what) ?? 0) + 1); };

describe('fault suite: SIGKILL at random points (every output absent or complete; reruns and --resume recover)', function () {
  this.timeout(LONG ? 0 : 300_000);
  let tmp = '', ref = '', refTest = '', refExplain = '', refReport = '', png = '';
  const ms = { startup: 0, train: 0, test: 0, explain: 0, report: 0 };
  /** The kill delay for a point `fraction` of `command`'s run. */
  const delay = (command: Command, fraction: number): number => Math.max(0, ms.startup + fraction * (ms[command] - ms.startup));
  let n = 0;
  const fresh = (what: string): string => join(tmp, `${what}-${n++}`);
  const killsOf: Record<Command, number> = { train: 0, test: 0, explain: 0, report: 0 };
  const measured: Record<Command, number[]> = { train: [], test: [], explain: [], report: [] };

  /** Times an uninterrupted `command` (into a scratch place) and the start-up again, every REMEASURE_EVERY-th kill. */
  async function remeasure(command: Command): Promise<void> {
    if (++killsOf[command] % REMEASURE_EVERY !== 0) return;
    ms.startup = await timed(['--version']);
    const scratch = fresh(`timing-${command}`);
    if (command === 'report') cpSync(ref, scratch, { recursive: true });
    ms[command] = await timed({
      train: ['train', ...TRAIN, '--out', scratch], test: ['test', '--model', ref, '--threads', '1', '--out', `${scratch}.json`],
      explain: ['explain', '--model', ref, ...EXPLAIN, '--out', scratch], report: ['report', scratch, '--backend', 'wasm'],
    }[command]);
    measured[command].push(Math.round(ms[command]));
    rmSync(scratch, { recursive: true, force: true });
  }

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'svdd-kill-'));
    ms.startup = await timed(['--version']);
    ref = join(tmp, 'ref');
    ms.train = await timed(['train', ...TRAIN, '--out', ref]);
    refTest = join(tmp, 'ref-test.json');
    ms.test = await timed(['test', '--model', ref, '--threads', '1', '--out', refTest]);
    refExplain = join(tmp, 'ref-explain');
    ms.explain = await timed(['explain', '--model', ref, ...EXPLAIN, '--out', refExplain]);
    refReport = join(tmp, 'ref-report');
    cpSync(ref, refReport, { recursive: true });
    ms.report = await timed(['report', refReport, '--backend', 'wasm']);
    png = join(tmp, 'digit.png');
    mnistPng(png, 3);
  });
  after(() => {
    if (LONG || process.env.SVDD_FUZZ_REPORT) {
      console.log(`\n      seed ${SEED}, ${KILLS_PER_COMMAND} kills per command; uninterrupted durations (ms): ${JSON.stringify(Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, Math.round(v)])))}`);
      if (LONG) console.log(`      durations timed again (ms): ${JSON.stringify(measured)}`);
      console.log(`      outcomes: ${[...outcomes].sort().map(([k, v]) => `${k} ${v}`).join(', ')}`);
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  /** Each file under `dir` is the reference's file of that name, or a temporary of the killed process. */
  function expectAbsentOrComplete(dir: string, reference: string, killed: Killed | Killed[], special: Record<string, (path: string) => void> = {}): string[] {
    const pids = (Array.isArray(killed) ? killed : [killed]).map((k) => k.pid);
    const leftovers: string[] = [];
    for (const f of filesUnder(dir)) {
      const tmpOf = TMP.exec(f);
      if (tmpOf) {
        expect(pids, `${f}: a temporary of another process`).to.include(Number(tmpOf[1]));
        leftovers.push(f);
        continue;
      }
      const name = f.split('/').pop()!;
      if (special[name]) { special[name]!(join(dir, f)); continue; }
      expect(existsSync(join(reference, f)), `${f}: not an output of the uninterrupted run`).to.equal(true);
      expect(readFileSync(join(dir, f)).equals(readFileSync(join(reference, f))), `${relative(tmp, join(dir, f))} differs from the uninterrupted run's`).to.equal(true);
    }
    return leftovers;
  }

  const trainSpecial = {
    '.svdd-lock': () => { /* the killed process's lock: the next run takes it over */ },
    'log.txt': () => { /* a log, appended line by line */ },
    'timings.json': (p: string) => { expect(() => JSON.parse(readFileSync(p, 'utf8')), p).not.to.throw(); },
    'checkpoint.safetensors': (p: string) => { expect(() => readCheckpoint(join(p, '..')), p).not.to.throw(); },
  };

  /** The recovery of an incomplete run: --resume from its checkpoint, else a rerun into the same --out. */
  const recovery = (out: string): string[] => (existsSync(join(out, 'checkpoint.safetensors')) ? ['train', '--resume', out] : ['train', ...TRAIN, '--out', out]);

  /** Kills a run at `fraction`, and its recovery too at `again` (when not null), then checks and recovers. */
  async function killTrain([fraction, again]: [number, number | null]): Promise<void> {
    await remeasure('train');
    const out = fresh('train');
    const killed = [await svdd(['train', ...TRAIN, '--out', out], delay('train', fraction))];
    const state = (): string => (existsSync(join(out, 'results.json')) ? 'complete' : existsSync(join(out, 'checkpoint.safetensors')) ? 'checkpoint'
      : existsSync(join(out, 'config.json')) ? 'started' : 'nothing');
    let leftovers = expectAbsentOrComplete(out, ref, killed, trainSpecial);
    tally(`train:${state()}${leftovers.length ? '+tmp' : ''}`);
    if (again !== null && state() !== 'complete') {
      // A recovery killed in turn (a resume that is itself interrupted) must leave a run that recovers.
      killed.push(await svdd(recovery(out), delay('train', again)));
      leftovers = expectAbsentOrComplete(out, ref, killed, trainSpecial);
      tally(`train, recovery killed:${state()}${leftovers.length ? '+tmp' : ''}`);
    }
    const complete = existsSync(join(out, 'results.json'));
    if (complete) {
      // results.json is written last: everything else of the run is there.
      for (const f of filesUnder(ref)) if (f !== 'log.txt') expect(existsSync(join(out, f)), f).to.equal(true);
    } else if (existsSync(join(out, 'model.json')) || existsSync(join(out, 'config.json'))) {
      expectOneLine(await runCli(['predict', '--model', out, '--input', png, '--threads', '1']), /incomplete|no complete/);
      expectOneLine(await runCli(['test', '--model', out, '--threads', '1']), /incomplete|no complete/);
      expectOneLine(await runCli(['explain', '--model', out, '--index', '0', '--out', join(out, 'explain')]), /incomplete|no complete/);
      expectOneLine(await runCli(['report', out, '--no-latent']), /no results\.json/);
      expect(existsSync(join(out, 'explain')) || existsSync(join(out, 'report.html')), 'written by a refused command').to.equal(false);
    }
    if (!complete) {
      expectOk(await runCli(recovery(out)));
      expect(readFileSync(join(out, 'results.json')).equals(readFileSync(join(ref, 'results.json'))), 'results.json after the rerun / --resume').to.equal(true);
      expect(filesUnder(out).filter((f) => TMP.test(f) || f === '.svdd-lock' || f === 'checkpoint.safetensors')).to.deep.equal([]);
      expectAbsentOrComplete(out, ref, killed, trainSpecial);
    }
  }

  async function killTest(fraction: number): Promise<void> {
    await remeasure('test');
    const dir = fresh('test');
    const out = join(dir, 'scores.json');
    cpSync(ref, dir, { recursive: true });
    const killed = await svdd(['test', '--model', dir, '--threads', '1', '--out', out], delay('test', fraction));
    const leftovers = expectAbsentOrComplete(dir, ref, killed, { 'scores.json': (p) => { expect(readFileSync(p).equals(readFileSync(refTest)), p).to.equal(true); } });
    tally(`test:${existsSync(out) ? 'complete' : 'absent'}${leftovers.length ? '+tmp' : ''}`);
    expectOk(await runCli(['test', '--model', dir, '--threads', '1', '--out', out]));
    expect(readFileSync(out).equals(readFileSync(refTest))).to.equal(true);
  }

  async function killExplain(fraction: number): Promise<void> {
    await remeasure('explain');
    const out = fresh('explain');
    const killed = await svdd(['explain', '--model', ref, ...EXPLAIN, '--out', out], delay('explain', fraction));
    const leftovers = expectAbsentOrComplete(out, refExplain, killed);
    const complete = existsSync(join(out, 'explain.json'));
    tally(`explain:${complete ? 'complete' : existsSync(out) ? 'partial' : 'nothing'}${leftovers.length ? '+tmp' : ''}`);
    // explain.json is written last: with it, every file of the explanation is there.
    if (complete) expect(filesUnder(out).filter((f) => !TMP.test(f))).to.deep.equal(filesUnder(refExplain));
    expectOk(await runCli(['explain', '--model', ref, ...EXPLAIN, '--out', out]));
    expect(filesUnder(out), 'after a rerun into the same --out').to.deep.equal(filesUnder(refExplain));
    expectAbsentOrComplete(out, refExplain, killed);
  }

  /** report.html names its directory and the time it was made: both are set aside to compare pages. */
  const page = (path: string, dir: string): string => readFileSync(path, 'utf8').split(dir).join('DIR').replace(/generated [0-9-]+ [0-9:]+ UTC/, 'generated T');

  async function killReport(fraction: number): Promise<void> {
    await remeasure('report');
    const dir = fresh('report');
    cpSync(ref, dir, { recursive: true });
    const killed = await svdd(['report', dir, '--backend', 'wasm'], delay('report', fraction));
    const reportHtml = (p: string): void => { expect(page(p, dir)).to.equal(page(join(refReport, 'report.html'), refReport)); };
    const leftovers = expectAbsentOrComplete(dir, refReport, killed, { 'report.html': reportHtml });
    const complete = existsSync(join(dir, 'report.html'));
    tally(`report:${complete ? 'complete' : existsSync(join(dir, 'plots')) ? 'partial' : 'nothing'}${leftovers.length ? '+tmp' : ''}`);
    // The page is written last: with it, every plot is there.
    if (complete) expect(filesUnder(dir).filter((f) => !TMP.test(f))).to.deep.equal(filesUnder(refReport));
    expectOk(await runCli(['report', dir, '--backend', 'wasm']));
    expect(filesUnder(dir), 'after a rerun').to.deep.equal(filesUnder(refReport));
    expectAbsentOrComplete(dir, refReport, killed, { 'report.html': reportHtml });
  }

  it('a rerun of explain --out or report removes the temporaries a killed one left (a live writer\'s are kept)', async () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const out = fresh('explain-leftovers');
    mkdirSync(out);
    writeFileSync(join(out, `explain.json.tmp-${dead}`), '{"trunc');
    writeFileSync(join(out, `figure_top_anomalies.png.tmp-1`), 'a live writer (pid 1, always running)');
    expectOk(await runCli(['explain', '--model', ref, ...EXPLAIN, '--out', out]));
    expect(filesUnder(out)).to.deep.equal([...filesUnder(refExplain), `figure_top_anomalies.png.tmp-1`].sort());
    const dir = fresh('report-leftovers');
    cpSync(ref, dir, { recursive: true });
    mkdirSync(join(dir, 'plots'));
    writeFileSync(join(dir, 'plots', `roc.svg.tmp-${dead}`), '<svg');
    writeFileSync(join(dir, `report.html.tmp-${dead}`), '<html');
    writeFileSync(join(dir, `test_results.json.tmp-${dead}`), '{');
    expectOk(await runCli(['report', dir, '--backend', 'wasm']));
    expect(filesUnder(dir)).to.deep.equal(filesUnder(refReport));
  });

  it('report shows the figures of a finished explanation only: an explain killed before explain.json (its last file) is not shown', async () => {
    const dir = fresh('report-explain');
    cpSync(ref, dir, { recursive: true });
    const figure = readFileSync(join(refExplain, 'figure_top_anomalies.png'));
    const shown = (): boolean => readFileSync(join(dir, 'report.html'), 'utf8').includes(figure.toString('base64'));
    // What an explain killed after its figures and before explain.json leaves in DIR/explain.
    cpSync(refExplain, join(dir, 'explain'), { recursive: true });
    rmSync(join(dir, 'explain', 'explain.json'));
    expectOk(await runCli(['report', dir, '--no-latent']));
    expect(shown(), 'the figure of an interrupted explanation').to.equal(false);
    cpSync(join(refExplain, 'explain.json'), join(dir, 'explain', 'explain.json'));
    expectOk(await runCli(['report', dir, '--no-latent']));
    expect(shown(), 'the figure of a finished explanation').to.equal(true);
  });

  // Uniform over the run (fast-check's default bias would put most kills near 0: in Node's start-up).
  const fraction = fc.noBias(fc.integer({ min: Math.round(EARLY * 1000), max: Math.round(LATE * 1000) })).map((k) => k / 1000);
  const property = (kill: (fraction: number) => Promise<void>) => fc.asyncProperty(fraction, kill);
  const commands: [string, fc.IAsyncProperty<[number]> | fc.IAsyncProperty<[[number, number | null]]>][] = [
    ['train (and, in half of the runs, its recovery)', fc.asyncProperty(fc.tuple(fraction, fc.option(fraction, { freq: 2, nil: null })), killTrain)],
    ['test', property(killTest)], ['explain --out', property(killExplain)], ['report', property(killReport)],
  ];
  for (const [name, prop] of commands) {
    it(`svdd ${name}: ${KILLS_PER_COMMAND} kills at random points of its run`, async () => {
      await fc.assert(prop as fc.IAsyncProperty<unknown[]>, { numRuns: KILLS_PER_COMMAND, seed: SEED, endOnFailure: true });
    });
  }
});
