/**
 * The engine context (src/tensor/engine.ts): backend choice from the registry, withBackend,
 * tidy, and storage owned by the backend that placed it.
 */
import { expect } from 'chai';
import * as ag from '../src/autograd/index.ts';
import { BACKEND_NAMES, shutdownBackends, useBackend } from '../src/tensor/backends.ts';
import { backendChoices, type BackendFactory } from '../src/tensor/backend-registry.ts';
import { Engine, engine, tidy, withBackend } from '../src/tensor/engine.ts';
import { kernelProvider } from '../src/tensor/kernels/registry.ts';
import type { Backend } from '../src/tensor/kernels/types.ts';
import { allocArray, tensorFromArray } from '../src/tensor/tensor.ts';
import { wasmFeatures } from '../src/tensor/kernels/wasm/index.ts';

/** A backend with no kernels of its own (all fall back to ts) that places large float32 storage in arrays it records. */
function fakeFactory(name: string, priority: number, opts: { probes?: boolean; fails?: string; detail?: string } = {}) {
  const placed: Float32Array[] = [];
  const disposed: Backend[] = [];
  const factory: BackendFactory = {
    name, priority, description: `test backend ${name}`,
    probe: async () => opts.probes ?? true,
    async create(): Promise<Backend> {
      if (opts.fails) throw new Error(`${opts.fails}\nsecond line`);
      return {
        name, kernels: {}, ...(opts.detail !== undefined ? { detail: opts.detail } : {}),
        alloc: (dtype, length) => {
          if (dtype !== 'float32' || length < 1 << 14) return null;
          const a = new Float32Array(length);
          placed.push(a);
          return a;
        },
      };
    },
    dispose: async (b) => { disposed.push(b); },
  };
  return { factory, placed, disposed };
}

/** Captures what fn writes to stderr. */
async function stderrOf(fn: () => Promise<unknown>): Promise<string> {
  const write = process.stderr.write.bind(process.stderr);
  let text = '';
  process.stderr.write = ((chunk: string | Uint8Array): boolean => { text += String(chunk); return true; }) as typeof process.stderr.write;
  try { await fn(); } finally { process.stderr.write = write; }
  return text;
}

