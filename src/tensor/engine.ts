/**
 * The engine context: which backend runs the kernels, the backend instances it started, and the
 * tensor storage (pool, backend-owned blocks, tidy scopes). Every op runs on the default engine,
 * `engine`; tests and programs switch its backend for a stretch of code with `withBackend`, and
 * free temporary storage with `tidy`.
 *
 * Storage belongs to a backend: an array a backend placed in its own memory (Backend.alloc) is
 * recorded with its owner, kernels of that backend use it in place, and when the backend is
 * disposed the engine forgets its pooled blocks. A device backend would keep its tensors the same
 * way, behind host arrays it owns.
 */
import {
  BackendError, backendFactories, requestedBackend, resolveWasmThreads, type BackendFactory, type BackendSettings,
} from './backend-registry.ts';
import './builtin-backends.ts';
import type { Backend, DType, KernelName, KernelSet } from './kernels/types.ts';
import { tsBackend, tsKernels } from './kernels/ts/index.ts';
import { StoragePool } from './storage.ts';

/** A backend instance the engine started, with the settings key it was started for. */
interface Instance { readonly factory: BackendFactory; readonly backend: Backend; readonly key: string; readonly settings: BackendSettings }

/** What `use` chose: the backend's name, and its worker threads when it runs on threads (wasm). */
export interface BackendChoice {
  readonly name: string; readonly threads: number | null;
  /** The backend's own account of how it runs here (Backend.detail), or null. */
  readonly detail: string | null;
}

export class Engine {
  /**
   * backends: the kinds of backend this engine may start (default: every registered one, read
   * when needed); tests pass their own.
   */
  constructor(private readonly backends: () => readonly BackendFactory[] = backendFactories) {}

  readonly storage = new StoragePool();
  private active: Backend = tsBackend;
  /**
   * Whether the program chose the active backend (use, setBackend, or a withBackend scope); false
   * on a new or disposed engine, whose reference backend is a default nobody asked for.
   */
  private chosen = false;
  /** Backends that `setBackend(name)` activates: started by `use`, or handed in with `register`. */
  private readonly registered = new Map<string, Backend>([['ts', tsBackend]]);
  /** Instances this engine started (and disposes), by backend name. */
  private readonly instances = new Map<string, Instance>();
  /**
   * Instances shut down because the same backend was asked for with other settings (wasm with
   * other threads), with what restarts them: a withBackend scope that replaced the caller's
   * instance starts it again on the way out.
   */
  private readonly replaced = new WeakMap<Backend, Instance>();
  /** Why a backend could not start, so that `auto` does not retry (a worker start) on every call. */
  private readonly failures = new Map<string, Error>();
  /** The active backend's kernels merged with the reference's, per dtype. */
  private resolved: Partial<Record<DType, KernelSet>> = {};

  get backend(): Backend { return this.active; }

  /** Whether the program chose the active backend (see DeepSVDD's backend option, which inherits a chosen one). */
  get backendChosen(): boolean { return this.chosen; }

  /** Makes an instance created elsewhere available to setBackend under its name (it stays the caller's to dispose). */
  register(backend: Backend): void {
    this.registered.set(backend.name, backend);
    if (this.active.name === backend.name) this.resolved = {};
  }

  /** Registered backend names (those setBackend accepts). */
  registeredNames(): string[] { return [...this.registered.keys()]; }

  /** Activates a registered backend by name. */
  setBackend(name: string): Backend {
    const b = this.registered.get(name);
    if (!b) throw new Error(`unknown backend '${name}' (available: ${this.registeredNames().join(', ')})`);
    this.activate(b);
    this.chosen = true;
    return b;
  }

  private activate(b: Backend): void {
    this.active = b;
    this.storage.placeIn(b);
    this.resolved = {};
  }

  /**
   * Starts (or reuses) and activates a backend: a registered name, or 'auto' (SVDD_BACKEND, else
   * the backend of highest priority whose probe says yes; one that fails to start is reported on
   * stderr and the next is used). threads: worker threads for a threaded backend (default
   * SVDD_THREADS, else one per core).
   */
  async use(name: string, threads: number | null = null): Promise<BackendChoice> {
    const factories = this.backends();
    let chosen = requestedBackend(name, ['auto', ...factories.map((f) => f.name)]);
    const settings: BackendSettings = { threads: resolveWasmThreads(threads) };
    if (chosen === 'auto') chosen = await this.pickAuto(factories, settings);
    const factory = factories.find((f) => f.name === chosen)!;
    this.activate(await this.start(factory, settings));
    this.chosen = true;
    return { name: this.active.name, threads: factory.usesThreads ? settings.threads : null, detail: this.active.detail ?? null };
  }

  private async pickAuto(factories: readonly BackendFactory[], settings: BackendSettings): Promise<string> {
    const usable: BackendFactory[] = [];
    for (const f of factories) if (await f.probe()) usable.push(f);
    usable.sort((a, b) => b.priority - a.priority);
    if (usable.length === 0) throw new BackendError('no backend can run here');
    for (let i = 0; i < usable.length - 1; i++) {
      const f = usable[i]!;
      try {
        await this.start(f, settings);
        return f.name;
      } catch (e) {
        // A backend that probed but cannot run a kernel must not stop the run: say so, use the next.
        process.stderr.write(`${f.name} backend unavailable (${(e as Error).message.split('\n')[0]}); using ${usable[i + 1]!.name}\n`);
      }
    }
    return usable[usable.length - 1]!.name;
  }

