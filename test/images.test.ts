import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { decodePng, heatmapRgb, imageGridPng, imagePng, overlay, readPng, viridis, writePngAtomic } from '../src/svdd/images.ts';

describe('images', () => {
  let dir = '';
  before(() => { dir = mkdtempSync(join(tmpdir(), 'svdd-images-')); });
  after(() => { rmSync(dir, { recursive: true, force: true }); });

  it('grayscale grid: size, padding and per-image min-max normalisation', () => {
    // 3 images of 2×3, values 0..5 scaled differently so normalisation must undo the scale.
    const h = 2, w = 3, count = 3;
    const data = new Float32Array(count * h * w);
    for (let n = 0; n < count; n++) for (let i = 0; i < h * w; i++) data[n * h * w + i] = (n + 1) * 10 * i - 7;
    const bytes = imageGridPng(data, count, 1, h, w, { cols: 2, pad: 1, padValue: 1 });
    const png = PNG.sync.read(Buffer.from(bytes));
    expect(png.width).to.equal(2 * w + 3 * 1);
    expect(png.height).to.equal(2 * h + 3 * 1);
    expect(png.color).to.equal(false);
    const px = (x: number, y: number): number => png.data[4 * (y * png.width + x)]!;
    expect(px(0, 0)).to.equal(255); // padding
    // Image 0 at (1, 1): values i/5 → round(255·i/5).
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) expect(px(1 + x, 1 + y)).to.equal(Math.round((255 * (y * w + x)) / 5));
    // Image 1 at (1 + w + 1, 1): same after normalisation.
    expect(px(1 + w + 1 + 2, 1 + 1)).to.equal(255);
    // Image 2 at (1, 1 + h + 1); the empty 4th cell is padding.
    expect(px(1, 1 + h + 1)).to.equal(0);
    expect(px(1 + w + 1, 1 + h + 1)).to.equal(255);
  });

  it('RGB grid with normalize none clamps and keeps channels', () => {
    const h = 1, w = 2;
    // One CHW image: R = [0, 1], G = [0.5, 2], B = [-1, 0.2].
    const data = new Float64Array([0, 1, 0.5, 2, -1, 0.2]);
    const png = PNG.sync.read(Buffer.from(imageGridPng(data, 1, 3, h, w, { pad: 0, normalize: 'none' })));
    expect([png.width, png.height, png.color]).to.deep.equal([2, 1, true]);
    expect(Array.from(png.data.subarray(0, 8))).to.deep.equal([0, 128, 0, 255, 255, 255, 51, 255]);
  });

  it('rejects mismatched sizes', () => {
    expect(() => imageGridPng(new Float32Array(5), 1, 1, 2, 3)).to.throw(/expected 1×1×2×3/);
    expect(() => imageGridPng(new Float32Array(12), 2, 2, 1, 3)).to.throw(/channels must be 1 or 3/);
  });

  it('readPng round trip for grayscale and RGB (exact at 8 bits)', () => {
    const h = 4, w = 5;
    const gray = Float32Array.from({ length: h * w }, (_, i) => (i * 13) % 256 / 255);
    const gPath = join(dir, 'gray.png');
    writePngAtomic(gPath, imagePng(gray, 1, h, w));
    const g = readPng(gPath);
    expect([g.width, g.height, g.channels]).to.deep.equal([w, h, 1]);
    for (let i = 0; i < gray.length; i++) expect(g.data[i]).to.equal(gray[i]);

    const rgb = Float32Array.from({ length: 3 * h * w }, (_, i) => (i * 37) % 256 / 255);
    const cPath = join(dir, 'rgb.png');
    writePngAtomic(cPath, imagePng(rgb, 3, h, w));
    const c = readPng(cPath);
    expect([c.width, c.height, c.channels]).to.deep.equal([w, h, 3]);
    for (let i = 0; i < rgb.length; i++) expect(c.data[i]).to.equal(rgb[i]);
    expect(existsSync(`${cPath}.tmp-${process.pid}`)).to.equal(false);
  });

  it('readPng drops alpha from RGBA', () => {
    const png = new PNG({ width: 1, height: 1 });
    png.data = Buffer.from([10, 20, 30, 40]);
    const path = join(dir, 'rgba.png');
    writeFileSync(path, PNG.sync.write(png));
    const img = readPng(path);
    expect(img.channels).to.equal(3);
    expect(Array.from(img.data)).to.deep.equal([10 / 255, 20 / 255, 30 / 255].map(Math.fround));
  });

  it('corrupt or missing PNG gives one clear error naming the file', () => {
    const good = readFileSync(join(dir, 'gray.png'));
    const bad = join(dir, 'truncated.png');
    writeFileSync(bad, good.subarray(0, 30));
    expect(() => readPng(bad)).to.throw(Error, /cannot decode PNG .*truncated\.png/);
    const junk = join(dir, 'junk.png');
    writeFileSync(junk, 'this is not a png');
    expect(() => readPng(junk)).to.throw(Error, /cannot decode PNG .*junk\.png/);
    expect(() => readPng(join(dir, 'nope.png'))).to.throw(Error, /cannot read PNG .*nope\.png: ENOENT/);
    expect(() => decodePng(new Uint8Array(3))).to.throw(/cannot decode PNG <buffer>/);
  });

  it('viridis endpoints and heatmap / overlay layout', () => {
    const close = (a: number[], b: number[], tol: number): void => a.forEach((v, i) => expect(v).to.be.closeTo(b[i]!, tol));
    // matplotlib viridis(0), viridis(0.5), viridis(1); the polynomial is within 0.013 of the table.
    close(viridis(0), [0.267004, 0.004874, 0.329415], 0.013);
    close(viridis(0.5), [0.127568, 0.566949, 0.550556], 0.013);
    close(viridis(1), [0.993248, 0.906157, 0.143936], 0.013);
    expect(viridis(-3)).to.deep.equal(viridis(0));
    expect(viridis(7)).to.deep.equal(viridis(1));

    const heat = [0, 1];
    const rgb = heatmapRgb(heat);
    expect(rgb.length).to.equal(6);
    expect(rgb[0]).to.be.closeTo(viridis(0)[0], 1e-6); // R plane first (CHW)
    expect(rgb[3]).to.be.closeTo(viridis(1)[1], 1e-6);

    const img = new Float32Array([0.2, 0.8]);
    const o = overlay(img, 1, 1, 2, heat, 0.25);
    expect(o.length).to.equal(6);
    expect(o[1]).to.be.closeTo(0.75 * 0.8 + 0.25 * viridis(1)[0], 1e-6);
    expect(o[2 * 2]).to.be.closeTo(0.75 * 0.2 + 0.25 * viridis(0)[2], 1e-6);
    expect(() => overlay(img, 1, 1, 2, [0.5], 0.5)).to.throw(/heatmap has 1 values/);
  });
});