describe('engine context', () => {
  const savedEnv = { backend: process.env.SVDD_BACKEND, threads: process.env.SVDD_THREADS };
  beforeEach(() => { delete process.env.SVDD_BACKEND; delete process.env.SVDD_THREADS; });
  afterEach(() => {
    for (const [k, v] of [['SVDD_BACKEND', savedEnv.backend], ['SVDD_THREADS', savedEnv.threads]] as const) {
      if (v === undefined) delete process.env[k]; else process.env[k] = v;
    }
  });

  describe('backend registry', () => {
    it('the CLI\'s backend choices are the registered backends, after auto', () => {
      expect(BACKEND_NAMES).to.deep.equal(backendChoices());
      expect(BACKEND_NAMES).to.deep.equal(['auto', 'wasm', 'ts', 'gpujs']);
    });

    it('auto picks the highest priority among backends that probe, in any registration order', async () => {
      const low = fakeFactory('low', 1), high = fakeFactory('high', 5), absent = fakeFactory('absent', 9, { probes: false });
      const e = new Engine(() => [low.factory, absent.factory, high.factory]);
      expect(await e.use('auto', 1)).to.deep.equal({ name: 'high', threads: null, detail: null });
      expect(e.backend.name).to.equal('high');
    });

    it('auto reports a backend that probes but cannot start, uses the next, and does not retry it', async () => {
      let starts = 0;
      const broken = fakeFactory('broken', 5, { fails: 'no device' }), next = fakeFactory('next', 1);
      const create = broken.factory.create.bind(broken.factory);
      broken.factory.create = (s) => { starts++; return create(s); };
      const e = new Engine(() => [broken.factory, next.factory]);
      const said = await stderrOf(() => e.use('auto', 1));
      expect(said).to.equal('broken backend unavailable (no device); using next\n');
      expect(e.backend.name).to.equal('next');
      await stderrOf(() => e.use('auto', 1));
      expect(starts).to.equal(1);
      await e.use('next', 1);
      let error: Error | null = null;
      try { await e.use('broken', 1); } catch (err) { error = err as Error; }
      expect(error?.message).to.equal('no device\nsecond line');
    });

    it('the choice carries the backend\'s own account of how it runs (a run\'s log prints it)', async () => {
      const e = new Engine(() => [fakeFactory('plain', 1).factory, fakeFactory('told', 2, { detail: 'on the CPU' }).factory]);
      expect(await e.use('told', 1)).to.deep.equal({ name: 'told', threads: null, detail: 'on the CPU' });
      expect(await e.use('plain', 1)).to.deep.equal({ name: 'plain', threads: null, detail: null });
    });

    it('SVDD_BACKEND and unknown names are checked against the engine\'s backends', async () => {
      const a = fakeFactory('a', 1), b = fakeFactory('b', 2);
      const e = new Engine(() => [a.factory, b.factory]);
      process.env.SVDD_BACKEND = 'a';
      expect((await e.use('auto', 1)).name).to.equal('a');
      process.env.SVDD_BACKEND = 'wasm';
      let error: Error | null = null;
      try { await e.use('auto', 1); } catch (err) { error = err as Error; }
      expect(error?.message).to.equal("SVDD_BACKEND must be one of auto, a, b, got 'wasm'");
      delete process.env.SVDD_BACKEND;
      error = null;
      try { await e.use('c', 1); } catch (err) { error = err as Error; }
      expect(error?.message).to.equal("unknown backend 'c' (expected auto, a, b)");
    });
  });

  describe('storage owned by a backend', () => {
    it('records the owner of placed storage, and forgets its pooled blocks when it is disposed', async () => {
      const fake = fakeFactory('fake', 1);
      const e = new Engine(() => [fake.factory]);
      await e.use('fake', 1);
      const a = e.storage.alloc('float32', 1 << 14);
      expect(fake.placed).to.have.length(1);
      expect(e.storage.ownerOf(a)).to.equal(e.backend);
      expect(e.storage.key(a)).to.equal(a);
      e.storage.release(a);
      expect(e.storage.alloc('float32', 1 << 14)).to.equal(a);
      e.storage.release(a);
      const owner = e.backend;
      await e.dispose();
      expect(fake.disposed).to.deep.equal([owner]);
      expect(e.backend.name).to.equal('ts');
      const b = e.storage.alloc('float32', 1 << 14);
      expect(b).to.not.equal(a);
      expect(e.storage.ownerOf(b)).to.equal(null);
    });
  });

  describe('withBackend', () => {
    afterEach(async () => { await useBackend('ts'); });

    it('runs fn on the named backend and reactivates the previous one, also when fn throws', async () => {
      await useBackend('ts');
      const seen = await withBackend('ts', () => engine.backend.name);
      expect(seen).to.equal('ts');
      if (!wasmFeatures().simd) return;
      expect(await withBackend('wasm', () => kernelProvider('gemm', 'float32'), 1)).to.equal('wasm');
      expect(kernelProvider('gemm', 'float32')).to.equal('ts');
      let thrown: unknown = null;
      try { await withBackend('wasm', () => { throw new Error('inside'); }, 1); } catch (e) { thrown = e; }
      expect((thrown as Error).message).to.equal('inside');
      expect(engine.backend.name).to.equal('ts');
      await shutdownBackends();
    });

    it('hands fn the backend and threads it started, as use returns them', async function () {
      expect(await withBackend('ts', (chosen) => chosen)).to.deep.equal({ name: 'ts', threads: null, detail: null });
      if (!wasmFeatures().simd) this.skip();
      expect(await withBackend('wasm', (chosen) => chosen, 1)).to.deep.equal({ name: 'wasm', threads: 1, detail: null });
      await shutdownBackends();
    });

    it('a caller\'s instance replaced inside the scope (same backend, other threads) is started again with its own threads', async () => {
      const created: number[] = [];
      const factory: BackendFactory = {
        name: 'threaded', priority: 1, description: 'test backend with threads', usesThreads: true,
        settingsKey: (s) => String(s.threads),
        probe: async () => true,
        create: async (s) => { created.push(s.threads); return { name: 'threaded', kernels: {} }; },
        dispose: async () => {},
      };
      const e = new Engine(() => [factory]);
      await e.use('threaded', 4);
      const outer = e.backend;
      expect(await e.withBackend('threaded', (c) => c.threads, 2)).to.equal(2);
      expect(e.backend.name).to.equal('threaded');
      expect(e.backend).to.not.equal(outer);
      expect(e.threadsOf('threaded')).to.equal(4);
      expect(e.backendChosen).to.equal(true);
      expect(created).to.deep.equal([4, 2, 4]);
      await e.dispose();
    });

    it('a backend whose instances were shut down is not left active: the reference takes over', async function () {
      if (!wasmFeatures().simd) this.skip();
      await useBackend('wasm', 1);
      expect(kernelProvider('gemm', 'float32')).to.equal('wasm');
      await shutdownBackends();
      expect(kernelProvider('gemm', 'float32')).to.equal('ts');
      const y = ag.matmul(tensorFromArray(Float32Array.from([1, 2, 3, 4]), [2, 2]), tensorFromArray(Float32Array.from([1, 0, 0, 1]), [2, 2]));
      expect(Array.from(y.values())).to.deep.equal([1, 2, 3, 4]);
    });
  });

  describe('tidy', () => {
    const N = 1 << 15;

    it('hands back what was allocated inside, and keeps the storage of the tensors it returns', () => {
      let inside: Float32Array | null = null;
      const kept = tidy(() => {
        inside = allocArray('float32', N) as Float32Array;
        const out = allocArray('float32', N);
        out[0] = 7;
        return tensorFromArray(out, [N]);
      });
      const again = [allocArray('float32', N), allocArray('float32', N)];
      expect(again).to.include(inside);
      expect(again).to.not.include(kept.storage);
      expect(kept.storage[0]).to.equal(7);
    });

    it('a nested tidy passes what it keeps to the enclosing scope', () => {
      let innerKept: Float32Array | null = null;
      tidy(() => {
        const t = tidy(() => tensorFromArray(allocArray('float32', N), [N]));
        innerKept = t.storage as Float32Array;
      });
      const again = [allocArray('float32', N), allocArray('float32', N)];
      expect(again).to.include(innerKept);
    });

    it('keeps the tensors of a returned array or object, and releases everything when fn throws', () => {
      const { a, b } = tidy(() => ({ a: tensorFromArray(allocArray('float32', N), [N]), b: 3 }));
      expect(b).to.equal(3);
      const [c] = tidy(() => [tensorFromArray(allocArray('float32', N), [N])]);
      let inside: Float32Array | null = null;
      expect(() => tidy(() => { inside = allocArray('float32', N) as Float32Array; throw new Error('x'); })).to.throw('x');
      const again = [allocArray('float32', N), allocArray('float32', N), allocArray('float32', N)];
      expect(again).to.include(inside);
      expect(again).to.not.include(a.storage);
      expect(again).to.not.include(c!.storage);
    });
  });
});
