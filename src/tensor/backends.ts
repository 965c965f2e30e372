/**
 * Backend selection on the default engine by name, for the CLI, benchmarks and tests (the
 * choices, their probes and `auto` live in backend-registry.ts and builtin-backends.ts; the
 * instances in engine.ts). SVDD_BACKEND and SVDD_THREADS set the defaults.
 */
import { BackendError, backendChoices, backendFactories, resolveWasmThreads } from './backend-registry.ts';
import { engine } from './engine.ts';
import { MAX_WASM_THREADS } from './kernels/wasm/runtime.ts';

export { BackendError, MAX_WASM_THREADS, backendChoices, resolveWasmThreads };

/** Every backend a user may ask for ('auto' first), from the registry. */
export const BACKEND_NAMES: readonly string[] = backendChoices();

/** One line per backend for help texts: 'auto' and each registered backend with what it is. */
export function backendHelp(): string {
  return ['auto (the best that runs here)', ...backendFactories().map((f) => `${f.name} (${f.description})`)].join(', ');
}

/**
 * Activates a backend of the default engine for the rest of the process (benchmarks, scripts;
 * library code and the commands scope theirs with engine.withBackend); returns its name ('wasm',
 * 'ts' or 'gpujs'). threads: wasm worker threads (default all cores).
 */
export async function useBackend(name: string, threads: number | null = null): Promise<string> {
  return (await engine.use(name, threads)).name;
}

/** Worker threads of the default engine's wasm backend (null when none is started). */
export function activeWasmThreads(): number | null { return engine.threadsOf('wasm'); }

/** Stops the default engine's backend instances; the reference backend stays active. */
export async function shutdownBackends(): Promise<void> {
  await engine.dispose();
}
