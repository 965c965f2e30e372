/**
 * Whether a study runs faster as K cells at once with cores/K threads each (--jobs K) or one cell at a
 * time with every core: runs the same small grid both ways, prints cells per hour, and writes
 * bench/results/study-jobs-<time>.json. Needs an otherwise idle machine to mean anything.
 *
 *   npx tsx bench/study-jobs.ts [--dataset mnist|cifar10] [--cells 4] [--epochs 5] [--data-dir DIR]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { dataset: { type: 'string', default: 'mnist' }, cells: { type: 'string', default: '4' }, epochs: { type: 'string', default: '5' }, 'data-dir': { type: 'string' } } });
const dataset = values.dataset!, cells = Number(values.cells), epochs = Number(values.epochs);
const cores = os.availableParallelism();
const repo = resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(join(os.tmpdir(), 'study-jobs-'));
const spec = join(tmp, 'spec.json');
writeFileSync(spec, JSON.stringify({
  name: 'jobs-bench',
  groups: [{ dataset, classes: Array.from({ length: cells }, (_, i) => i), seeds: [0], protocol: { base: 'short', aeEpochs: epochs, epochs, aeMilestones: [], milestones: [] }, methods: [{ kind: 'one-class' }, { kind: 'hybrid', mu2: 1 }] }],
}));
const dataDir = values['data-dir'] ? ['--data-dir', `${dataset}=${values['data-dir']}`] : [];
const rows: { jobs: number; threads: number; seconds: number; cellsPerHour: number }[] = [];
for (const jobs of [1, cores]) {
  const threads = Math.max(1, Math.floor(cores / jobs));
  const out = join(tmp, `j${jobs}`);
  const t0 = performance.now();
  execFileSync(process.execPath, [join(repo, 'bin', 'svdd.js'), 'study', 'run', spec, '--out', out, '--jobs', String(jobs), '--threads', String(threads), ...dataDir], { stdio: 'ignore' });
  const seconds = (performance.now() - t0) / 1000;
  rows.push({ jobs, threads, seconds, cellsPerHour: (cells * 3600) / seconds });
  console.log(`--jobs ${jobs} --threads ${threads}: ${cells} cells (${dataset}, ${epochs}+${epochs} epochs, one-class + hybrid) in ${seconds.toFixed(1)} s = ${((cells * 3600) / seconds).toFixed(1)} cells/h`);
}
console.log(`--jobs ${cores} is ${(rows[0]!.seconds / rows[1]!.seconds).toFixed(2)}× the throughput of --jobs 1`);
mkdirSync(join(repo, 'bench', 'results'), { recursive: true });
const file = join(repo, 'bench', 'results', `study-jobs-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.json`);
writeFileSync(file, `${JSON.stringify({ dataset, cells, epochs, cores, loadavg: os.loadavg(), rows }, null, 2)}\n`);
console.log(`wrote ${file}`);
rmSync(tmp, { recursive: true, force: true });
