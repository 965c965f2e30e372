#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so every number the tool prints traces to readable source.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli/main.ts');
// A reader that goes away (svdd … | head) is not an error.
process.stdout.on('error', (e) => { if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0); throw e; });
process.exitCode = await main(process.argv.slice(2));
