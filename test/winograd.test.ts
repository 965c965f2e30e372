import { expect } from 'chai';
import { tsKernels } from '../src/tensor/kernels/ts/index.ts';
import type { ConvGeom, KernelSet } from '../src/tensor/kernels/types.ts';
import { createWasmBackend, disposeWasmBackend } from '../src/tensor/kernels/wasm/index.ts';
import { type WinogradTile, setWinograd, setWinogradTile, usesWinograd, usesWinogradGradWeight } from '../src/tensor/kernels/wasm/ops.ts';
import { F2X5, cookToom } from '../src/tensor/kernels/wasm/winograd.ts';
import { wholePanelRows } from '../src/tensor/kernels/wasm/winograd-conv.ts';
import { NR } from '../src/tensor/kernels/wasm/kernels.ts';
import { convErrorVsFloat64, convGeom as geom, expectWinogradTileExact, matVec, randomFloats as rand, relToMax } from './helpers.ts';

describe('Winograd F(2x2, 5x5) transforms', () => {
  it('Cook-Toom from the points 0, 1, -1, 2, -2, inf gives the textbook matrices', () => {
    const t = cookToom(2, 5, [0, 1, -1, 2, -2]);
    expect(t.AT).to.deep.equal([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 1]]);
    expect(t.BT).to.deep.equal([
      [4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
      [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1],
    ]);
    const G = [[6, 0, 0, 0, 0], [-4, -4, -4, -4, -4], [-4, 4, -4, 4, -4], [1, 2, 4, 8, 16], [1, -2, 4, -8, 16], [0, 0, 0, 0, 24]];
    t.G.forEach((row, i) => row.forEach((v, j) => expect(v * 24).to.be.closeTo(G[i]![j]!, 1e-12)));
  });

  it('the kernels\' F(2, 5) uses the points 0, ±3/2, ±2/3, inf', () => {
    expect(F2X5.AT[1]!.map((v) => +v.toFixed(12))).to.deep.equal([0, 1.5, -1.5, +(2 / 3).toFixed(12), -(2 / 3).toFixed(12), 1]);
    // Every row of Bᵀ has a coefficient of 1 (monic basis polynomials): one free term per row.
    for (const row of F2X5.BT) expect(row).to.include(1);
  });

  it('1-D F(2, 5) on random data equals direct correlation', () => {
    for (let trial = 0; trial < 20; trial++) {
      const d = [...rand(6, 100 + trial)], g = [...rand(5, 200 + trial)];
      const y = matVec(F2X5.AT, matVec(F2X5.G, g).map((u, i) => u * matVec(F2X5.BT, d)[i]!));
      const direct = [0, 1].map((i) => g.reduce((s, gk, k) => s + gk * d[i + k]!, 0));
      y.forEach((v, i) => expect(v).to.be.closeTo(direct[i]!, 1e-12));
    }
  });

  it('2-D F(2x2, 5x5) on random data equals direct correlation', () => {
    const d = Array.from({ length: 6 }, (_, r) => [...rand(6, 300 + r)]), g = Array.from({ length: 5 }, (_, r) => [...rand(5, 400 + r)]);
    expectWinogradTileExact(F2X5, d, g);
  });

  it('Cook-Toom generalises: F(4, 3) from the same points is exact too', () => {
    const t = cookToom(4, 3, [0, 1, -1, 2, -2]);
    const d = [...rand(6, 7)], g = [...rand(3, 8)];
    const y = matVec(t.AT, matVec(t.G, g).map((u, i) => u * matVec(t.BT, d)[i]!));
    y.forEach((v, i) => expect(v).to.be.closeTo(g.reduce((s, gk, k) => s + gk * d[i + k]!, 0), 1e-12));
  });
});

/**
 * Geometries that take the Winograd path: odd sizes, odd outputs, pads 0–4, channel counts off
 * multiples of 4, batches 1 and 3, chunks that end mid-panel or cross from one image to the next.
 */
const cases: [string, ConvGeom][] = [
  ['CIFAR conv3 shape, small batch', geom(3, 64, 8, 8, 128, 5, 5, 1, 2)],
  ['odd input 11x9, pad 1, cin 17, cout 19', geom(3, 17, 11, 9, 19, 5, 5, 1, 1)],
  ['odd output 7x7, pad 0, batch 1', geom(1, 18, 11, 11, 21, 5, 5, 1, 0)],
  ['pad 4 (output larger than input), 5x6', geom(3, 16, 5, 6, 17, 5, 5, 1, 4)],
  ['pad 2, non-square 13x20, cin 30, cout 22', geom(1, 30, 13, 20, 22, 5, 5, 1, 2)],
  ['several chunks per image, crossing images at odd tile rows', geom(3, 64, 29, 29, 48, 5, 5, 1, 2)],
  ['output of one row and one column', geom(3, 20, 5, 5, 20, 5, 5, 1, 0)],
];

