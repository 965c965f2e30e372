import type { FloatArray } from './types.ts';

/** A zeroed array of x's element type (Float32Array or Float64Array), `length` long (default x's length): kernels' scratch. */
export function floatArrayLike(x: FloatArray, length = x.length): FloatArray {
  return x instanceof Float64Array ? new Float64Array(length) : new Float32Array(length);
}
