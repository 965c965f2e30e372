/** Number formats of the report's page and plots ('n/a' for a missing or non-finite value). */
export const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
export const pct = (v: number | null | undefined, digits = 2): string => (isNum(v) ? `${(100 * v).toFixed(digits)}%` : 'n/a');
export const num = (v: number | null | undefined, p = 5): string => (isNum(v) ? (Math.abs(v) >= 1e6 || (Math.abs(v) < 1e-4 && v !== 0) ? v.toExponential(3) : String(Number(v.toPrecision(p)))) : 'n/a');
