/** Strict flag parsing helpers: every bad value becomes one readable UsageError. */
import { UsageError } from './usage-error.ts';

export function parseNumber(flag: string, v: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag}: expected a number, got '${v}'`);
  if (opts.integer && !Number.isInteger(n)) throw new UsageError(`${flag}: expected an integer, got '${v}'`);
  if (opts.min !== undefined && n < opts.min) throw new UsageError(`${flag}: must be ≥ ${opts.min}, got ${v}`);
  if (opts.max !== undefined && n > opts.max) throw new UsageError(`${flag}: must be ≤ ${opts.max}, got ${v}`);
  return n;
}

export function parseList(flag: string, v: string): number[] {
  if (v.trim() === '') return [];
  return v.split(',').map((s) => parseNumber(flag, s.trim(), { integer: true, min: 0 }));
}

export function parseChoice<T extends string>(flag: string, v: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(v)) throw new UsageError(`${flag}: expected one of ${choices.join(', ')}, got '${v}'`);
  return v as T;
}
