import { expect } from 'chai';
import { tsKernels } from '../src/tensor/kernels/ts/index.ts';
import type { Backend, ConvGeom, KernelSet } from '../src/tensor/kernels/types.ts';
import { createWasmBackend, disposeWasmBackend, wasmFeatures, wasmMemoryBytes } from '../src/tensor/kernels/wasm/index.ts';

/** Deterministic uniform(−1, 1) floats, so a failure reproduces. */
function rand(n: number, seed: number): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

/** |got − want| ≤ 1e-5·√K·(1 + |want|): float32 rounding grows like √K over a K-term sum. */
function expectClose(got: Float32Array, want: Float32Array, k: number, what: string): void {
  expect(got.length).to.equal(want.length);
  const tol = 1e-5 * Math.sqrt(Math.max(1, k));
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= tol * (1 + Math.abs(want[i]!)))) {
      expect.fail(`${what}: element ${i} is ${got[i]}, reference ${want[i]} (tolerance ${tol})`);
    }
  }
}

function geom(n: number, cin: number, h: number, w: number, cout: number, kh: number, kw: number, stride: number, pad: number): ConvGeom {
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1, ow = Math.floor((w + 2 * pad - kw) / stride) + 1;
  return { n, cin, h, w, cout, kh, kw, stride, pad, oh, ow };
}

const gemmSizes: [number, number, number][] = [
  [1, 1, 1], [1, 7, 3], [3, 1, 13], [7, 13, 65], [13, 65, 7], [4, 8, 16], [5, 9, 257], [65, 33, 300], [128, 96, 300],
];

const convGeoms: [string, ConvGeom][] = [
  ['5x5 pad 2, cin 1 (MNIST conv1)', geom(3, 1, 28, 28, 8, 5, 5, 1, 2)],
  ['5x5 pad 2, cout 1', geom(2, 8, 14, 14, 1, 5, 5, 1, 2)],
  ['5x5 pad 3 (MNIST deconv2 shape)', geom(2, 4, 7, 9, 8, 5, 5, 1, 3)],
  ['3x3 stride 2 pad 1', geom(3, 3, 9, 7, 5, 3, 3, 2, 1)],
  ['3x3 stride 1 pad 1, odd channels', geom(2, 3, 5, 6, 7, 3, 3, 1, 1)],
  ['1x1 no pad', geom(2, 13, 4, 4, 3, 1, 1, 1, 0)],
  ['non-square 3x2 kernel, stride 2, pad 0', geom(2, 2, 8, 7, 3, 3, 2, 2, 0)],
  ['large enough to run on every thread', geom(8, 8, 16, 16, 16, 5, 5, 1, 2)],
];

for (const threads of [1, 2]) {
  describe(`wasm backend (threads ${threads})`, function () {
    this.timeout(60000);
    let backend: Backend;
    let ks: Partial<KernelSet>;

    before(async () => {
      backend = await createWasmBackend({ threads });
      ks = backend.kernels.float32!;
    });
    after(async () => { await disposeWasmBackend(); });

    it('reports its features and leaves float64 to the reference', () => {
      const f = wasmFeatures();
      expect(f.simd).to.equal(true);
      expect(typeof f.relaxedSimd).to.equal('boolean');
      expect(backend.name).to.equal('wasm');
      expect(backend.kernels.float64).to.equal(undefined);
    });

    it('gemm matches the reference for every transpose and accumulate combination', () => {
      let seed = 1;
      for (const [m, n, k] of gemmSizes) {
        for (const transA of [false, true]) for (const transB of [false, true]) for (const accumulate of [false, true]) {
          const a = rand(m * k, seed++), b = rand(k * n, seed++), c0 = rand(m * n, seed++);
          const want = c0.slice(), got = c0.slice();
          tsKernels.gemm(a, b, want, m, n, k, transA, transB, accumulate);
          ks.gemm!(a, b, got, m, n, k, transA, transB, accumulate);
          expectClose(got, want, k, `gemm m=${m} n=${n} k=${k} tA=${transA} tB=${transB} acc=${accumulate}`);
        }
      }
    });

    it('gemm handles k = 0 and reads only the leading part of longer arrays', () => {
      const c = rand(6, 9);
      ks.gemm!(new Float32Array(0), new Float32Array(0), c, 2, 3, 0, false, false, false);
      expect([...c]).to.deep.equal([0, 0, 0, 0, 0, 0]);
      const a = rand(40, 3), b = rand(40, 4), want = new Float32Array(9), got = new Float32Array(9);
      tsKernels.gemm(a, b, want, 3, 3, 5, false, false, false);
      ks.gemm!(a, b, got, 3, 3, 5, false, false, false);
      expectClose(got, want, 5, 'gemm with oversized operands');
    });

    for (const [label, g] of convGeoms) {
      it(`conv2d, conv2dGradInput and conv2dGradWeight match the reference: ${label}`, () => {
        const K = g.cin * g.kh * g.kw;
        const x = rand(g.n * g.cin * g.h * g.w, 11), w = rand(g.cout * K, 12), gy = rand(g.n * g.cout * g.oh * g.ow, 13);
        const y0 = new Float32Array(gy.length), y1 = new Float32Array(gy.length);
        tsKernels.conv2d(x, w, y0, g); ks.conv2d!(x, w, y1, g);
        expectClose(y1, y0, K, 'conv2d');
        // Poisoned outputs check that the kernels overwrite rather than accumulate.
        const gx0 = new Float32Array(x.length), gx1 = new Float32Array(x.length).fill(7);
        tsKernels.conv2dGradInput(gy, w, gx0, g); ks.conv2dGradInput!(gy, w, gx1, g);
        expectClose(gx1, gx0, g.cout * g.kh * g.kw, 'conv2dGradInput');
        const gw0 = new Float32Array(w.length), gw1 = new Float32Array(w.length).fill(7);
        tsKernels.conv2dGradWeight(x, gy, gw0, g); ks.conv2dGradWeight!(x, gy, gw1, g);
        expectClose(gw1, gw0, g.n * g.oh * g.ow, 'conv2dGradWeight');
      });
    }

    it('does not grow wasm memory when the same shapes repeat', () => {
      const g = geom(6, 4, 12, 12, 8, 5, 5, 1, 2);
      const x = rand(g.n * g.cin * g.h * g.w, 5), w = rand(g.cout * g.cin * 25, 6), gy = rand(g.n * g.cout * g.oh * g.ow, 7);
      const run = (): void => {
        ks.conv2d!(x, w, new Float32Array(gy.length), g);
        ks.conv2dGradInput!(gy, w, new Float32Array(x.length), g);
        ks.conv2dGradWeight!(x, gy, new Float32Array(w.length), g);
        ks.gemm!(x, w, new Float32Array(64 * 8), 64, 8, 100, false, true, false);
      };
      run();
      const before = wasmMemoryBytes();
      for (let i = 0; i < 3; i++) run();
      expect(wasmMemoryBytes()).to.equal(before);
    });
  });
}
