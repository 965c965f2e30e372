/** The sbatch job-array script of a study: one array task per shard, all writing into one directory. */

export interface SlurmOptions {
  spec: string; name: string; out: string; shards: number; time: string; cpus: number; partition: string | null;
  /** Absolute path of bin/svdd.js. */
  svdd: string;
  dataDirs: [string, string][];
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export function slurmScript(o: SlurmOptions): string {
  const dataDirs = o.dataDirs.map(([d, p]) => ` --data-dir ${quote(`${d}=${p}`)}`).join('');
  return `#!/bin/bash
# svdd study ${o.name}: ${o.shards} array tasks; each runs its shard of the cells (from
# SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT) into one directory on a shared file system.
# Resubmitting the same script finishes what is left: done cells are skipped, per-cell locks keep
# two tasks off one cell, and a dead task's lock is taken over.
#SBATCH --job-name=svdd-${o.name}
#SBATCH --array=0-${o.shards - 1}
#SBATCH --cpus-per-task=${o.cpus}
#SBATCH --time=${o.time}
#SBATCH --output=${o.out}/slurm-%A_%a.out
${o.partition ? `#SBATCH --partition=${o.partition}\n` : ''}set -euo pipefail
mkdir -p ${quote(o.out)}
exec ${quote(process.execPath)} ${quote(o.svdd)} study run ${quote(o.spec)} --out ${quote(o.out)} --jobs 1 --threads "\${SLURM_CPUS_PER_TASK:-${o.cpus}}"${dataDirs}
`;
}
