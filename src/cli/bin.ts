#!/usr/bin/env node
// The `svdd` command. The installed package runs its build (dist/cli/bin.js); a checkout's
// bin/svdd.js runs this file from the sources through tsx.
import { main } from './main.ts';

// A reader that goes away (svdd … | head) is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0); throw e; });
process.exitCode = await main(process.argv.slice(2));
