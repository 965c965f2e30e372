#!/usr/bin/env node
// The `svdd` command. The installed package runs its build (dist/cli/bin.js); a checkout's
// bin/svdd.js runs this file from the sources through tsx.
import { statSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from './main.ts';
import { newerSource } from './stale-build.ts';

// The build run inside a checkout (npx svdd, node dist/cli/bin.js) after a source changed would
// answer with old code: refuse, naming the newer source.
if (!import.meta.url.endsWith('.ts')) {
  const self = fileURLToPath(import.meta.url);
  const root = resolve(dirname(self), '../..');
  const newer = newerSource(root, statSync(self).mtimeMs);
  if (newer !== null) {
    process.stderr.write(`svdd: this build (dist/) is older than ${relative(root, newer)}; run npm run build, or node bin/svdd.js to run the sources\n`);
    process.exit(2);
  }
}

// A reader that goes away (svdd … | head) is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0); throw e; });
process.exitCode = await main(process.argv.slice(2));
