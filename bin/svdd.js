#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so every number the tool prints traces to readable source.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
