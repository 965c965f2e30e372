import { expect } from 'chai';
import { BackendError } from '../src/tensor/backend-registry.ts';
import { tsKernels } from '../src/tensor/kernels/ts/index.ts';
import type { ConvGeom, KernelSet } from '../src/tensor/kernels/types.ts';
import { createWasmBackend, disposeWasmBackend } from '../src/tensor/kernels/wasm/index.ts';
import {
  type WinogradTile, parseWinogradTile, setWinograd, setWinogradTile, usesWinograd, usesWinogradGradWeight,
} from '../src/tensor/kernels/wasm/ops.ts';
import { F4X5 } from '../src/tensor/kernels/wasm/winograd.ts';
import { convErrorVsFloat64, convGeom as geom, expectWinogradTileExact, matVec, randomFloats as rand, relToMax } from './helpers.ts';

describe('Winograd F(4x4, 5x5) transforms', () => {
  it('F4X5 uses the points 0, ±1, ±2, ±1/2, inf, with exact dyadic Bᵀ and Aᵀ', () => {
    expect(F4X5.m).to.equal(4);
    expect(F4X5.alpha).to.equal(8);
    expect(F4X5.AT[1]).to.deep.equal([0, 1, -1, 2, -2, 0.5, -0.5, 0]);
    expect(F4X5.AT[3]).to.deep.equal([0, 1, -1, 8, -8, 0.125, -0.125, 1]);
    for (const row of [...F4X5.BT, ...F4X5.AT]) for (const v of row) expect(v * 4096, `${v} is a multiple of 1/4096`).to.equal(Math.round(v * 4096));
    // Every row of Bᵀ has a coefficient of ±1 (monic basis polynomials): one free term per row.
    for (const row of F4X5.BT) expect(row.some((v) => Math.abs(v) === 1)).to.equal(true);
  });

  it('1-D F(4, 5) on random data equals direct correlation (float64)', () => {
    for (let trial = 0; trial < 20; trial++) {
      const d = [...rand(8, 500 + trial)], g = [...rand(5, 600 + trial)];
      const y = matVec(F4X5.AT, matVec(F4X5.G, g).map((u, i) => u * matVec(F4X5.BT, d)[i]!));
      const direct = [0, 1, 2, 3].map((i) => g.reduce((s, gk, k) => s + gk * d[i + k]!, 0));
      y.forEach((v, i) => expect(v).to.be.closeTo(direct[i]!, 1e-12));
    }
  });

  it('2-D F(4x4, 5x5) on random data equals direct correlation (float64)', () => {
    for (let trial = 0; trial < 5; trial++) {
      const d = Array.from({ length: 8 }, (_, r) => [...rand(8, 700 + 10 * trial + r)]);
      const g = Array.from({ length: 5 }, (_, r) => [...rand(5, 800 + 10 * trial + r)]);
      expectWinogradTileExact(F4X5, d, g);
    }
  });
});

describe('SVDD_WINOGRAD_TILE switch', () => {
  it('accepts 2 and 4 (unset or empty: 2) and refuses anything else', () => {
    expect(parseWinogradTile(undefined)).to.equal(2);
    expect(parseWinogradTile('')).to.equal(2);
    expect(parseWinogradTile('2')).to.equal(2);
    expect(parseWinogradTile('4')).to.equal(4);
    for (const bad of ['3', '6', '0', '4 ', 'four', '2x2']) {
      expect(() => parseWinogradTile(bad), bad).to.throw(BackendError, /SVDD_WINOGRAD_TILE must be 2 or 4/);
    }
    expect(() => setWinogradTile(3 as WinogradTile)).to.throw(/must be 2 or 4/);
  });

  it('a bad value stops the wasm backend when it starts', async () => {
    const prior = process.env['SVDD_WINOGRAD_TILE'];
    process.env['SVDD_WINOGRAD_TILE'] = '3';
    try {
      let error: unknown = null;
      try { await createWasmBackend({ threads: 1 }); } catch (e) { error = e; }
      // A BackendError: the CLI prints its message as one line and exits 2.
      expect(error).to.be.instanceOf(BackendError);
      expect(String(error)).to.match(/SVDD_WINOGRAD_TILE must be 2 or 4 .* not '3'/);
    } finally {
      if (prior === undefined) delete process.env['SVDD_WINOGRAD_TILE']; else process.env['SVDD_WINOGRAD_TILE'] = prior;
      await disposeWasmBackend();
    }
  });
});

