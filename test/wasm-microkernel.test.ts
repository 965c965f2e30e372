/**
 * The packed GEMM micro-kernel's two loop orders (kernel: column panels outer; kernelRows: row
 * panels outer) compute every tile the same way, so pushGemm may pick either by shape: their
 * results must be the same bits, ragged edges and accumulation included, and equal a plain sum.
 */
import { expect } from 'chai';
import { buildKernelModule, FN, MR, NR } from '../src/tensor/kernels/wasm/kernels.ts';
import { wasmFeatures } from '../src/tensor/kernels/wasm/index.ts';
import { WasmRuntime } from '../src/tensor/kernels/wasm/runtime.ts';
import { randomFloats } from './helpers.ts';

describe('wasm GEMM micro-kernel loop orders', function () {
  this.timeout(30000);
  let rt: WasmRuntime;
  before(async () => {
    const feat = wasmFeatures();
    const module = new WebAssembly.Module(buildKernelModule({ relaxedSimd: feat.relaxedSimd, shared: feat.threads, maximumPages: 256 }));
    rt = await WasmRuntime.create(module, 1, 256, feat.threads);
  });
  after(async () => { await rt?.dispose(); });

  /** C (+)= A·B through `fn` on packed panels of A [m, kc] and B [kc, n]; C starts from `c0`. */
  function run(fn: 'kernel' | 'kernelRows', a: Float32Array, b: Float32Array, m: number, n: number, kc: number, c0: Float32Array, acc: boolean): Float32Array {
    const mp = Math.ceil(m / MR) * MR, np = Math.ceil(n / NR) * NR;
    rt.reset();
    const ap = rt.alloc(mp * kc * 4), bp = rt.alloc(np * kc * 4), c = rt.alloc(m * n * 4);
    rt.commit();
    const f = rt.f32;
    f.fill(0, ap >> 2, (ap >> 2) + mp * kc);
    f.fill(0, bp >> 2, (bp >> 2) + np * kc);
    // Packed A: [m/4][kc][4]; packed B: [n/8][kc][8] (zero past the edges).
    for (let i = 0; i < m; i++) for (let p = 0; p < kc; p++) f[(ap >> 2) + (Math.floor(i / MR) * kc + p) * MR + (i % MR)] = a[i * kc + p]!;
    for (let j = 0; j < n; j++) for (let p = 0; p < kc; p++) f[(bp >> 2) + (Math.floor(j / NR) * kc + p) * NR + (j % NR)] = b[p * n + j]!;
    f.set(c0, c >> 2);
    rt.run([[FN[fn].id, ap, bp, c, m, n, kc, n, acc ? 1 : 0]]);
    return f.slice(c >> 2, (c >> 2) + m * n);
  }

  for (const [m, n, kc] of [[16, 32, 64], [20, 37, 5], [128, 36, 64], [4, 8, 1], [36, 13, 75]] as const) {
    for (const acc of [false, true]) {
      it(`gives the same bits on ${m}×${n}, inner ${kc}${acc ? ', accumulating' : ''}`, () => {
        const a = randomFloats(m * kc, 11), b = randomFloats(kc * n, 12);
        const c0 = acc ? randomFloats(m * n, 7) : new Float32Array(m * n);
        const byCols = run('kernel', a, b, m, n, kc, c0, acc), byRows = run('kernelRows', a, b, m, n, kc, c0, acc);
        expect(Buffer.from(byRows.buffer).equals(Buffer.from(byCols.buffer))).to.equal(true);
        // And they are the product: entry (0, n−1) against a float64 sum.
        let s = 0;
        for (let p = 0; p < kc; p++) s += a[p]! * b[p * n + n - 1]!;
        expect(byRows[n - 1]!).to.be.closeTo((acc ? c0[n - 1]! : 0) + s, 1e-4 * (1 + Math.abs(s)));
      });
    }
  }
});
