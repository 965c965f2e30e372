import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { newerSource } from '../src/cli/stale-build.ts';

describe('a build run from a checkout is refused when a source is newer (newerSource)', () => {
  let root = '';
  beforeEach(() => { root = mkdtempSync(join(os.tmpdir(), 'svdd-stale-')); });
  afterEach(() => { rmSync(root, { recursive: true, force: true }); });

  const source = (rel: string, seconds: number): string => {
    const path = join(root, 'src', rel);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, 'export {};\n');
    utimesSync(path, seconds, seconds);
    return path;
  };

  it('no src/ (an installed package): nothing is newer', () => {
    expect(newerSource(root, 0)).to.equal(null);
  });

  it('every source older than the build: nothing is newer', () => {
    source('a.ts', 1000);
    source('deep/er/b.ts', 1500);
    expect(newerSource(root, 2000 * 1000)).to.equal(null);
  });

  it('names the newest source edited after the build, however deep', () => {
    source('a.ts', 3000);
    const b = source('deep/er/b.ts', 4000);
    source('c.ts', 1000);
    source('notes.md', 9000);
    expect(newerSource(root, 2000 * 1000)).to.equal(b);
  });
});
