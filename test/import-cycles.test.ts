/**
 * No module of src/ imports itself back through a chain of run-time imports (type-only imports
 * are erased, so they cannot form a cycle at run time). A cycle makes evaluation order matter:
 * a module can run before a binding it imports is initialised.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Every cycle of run-time relative imports among the .ts files under root, as 'a -> b -> a'. */
function importCycles(root: string): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p); else if (p.endsWith('.ts')) files.push(p);
    }
  };
  walk(root);
  const edges = new Map<string, string[]>();
  for (const f of files) {
    const src = fs.readFileSync(f, 'utf8');
    const deps = [...src.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+'(\.[^']+)'/gms)]
      .map((m) => path.normalize(path.join(path.dirname(f), m[1]!)));
    edges.set(f, deps);
  }
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const d of edges.get(f) ?? []) {
      if (state.get(d) === 'open') cycles.push([...stack.slice(stack.indexOf(d)), d].map((p) => path.relative(root, p)).join(' -> '));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of files) if (!state.has(f)) visit(f);
  return cycles;
}

describe('import graph', () => {
  it('src/ has no run-time import cycle', () => {
    expect(importCycles(new URL('../src', import.meta.url).pathname)).to.deep.equal([]);
  });

  it('finds a cycle, and ignores type-only imports', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svdd-cycles-'));
    try {
      fs.writeFileSync(path.join(dir, 'a.ts'), "import { b } from './b.ts';\nimport type { C } from './c.ts';\nexport const a = 1;\n");
      fs.writeFileSync(path.join(dir, 'b.ts'), "import {\n  a,\n} from './a.ts';\nexport const b = a;\n");
      fs.writeFileSync(path.join(dir, 'c.ts'), "import { a } from './a.ts';\nexport type C = typeof a;\n");
      expect(importCycles(dir)).to.deep.equal(['a.ts -> b.ts -> a.ts']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
