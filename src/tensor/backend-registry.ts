/**
 * The kinds of backend this build knows. Each registers itself once, at import time
 * (builtin-backends.ts for ts, wasm and gpujs), with how to probe, create and dispose it; an
 * Engine starts instances from here, `auto` picks the best that probes, and the CLI's backend
 * choices and help strings are read from here.
 */
import os from 'node:os';
import type { Backend } from './kernels/types.ts';
import { MAX_WASM_THREADS } from './kernels/wasm/runtime.ts';

/** A backend setting a user gave (flag, option or environment) that cannot be used: one line, exit 2. */
export class BackendError extends Error {}

/** What an instance is started with: worker threads for a backend that runs on threads (wasm). */
export interface BackendSettings { readonly threads: number }

export interface BackendFactory {
  readonly name: string;
  /** `auto` takes the backend of highest priority whose probe says yes. */
  readonly priority: number;
  /** One line for help texts. */
  readonly description: string;
  /** Whether the backend can run here and `auto` may pick it; cheap after its first call. */
  probe(): Promise<boolean>;
  create(settings: BackendSettings): Promise<Backend>;
  /**
   * Settings that need a new instance map to a new key (wasm: the thread count); an instance with
   * the same key is reused. Omitted: one instance serves every setting.
   */
  settingsKey?(settings: BackendSettings): string;
  /** Whether the backend runs on `settings.threads` worker threads (reported with the run). */
  readonly usesThreads?: boolean;
  dispose(backend: Backend): Promise<void>;
}

/**
 * Module-level on purpose: the list of backend kinds compiled into this build (a plugin table,
 * filled at import time); instances and every run-time choice live in an Engine.
 */
const factories = new Map<string, BackendFactory>();

export function registerBackendFactory(factory: BackendFactory): void {
  factories.set(factory.name, factory);
}

export function backendFactory(name: string): BackendFactory | undefined {
  return factories.get(name);
}

/** Registered backends in registration order (the order probes run in). */
export function backendFactories(): BackendFactory[] {
  return [...factories.values()];
}

/** What a user may ask for: 'auto' and every registered backend. */
export function backendChoices(): string[] {
  return ['auto', ...factories.keys()];
}

/**
 * The wasm thread count to use: `threads` when given (the --threads flag or a config), else
 * SVDD_THREADS, else one per core; at most MAX_WASM_THREADS. A bad SVDD_THREADS is refused even
 * when the flag overrides it (it would be a surprise the day the flag is dropped).
 */
export function resolveWasmThreads(threads: number | null = null): number {
  const env = process.env.SVDD_THREADS;
  let envThreads: number | null = null;
  if (env !== undefined && env !== '') {
    envThreads = /^[0-9]+$/.test(env) ? Number(env) : NaN;
    if (!(envThreads >= 1 && envThreads <= MAX_WASM_THREADS)) {
      throw new BackendError(`SVDD_THREADS must be an integer from 1 to ${MAX_WASM_THREADS}, got '${env}'`);
    }
  }
  if (threads !== null && !(Number.isInteger(threads) && threads >= 1 && threads <= MAX_WASM_THREADS)) {
    throw new BackendError(`--threads must be an integer from 1 to ${MAX_WASM_THREADS}, got ${threads}`);
  }
  return threads ?? envThreads ?? Math.min(MAX_WASM_THREADS, os.availableParallelism());
}

/** The backend name to use for `name` ('auto' defers to SVDD_BACKEND); refuses unknown names in one line. */
export function requestedBackend(name: string, choices: readonly string[] = backendChoices()): string {
  const known = (n: string): boolean => choices.includes(n);
  if (!known(name)) throw new BackendError(`unknown backend '${name}' (expected ${choices.join(', ')})`);
  if (name !== 'auto') return name;
  const env = process.env.SVDD_BACKEND;
  if (env === undefined || env === '') return 'auto';
  if (!known(env)) throw new BackendError(`SVDD_BACKEND must be one of ${choices.join(', ')}, got '${env}'`);
  return env;
}
