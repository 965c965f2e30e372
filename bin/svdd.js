#!/usr/bin/env node
// A checkout's launcher: runs the TypeScript sources in src/ through tsx (a devDependency), so what
// runs is always what is in src/ and never an old build. The installed package's `svdd` command is
// the built dist/cli/bin.js instead (package.json "bin"), which needs no tsx.
let register;
try {
  ({ register } = await import('tsx/esm/api'));
} catch (e) {
  if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
  console.error('svdd: bin/svdd.js runs the TypeScript sources through tsx, which is not installed; run npm ci (or npm run build, then node dist/cli/bin.js)');
  process.exit(2);
}
register();
await import('../src/cli/bin.ts');