  private async start(factory: BackendFactory, settings: BackendSettings): Promise<Backend> {
    const key = factory.settingsKey?.(settings) ?? '';
    const had = this.instances.get(factory.name);
    if (had && had.key === key) return had.backend;
    const failed = this.failures.get(`${factory.name}/${key}`);
    if (failed) throw failed;
    if (had) {
      this.replaced.set(had.backend, had);
      await this.retire(factory, had.backend);
    }
    let backend: Backend;
    try {
      backend = await factory.create(settings);
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      this.failures.set(`${factory.name}/${key}`, error);
      throw error;
    }
    this.instances.set(factory.name, { factory, backend, key, settings });
    this.registered.set(factory.name, backend);
    return backend;
  }

  /** Disposes an instance this engine started; the reference takes over if it was active. */
  private async retire(factory: BackendFactory, backend: Backend): Promise<void> {
    this.instances.delete(factory.name);
    if (this.registered.get(factory.name) === backend) this.registered.delete(factory.name);
    if (this.active === backend) this.activate(tsBackend);
    await factory.dispose(backend);
    this.storage.dropBlocksOf(backend);
  }

  /** Worker threads of this engine's instance of a threaded backend (null when none is started). */
  threadsOf(name: string): number | null {
    return this.instances.get(name)?.settings.threads ?? null;
  }

  /**
   * Runs fn with `name` active (started as `use` does, with the same threads) and then reactivates
   * the backend that was active before, even when fn throws. A previous instance replaced meanwhile
   * by one of other settings (wasm on 2 threads inside a program on 4) is started again with its
   * own settings (its placed storage is gone: tensors that lived there must not be used); one that
   * was disposed (shutdown) gives way to the reference. Whether the program had chosen the backend
   * (backendChosen) is restored too. fn gets what `use` chose, so that a caller that asked for
   * 'auto' can name (and record) the backend it runs on.
   */
  async withBackend<T>(name: string, fn: (choice: BackendChoice) => T | Promise<T>, threads: number | null = null): Promise<T> {
    const previous = this.active, previousChosen = this.chosen;
    const choice = await this.use(name, threads);
    try {
      return await fn(choice);
    } finally {
      let back: Backend | null = this.registered.get(previous.name) === previous ? previous : null;
      const restart = back ? undefined : this.replaced.get(previous);
      if (restart) {
        try {
          back = await this.start(restart.factory, restart.settings);
        } catch (e) {
          process.stderr.write(`${previous.name} backend could not be started again (${(e as Error).message.split('\n')[0]}); using ts\n`);
          back = null;
        }
      }
      this.activate(back ?? tsBackend);
      this.chosen = back !== null && previousChosen;
    }
  }

  /**
   * Runs fn and hands every array allocated inside back to the pool afterwards, except the storage
   * of what fn returns (a tensor, or an array or object of tensors): like tfjs's tidy. Anything
   * else computed inside must be copied out inside fn (values().slice(), item()).
   */
  tidy<T>(fn: () => T): T {
    return this.storage.scope(fn, keptStorage);
  }

  kernels(dtype: DType): KernelSet {
    let ks = this.resolved[dtype];
    if (!ks) {
      const own = this.active.kernels[dtype] ?? {};
      const merged: Partial<KernelSet> = {};
      for (const name of Object.keys(tsKernels) as KernelName[]) {
        (merged as Record<KernelName, unknown>)[name] = own[name] ?? tsKernels[name];
      }
      ks = merged as KernelSet;
      this.resolved[dtype] = ks;
    }
    return ks;
  }

  /** Which backend actually runs a kernel (for logs and parity tests). */
  kernelProvider(name: KernelName, dtype: DType): string {
    return this.active.kernels[dtype]?.[name] ? this.active.name : 'ts';
  }

  /**
   * Disposes every instance this engine started (worker threads, device memory); the reference
   * stays active, as on a new engine (no backend chosen).
   */
  async dispose(): Promise<void> {
    for (const inst of [...this.instances.values()]) if (inst.backend !== tsBackend) await this.retire(inst.factory, inst.backend);
    this.chosen = false;
  }
}

/** The storage of tensors in a tidy result: a tensor, or tensors in an array or a plain object. */
function keptStorage(result: unknown): unknown[] {
  const storageOf = (v: unknown): unknown => (typeof v === 'object' && v !== null && 'storage' in v ? (v as { storage: unknown }).storage : undefined);
  const direct = storageOf(result);
  if (direct !== undefined) return [direct];
  if (Array.isArray(result)) return result.map(storageOf).filter((s) => s !== undefined);
  if (typeof result === 'object' && result !== null && Object.getPrototypeOf(result) === Object.prototype) {
    return Object.values(result).map(storageOf).filter((s) => s !== undefined);
  }
  return [];
}

/**
 * The default engine, which every op runs on. Module-level on purpose, as tfjs's ENGINE: ops take
 * no engine argument, so the one binding they read has to be reachable from them.
 */
export const engine = new Engine();

/** Runs fn on backend `name` of the default engine, then restores the backend active before (see Engine.withBackend). */
export function withBackend<T>(name: string, fn: (choice: BackendChoice) => T | Promise<T>, threads: number | null = null): Promise<T> {
  return engine.withBackend(name, fn, threads);
}

/** The default engine's storage scope (see Engine.tidy). */
export function tidy<T>(fn: () => T): T {
  return engine.tidy(fn);
}