/**
 * Geometries for the F(4×4) setting: odd outputs that are not multiples of 4 (5, 7, 9, 11, 13, 14),
 * square outputs 4 to 32, batches 1, 3, 8 and 21 (chunks crossing from one image into the next),
 * channel counts at the Winograd thresholds (cin 16, cout 8) and above, pads 0–4, a partial last
 * group of 4 tiles per thread (its lanes repeat the thread's last tile).
 */
const cases: [string, ConvGeom][] = [
  ['5x5 output, at the thresholds (cin 16, cout 8)', geom(3, 16, 5, 5, 8, 5, 5, 1, 2)],
  ['7x7 output, pad 0, batch 1', geom(1, 18, 11, 11, 21, 5, 5, 1, 0)],
  ['4x4 output, batch 8', geom(8, 32, 4, 4, 32, 5, 5, 1, 2)],
  ['8x8 output (CIFAR conv3 shape), batch 3', geom(3, 64, 8, 8, 128, 5, 5, 1, 2)],
  ['5x13 output: 2 tile rows of 4 tiles', geom(3, 16, 5, 13, 8, 5, 5, 1, 2)],
  ['7x11 output, pad 1, cin 17, cout 19', geom(3, 17, 9, 13, 19, 5, 5, 1, 1)],
  ['14x14 output, batch 8, chunks crossing images', geom(8, 64, 14, 14, 64, 5, 5, 1, 2)],
  ['14x14 output, pad 0, batch 1, cout 9', geom(1, 16, 18, 18, 9, 5, 5, 1, 0)],
  ['16x16 output (CIFAR conv2 shape), batch 3', geom(3, 32, 16, 16, 64, 5, 5, 1, 2)],
  ['13x16 output, pad 4 (output larger than input)', geom(3, 16, 9, 12, 17, 5, 5, 1, 4)],
  ['32x32 output, batch 1, cin 20, cout 24', geom(1, 20, 32, 32, 24, 5, 5, 1, 2)],
  ['29x29 output, batch 3, several chunks per image', geom(3, 64, 29, 29, 48, 5, 5, 1, 2)],
  ['9x6 output, batch 21, chunks splitting images, a partial last group', geom(21, 64, 9, 6, 64, 5, 5, 1, 2)],
];

/**
 * The weight gradient's own cases on top: images passing through its per-thread slots (reused when a
 * batch exceeds what one chunk touches), and each side interleaved by 4×4 transposes (whole channel
 * groups, rows of whole vectors) or gathered by pack8 / pack4 (with dY zero-padded to whole 4×4
 * tiles when the output is not a multiple of 4).
 */
const gradWeightCases: [string, ConvGeom][] = [
  ...cases,
  ['8x12 output, batch 21, interleaved by transposes, image slots reused', geom(21, 16, 8, 12, 12, 5, 5, 1, 2)],
  ['6x7 output, batch 21, gathered, image slots reused', geom(21, 16, 6, 7, 9, 5, 5, 1, 2)],
  ['8x8 output, x interleaved by transposes, dY gathered (cout 10)', geom(3, 24, 8, 8, 10, 5, 5, 1, 2)],
  ['8x8 output, x gathered (cin 20), dY interleaved by transposes', geom(3, 20, 8, 8, 16, 5, 5, 1, 2)],
];

const sameBits = (a: Float32Array, b: Float32Array): boolean => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));

