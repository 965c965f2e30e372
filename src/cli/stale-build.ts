import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The newest TypeScript source under `root`/src modified after `builtAt` (ms since the epoch), or
 * null when there is none or no src/ at all (an installed package ships only its build). A build
 * run from a checkout with a newer source would run old code as if it were the current one.
 */
export function newerSource(root: string, builtAt: number): string | null {
  const src = join(root, 'src');
  if (!existsSync(src)) return null;
  let newest: string | null = null;
  let newestTime = builtAt;
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) {
        const time = statSync(path).mtimeMs;
        if (time > newestTime) { newest = path; newestTime = time; }
      }
    }
  };
  walk(src);
  return newest;
}
