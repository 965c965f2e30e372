import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { readSafetensors } from '../src/tensor/io/safetensors.ts';
import { Tensor, tensorFromArray } from '../src/tensor/tensor.ts';
import type { ConvGeom, DType, KernelSet } from '../src/tensor/kernels/types.ts';
import { tsKernels } from '../src/tensor/kernels/ts/index.ts';

export const fixturesDir = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

export interface Fixture {
  get(name: string, dtype?: DType): Tensor;
  has(name: string): boolean;
  names(): string[];
  meta: Record<string, string>;
}

/** Loads test/fixtures/<rel>.safetensors as tensors (float64 unless asked otherwise). */
export function fixture(rel: string): Fixture {
  const f = readSafetensors(join(fixturesDir, `${rel}.safetensors`));
  return {
    meta: f.metadata,
    has: (name) => f.tensors.has(name),
    names: () => [...f.tensors.keys()],
    get(name, dtype = 'float64') {
      const t = f.tensors.get(name);
      if (!t) throw new Error(`fixture ${rel} has no tensor '${name}'`);
      const data = dtype === 'float64' ? Float64Array.from(t.data) : Float32Array.from(t.data);
      return tensorFromArray(data, t.shape);
    },
  };
}

/** max|a − b| / max(max|b|, tiny): the norm-relative error used by the parity tests. */
export function relError(a: Tensor | ArrayLike<number>, b: Tensor | ArrayLike<number>): number {
  const av = a instanceof Tensor ? a.values() : a, bv = b instanceof Tensor ? b.values() : b;
  if (av.length !== bv.length) throw new Error(`relError: ${av.length} vs ${bv.length} values`);
  let diff = 0, scale = 0;
  for (let i = 0; i < av.length; i++) {
    diff = Math.max(diff, Math.abs(av[i]! - bv[i]!));
    scale = Math.max(scale, Math.abs(bv[i]!));
  }
  return diff / Math.max(scale, 1e-300);
}

export function expectClose(a: Tensor | ArrayLike<number>, b: Tensor | ArrayLike<number>, tol: number, what = ''): void {
  if (a instanceof Tensor && b instanceof Tensor && a.shape.join() !== b.shape.join()) {
    throw new Error(`${what}: shape [${a.shape}] vs expected [${b.shape}]`);
  }
  const e = relError(a, b);
  if (!(e <= tol)) throw new Error(`${what}: relative error ${e.toExponential(3)} exceeds ${tol}`);
}

/** Deterministic uniform(−1, 1) floats (xorshift32), so a kernel-parity failure reproduces. */
export function randomFloats(n: number, seed: number): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

/** Convolution geometry with PyTorch's output size. */
export function convGeom(n: number, cin: number, h: number, w: number, cout: number, kh: number, kw: number, stride: number, pad: number): ConvGeom {
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1, ow = Math.floor((w + 2 * pad - kw) / stride) + 1;
  return { n, cin, h, w, cout, kh, kw, stride, pad, oh, ow };
}

/**
 * Kernel parity in float32: |got − want| ≤ 1e-5·max(minScale, √K)·(1 + |want|), since float32
 * rounding grows like √K over a K-term sum.
 */
export function expectKernelClose(got: Float32Array, want: Float32Array, k: number, what: string, minScale = 1): void {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} values, reference has ${want.length}`);
  const tol = 1e-5 * Math.max(minScale, Math.sqrt(Math.max(1, k)));
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= tol * (1 + Math.abs(want[i]!)))) {
      throw new Error(`${what}: element ${i} is ${got[i]}, reference ${want[i]} (tolerance ${tol})`);
    }
  }
}

/** Small dense matrix helpers for checking transform matrices in float64 (Winograd tests). */
export const matVec = (a: number[][], v: number[]): number[] => a.map((row) => row.reduce((s, c, j) => s + c * v[j]!, 0));
export const matMul = (a: number[][], b: number[][]): number[][] => a.map((row) => b[0]!.map((_, j) => row.reduce((s, c, k) => s + c * b[k]![j]!, 0)));
export const transpose = (a: number[][]): number[][] => a[0]!.map((_, j) => a.map((row) => row[j]!));

/** Largest |got − want| relative to the largest |want|. */
export function relToMax(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let diff = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return diff / scale;
}

/**
 * One 2-D Winograd tile in float64, Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d Bᵀᵀ)]A, against direct correlation of the
 * α×α input window d with the r×r filter g: every output within 1e-12.
 */
export function expectWinogradTileExact(t: { m: number; r: number; AT: number[][]; G: number[][]; BT: number[][] }, d: number[][], g: number[][]): void {
  const U = matMul(matMul(t.G, g), transpose(t.G)), V = matMul(matMul(t.BT, d), transpose(t.BT));
  const Y = matMul(matMul(t.AT, U.map((row, i) => row.map((u, j) => u * V[i]![j]!))), transpose(t.AT));
  for (let oy = 0; oy < t.m; oy++) {
    for (let ox = 0; ox < t.m; ox++) {
      let want = 0;
      for (let ky = 0; ky < t.r; ky++) for (let kx = 0; kx < t.r; kx++) want += g[ky]![kx]! * d[oy + ky]![ox + kx]!;
      if (Math.abs(Y[oy]![ox]! - want) > 1e-12) throw new Error(`Winograd tile output (${oy}, ${ox}): ${Y[oy]![ox]!} vs direct ${want}`);
    }
  }
}

/**
 * Float32 error of a backend's conv2d (or weight gradient) on g against the float64 `ts` reference,
 * relative to the largest reference value; inputs from randomFloats with the given seeds.
 */
export function convErrorVsFloat64(ks: Partial<KernelSet>, g: ConvGeom, op: 'conv2d' | 'conv2dGradWeight', seeds: [number, number]): number {
  const x = randomFloats(g.n * g.cin * g.h * g.w, seeds[0]);
  if (op === 'conv2d') {
    const w = randomFloats(g.cout * g.cin * 25, seeds[1]);
    const y0 = new Float64Array(g.n * g.cout * g.oh * g.ow), y1 = new Float32Array(y0.length);
    tsKernels.conv2d(Float64Array.from(x), Float64Array.from(w), y0, g);
    ks.conv2d!(x, w, y1, g);
    return relToMax(y1, y0);
  }
  const gy = randomFloats(g.n * g.cout * g.oh * g.ow, seeds[1]);
  const gw0 = new Float64Array(g.cout * g.cin * 25), gw1 = new Float32Array(gw0.length);
  tsKernels.conv2dGradWeight(Float64Array.from(x), Float64Array.from(gy), gw0, g);
  ks.conv2dGradWeight!(x, gy, gw1, g);
  return relToMax(gw1, gw0);
}