for (const threads of [1, 2]) {
  describe(`Winograd F(4x4) conv on the wasm backend (threads ${threads})`, function () {
    this.timeout(300000);
    let ks: Partial<KernelSet>;
    // On, with tile 4, whatever the run's SVDD_WINOGRAD and SVDD_WINOGRAD_TILE say.
    let priorOn = true, priorTile: WinogradTile = 2;
    before(async () => {
      priorOn = setWinograd(true);
      priorTile = setWinogradTile(4);
      ks = (await createWasmBackend({ threads })).kernels.float32!;
    });
    after(async () => { setWinograd(priorOn); setWinogradTile(priorTile); await disposeWasmBackend(); });

    for (const [label, g] of cases) {
      it(`conv2d and conv2dGradInput match the float64 reference: ${label}`, () => {
        setWinogradTile(4);
        expect(usesWinograd(g), 'conv2d takes the Winograd path').to.equal(true);
        const transposed = { ...g, cin: g.cout, cout: g.cin, h: g.oh, w: g.ow, oh: g.h, ow: g.w, pad: 4 - g.pad };
        const gradInputWinograd = usesWinograd(transposed);
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
          expect(relToMax(y1, y0), `conv2d round ${round}`).to.be.below(2e-5);
          expect(relToMax(gx1, gx0), `conv2dGradInput round ${round} (Winograd: ${gradInputWinograd})`).to.be.below(2e-5);
          if (round === 0) {
            // The F(4×4) path really ran: F(2×2) rounds differently.
            const y2 = new Float32Array(gy.length);
            setWinogradTile(2);
            ks.conv2d!(x, w, y2, g);
            setWinogradTile(4);
            expect(Buffer.from(y2.buffer).equals(Buffer.from(y1.buffer)), 'conv2d under tile 4 differs from F(2x2)').to.equal(false);
          }
        }
      });
    }

    for (const [label, g] of gradWeightCases) {
      it(`conv2dGradWeight matches the float64 reference: ${label}`, () => {
        setWinogradTile(4);
        expect(usesWinogradGradWeight(g), 'conv2dGradWeight takes the Winograd path').to.equal(true);
        const x = rand(g.n * g.cin * g.h * g.w, 11), gy = rand(g.n * g.cout * g.oh * g.ow, 12);
        const gw0 = new Float64Array(g.cout * g.cin * 25);
        tsKernels.conv2dGradWeight(Float64Array.from(x), Float64Array.from(gy), gw0, g);
        // Poisoned outputs, and the second round replays the cached plan: it must give the same bits.
        const rounds = [0, 1].map(() => {
          const gw1 = new Float32Array(gw0.length).fill(NaN);
          ks.conv2dGradWeight!(x, gy, gw1, g);
          return gw1;
        });
        // Largest errors measured on these cases: 1.0e-5 (F(2×2): 2.8e-6), on the batch-21 and 29x29 ones.
        rounds.forEach((gw1, round) => expect(relToMax(gw1, gw0), `conv2dGradWeight round ${round}`).to.be.below(3e-5));
        expect(sameBits(rounds[1]!, rounds[0]!), 'repeated conv2dGradWeight').to.equal(true);
        // The F(4×4) path really ran: F(2×2) rounds differently.
        const gw2 = new Float32Array(gw0.length);
        setWinogradTile(2);
        ks.conv2dGradWeight!(x, gy, gw2, g);
        setWinogradTile(4);
        expect(sameBits(gw2, rounds[0]!), 'conv2dGradWeight under tile 4 differs from F(2x2)').to.equal(false);
      });
    }

    // F(4×4) rounds more in the transformed domain than F(2×2) (bench/winograd-accuracy.ts: 2.4e-6 vs
    // 7.0e-7 relative RMS). Measured on these cases (largest error relative to the largest output):
    // 32 → 64 @16 4.1e-6 with F(4×4), 6.8e-7 with F(2×2), 4.5e-7 direct; 64 → 128 @8 6.7e-6, 1.4e-6,
    // 3.4e-7. At batch 200: 5.6e-6 and 6.5e-6 (F(2×2) 8.9e-7 and 1.1e-6); relative RMS 2.5e-6 and
    // 3.4e-6 (F(2×2) 6.7e-7 and 9.1e-7, direct 2.7e-7 and 2.6e-7).
    for (const g of [geom(2, 32, 16, 16, 64, 5, 5, 1, 2), geom(2, 64, 8, 8, 128, 5, 5, 1, 2)]) {
      it(`float32 error on a CIFAR-shaped layer (${g.cin} → ${g.cout} on ${g.h}x${g.w}) is below 1.2e-5 of the largest output`, () => {
        setWinogradTile(4);
        expect(convErrorVsFloat64(ks, g, 'conv2d', [6, 7])).to.be.below(1.2e-5);
      });
    }

    // The F(4×4) weight gradient rounds about 3× more than F(2×2)'s. Measured on these cases (largest
    // error relative to the largest gradient, threads 1 / 2): 32 → 64 @16 5.7e-6 / 4.3e-6 (F(2×2) 3.8e-6 /
    // 1.6e-6), 64 → 128 @8 4.0e-6 / 3.6e-6 (F(2×2) 1.9e-6 / 1.4e-6). At batch 200: 8.1e-6 and 8.4e-6
    // (F(2×2) 2.6e-6 and 2.3e-6); relative RMS 4.7e-6 and 4.7e-6 (F(2×2) 1.5e-6 and 1.3e-6).
    for (const g of [geom(2, 32, 16, 16, 64, 5, 5, 1, 2), geom(2, 64, 8, 8, 128, 5, 5, 1, 2)]) {
      it(`weight gradient float32 error on a CIFAR-shaped layer (${g.cin} → ${g.cout} on ${g.h}x${g.w}) is below 1e-5 of the largest`, () => {
        setWinogradTile(4);
        expect(convErrorVsFloat64(ks, g, 'conv2dGradWeight', [8, 9])).to.be.below(1e-5);
      });
    }

    it('switching back to tile 2 gives bit-identical F(2x2) results (forward, input and weight gradients)', () => {
      const g = geom(3, 32, 16, 16, 64, 5, 5, 1, 2);
      const x = rand(g.n * g.cin * g.h * g.w, 4), w = rand(g.cout * g.cin * 25, 5), gy = rand(g.n * g.cout * g.oh * g.ow, 6);
      const run = (): [Float32Array, Float32Array, Float32Array] => {
        const y = new Float32Array(gy.length), gx = new Float32Array(x.length), gw = new Float32Array(w.length);
        ks.conv2d!(x, w, y, g);
        ks.conv2dGradInput!(gy, w, gx, g);
        ks.conv2dGradWeight!(x, gy, gw, g);
        return [y, gx, gw];
      };
      setWinogradTile(2);
      const [y2, gx2, gw2] = run();
      setWinogradTile(4);
      const [y4, gx4, gw4] = run();
      setWinogradTile(2);
      const [y2again, gx2again, gw2again] = run();
      setWinogradTile(4);
      expect(sameBits(y2again, y2), 'conv2d').to.equal(true);
      expect(sameBits(gx2again, gx2), 'conv2dGradInput').to.equal(true);
      expect(sameBits(gw2again, gw2), 'conv2dGradWeight').to.equal(true);
      // And tile 4 really took another path (its rounding differs).
      expect(sameBits(y4, y2)).to.equal(false);
      expect(sameBits(gx4, gx2)).to.equal(false);
      expect(sameBits(gw4, gw2)).to.equal(false);
      expect(relToMax(y4, y2)).to.be.below(2e-5);
      expect(relToMax(gw4, gw2)).to.be.below(2e-5);
    });
  });
}
