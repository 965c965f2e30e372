/** Flags several commands share, worded once. */
import { BACKEND_NAMES, MAX_WASM_THREADS } from '../tensor/backends.ts';
import type { FlagSpec } from './command.ts';

export const backendFlag = {
  kind: { choices: BACKEND_NAMES }, arg: 'B', default: 'auto',
  help: `auto (default: the fastest available) | ${BACKEND_NAMES.filter((n) => n !== 'auto').join(' | ')}; env SVDD_BACKEND`,
} as const satisfies FlagSpec;

export const threadsFlag = {
  kind: 'int', min: 1, max: MAX_WASM_THREADS, arg: 'T',
  help: `worker threads of the wasm backend, 1 to ${MAX_WASM_THREADS} (default: all cores); env SVDD_THREADS`,
} as const satisfies FlagSpec;