for (const threads of [1, 2]) {
  describe(`Winograd conv on the wasm backend (threads ${threads})`, function () {
    this.timeout(120000);
    let ks: Partial<KernelSet>;
    // On even when the run has SVDD_WINOGRAD=0, and F(2×2) under SVDD_WINOGRAD_TILE=4: these tests are
    // about the F(2×2) path (test/winograd4.test.ts covers F(4×4)).
    let prior = true, priorTile: WinogradTile = 2;
    before(async () => {
      prior = setWinograd(true);
      priorTile = setWinogradTile(2);
      ks = (await createWasmBackend({ threads })).kernels.float32!;
    });
    after(async () => { setWinograd(prior); setWinogradTile(priorTile); await disposeWasmBackend(); });

    for (const [label, g] of cases) {
      it(`conv2d and conv2dGradInput match the float64 reference: ${label}`, () => {
        expect(usesWinograd(g), 'conv2d takes the Winograd path').to.equal(true);
        const transposed = { ...g, cin: g.cout, cout: g.cin, h: g.oh, w: g.ow, oh: g.h, ow: g.w, pad: 4 - g.pad };
        expect(usesWinograd(transposed), 'conv2dGradInput takes the Winograd path').to.equal(true);
        const x = rand(g.n * g.cin * g.h * g.w, 1), w = rand(g.cout * g.cin * 25, 2), gy = rand(g.n * g.cout * g.oh * g.ow, 3);
        // The reference in float64 on the same (float32) values: the error measured is ours alone.
        const y0 = new Float64Array(gy.length), gx0 = new Float64Array(x.length);
        tsKernels.conv2d(Float64Array.from(x), Float64Array.from(w), y0, g);
        tsKernels.conv2dGradInput(Float64Array.from(gy), Float64Array.from(w), gx0, g);
        for (let round = 0; round < 2; round++) {
          // Poisoned outputs: the kernels must overwrite every element. The second round replays the cached plan.
          const y1 = new Float32Array(gy.length).fill(NaN), gx1 = new Float32Array(x.length).fill(NaN);
          ks.conv2d!(x, w, y1, g);
          ks.conv2dGradInput!(gy, w, gx1, g);
          expect(relToMax(y1, y0), `conv2d round ${round}`).to.be.below(1e-4);
          expect(relToMax(gx1, gx0), `conv2dGradInput round ${round}`).to.be.below(1e-4);
        }
      });
    }

    // The weight gradient's own chunking: images pass through a few slots per thread (reused here, as
    // batches exceed what one chunk touches), and whole channel groups with rows of whole vectors take
    // the 4×4-transpose interleave instead of the padded-copy gathers (each side separately).
    const gradWeightCases: [string, ConvGeom][] = [
      ...cases,
      ['batch 21 of 8x12, interleaved by transposes, image slots reused', geom(21, 16, 8, 12, 12, 5, 5, 1, 2)],
      ['batch 21 of 6x7, gathered, image slots reused', geom(21, 16, 6, 7, 9, 5, 5, 1, 2)],
      ['x interleaved by transposes, dY gathered (cout 10)', geom(3, 24, 8, 8, 10, 5, 5, 1, 2)],
      ['x gathered (cin 20), dY interleaved by transposes', geom(3, 20, 8, 8, 16, 5, 5, 1, 2)],
    ];
    for (const [label, g] of gradWeightCases) {
      it(`conv2dGradWeight matches the float64 reference: ${label}`, () => {
        expect(usesWinogradGradWeight(g), 'conv2dGradWeight takes the Winograd path').to.equal(true);
        const x = rand(g.n * g.cin * g.h * g.w, 11), gy = rand(g.n * g.cout * g.oh * g.ow, 12);
        const gw0 = new Float64Array(g.cout * g.cin * 25);
        tsKernels.conv2dGradWeight(Float64Array.from(x), Float64Array.from(gy), gw0, g);
        for (let round = 0; round < 2; round++) {
          const gw1 = new Float32Array(gw0.length).fill(NaN);
          ks.conv2dGradWeight!(x, gy, gw1, g);
          expect(relToMax(gw1, gw0), `conv2dGradWeight round ${round}`).to.be.below(1e-5);
        }
      });
    }

    // Winograd rounds in the transformed domain, which costs accuracy; the points were chosen to keep
    // that small. These cases measure 6.8e-7 and 1.4e-6; the textbook points 0, ±1, ±2 3.2e-6 and
    // 4.0e-6 (too much for the network parity tests); the direct path 4.5e-7 and 3.4e-7.
    for (const g of [geom(2, 32, 16, 16, 64, 5, 5, 1, 2), geom(2, 64, 8, 8, 128, 5, 5, 1, 2)]) {
      it(`float32 error on a CIFAR-shaped layer (${g.cin} → ${g.cout} on ${g.h}x${g.w}) is below 2.5e-6 of the largest output`, () => {
        expect(convErrorVsFloat64(ks, g, 'conv2d', [6, 7])).to.be.below(2.5e-6);
      });
    }

    // Measured at these shapes: 1.7e-6 and 1.1e-6 (the im2col GEMM path: 4.6e-7 and 2.7e-7); 2.1e-6 and
    // 2.5e-6 at batch 200. The whole-network parity tests (test/wasm-backend.test.ts) pass with it.
    for (const g of [geom(2, 32, 16, 16, 64, 5, 5, 1, 2), geom(2, 64, 8, 8, 128, 5, 5, 1, 2)]) {
      it(`weight gradient float32 error on a CIFAR-shaped layer (${g.cin} → ${g.cout} on ${g.h}x${g.w}) is below 4e-6 of the largest`, () => {
        expect(convErrorVsFloat64(ks, g, 'conv2dGradWeight', [8, 9])).to.be.below(4e-6);
      });
    }

    it('SVDD_WINOGRAD switch turns the Winograd weight gradient off too, with the same result', () => {
      const g = cases[1]![1];
      const x = rand(g.n * g.cin * g.h * g.w, 4), gy = rand(g.n * g.cout * g.oh * g.ow, 5);
      const wino = new Float32Array(g.cout * g.cin * 25), direct = wino.slice();
      ks.conv2dGradWeight!(x, gy, wino, g);
      setWinograd(false);
      expect(usesWinogradGradWeight(g)).to.equal(false);
      ks.conv2dGradWeight!(x, gy, direct, g);
      setWinograd(true);
      expect(relToMax(wino, direct)).to.be.below(1e-5);
    });

    it('SVDD_WINOGRAD switch: the direct path gives the same result', () => {
      const g = cases[1]![1];
      const x = rand(g.n * g.cin * g.h * g.w, 4), w = rand(g.cout * g.cin * 25, 5);
      const wino = new Float32Array(g.n * g.cout * g.oh * g.ow), direct = wino.slice();
      ks.conv2d!(x, w, wino, g);
      setWinograd(false);
      expect(usesWinograd(g)).to.equal(false);
      ks.conv2d!(x, w, direct, g);
      setWinograd(true);
      expect(relToMax(wino, direct)).to.be.below(1e-4);
    });

    it('leaves small channel counts, other kernels and strides to the direct paths', () => {
      expect(usesWinograd(geom(2, 8, 4, 4, 128, 5, 5, 1, 2))).to.equal(false);
      expect(usesWinograd(geom(2, 32, 16, 16, 4, 5, 5, 1, 2))).to.equal(false);
      expect(usesWinograd(geom(2, 32, 16, 16, 32, 3, 3, 1, 1))).to.equal(false);
      expect(usesWinograd(geom(2, 32, 16, 16, 32, 5, 5, 2, 2))).to.equal(false);
      expect(usesWinogradGradWeight(geom(2, 8, 4, 4, 128, 5, 5, 1, 2))).to.equal(false);
      expect(usesWinogradGradWeight(geom(2, 32, 16, 16, 32, 5, 5, 2, 2))).to.equal(false);
    });
  });
}

describe('Winograd F(2x2) forward chunks', () => {
  it('hold whole GEMM column panels, at least the minimum rows, as near the target as that allows', () => {
    // tw (4-tile groups per row) is a multiple of 4; CIFAR-10's 8×8 layers have tw = 4 and a 9-row target.
    expect(wholePanelRows(8, 9, 4)).to.equal(8);
    for (const tw of [4, 8, 12, 16, 20]) {
      const min = Math.ceil(32 / tw);
      for (let target = 0; target < 40; target++) {
        const rows = wholePanelRows(min, target, tw);
        expect((rows * tw) % NR, `tw ${tw}, target ${target}`).to.equal(0);
        expect(rows).to.be.at.least(min);
        expect(Math.abs(rows - Math.max(min, target))).to.be.at.most(1);
      }
    }
  });
});
