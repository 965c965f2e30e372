import { expect } from 'chai';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { main } from '../src/cli/main.ts';
import { reportCommand } from '../src/cli/report-command.ts';
import { rocCurve } from '../src/svdd/metrics.ts';
import type { RunResults } from '../src/svdd/run.ts';
import { EXPLAIN_INDEX_FILE, GRADCAM_FILE, REPORT_SECTIONS, latentProjection, readRunDir, renderReport, wantsLogAxis } from '../src/svdd/report/report.ts';
import { pca2, symmetricEigen } from '../src/svdd/report/pca.ts';
import { Frame, binEdges, esc, formatTick, histogramCounts, logTicks, niceNumber, niceTicks } from '../src/svdd/report/svg.ts';

/** Checks that every element opened in an XML fragment is closed in order; returns the tag names seen. */
function checkBalanced(xml: string): string[] {
  const stack: string[] = [];
  const seen: string[] = [];
  const body = xml.replace(/<\?xml[^>]*\?>/g, '').replace(/<!--[\s\S]*?-->/g, '');
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?)>/g;
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = re.exec(body)) !== null) {
    // Text between tags must not contain a raw '<' (unescaped markup would break XML parsers).
    expect(body.slice(last, m.index)).to.not.include('<');
    last = re.lastIndex;
    const [, closing, name, , selfClosing] = m;
    seen.push(name!);
    if (closing) expect(stack.pop(), `closing </${name}>`).to.equal(name);
    else if (!selfClosing) stack.push(name!);
  }
  expect(body.slice(last)).to.not.include('<');
  expect(stack, 'unclosed elements').to.deep.equal([]);
  return seen;
}

function silently<T>(fn: () => Promise<T>): Promise<T> {
  const out = process.stdout.write.bind(process.stdout), err = process.stderr.write.bind(process.stderr);
  process.stdout.write = (() => true) as typeof process.stdout.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  return fn().finally(() => { process.stdout.write = out; process.stderr.write = err; });
}

describe('report: SVG helpers', () => {
  it('niceNumber picks 1, 2, 5 or 10 times a power of ten', () => {
    expect(niceNumber(0.37, true)).to.be.closeTo(0.5, 1e-12);
    expect(niceNumber(1.2, true)).to.equal(1);
    expect(niceNumber(2.6, true)).to.equal(2);
    expect(niceNumber(7.5, true)).to.equal(10);
    expect(niceNumber(2.1, false)).to.equal(5);
    expect(() => niceNumber(0, true)).to.throw(/positive/);
  });

  it('niceTicks are round, evenly spaced and enclose the range', () => {
    expect(niceTicks(0, 1).values).to.deep.equal([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0.13, 9.7).values).to.deep.equal([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(-3.2, 47).values).to.deep.equal([-20, 0, 20, 40, 60]);
    for (const [lo, hi] of [[0.17, 6.24], [12.4, 592.1], [-1e-3, 2e-3], [1e6, 1.0004e6], [0.6, 0.61]] as const) {
      const { values, step } = niceTicks(lo, hi);
      const mantissa = step / 10 ** Math.floor(Math.log10(step));
      expect([1, 2, 5]).to.include(Number(mantissa.toPrecision(6)), `step ${step}`);
      expect(values[0]).to.be.at.most(lo);
      expect(values[values.length - 1]).to.be.at.least(hi);
      expect(values.length).to.be.within(3, 12);
      for (const v of values) expect(Math.abs(v / step - Math.round(v / step))).to.be.below(1e-6);
    }
    // A single value still gets an axis around it; integer axes never step below 1.
    expect(niceTicks(5, 5).values.length).to.be.at.least(2);
    expect(niceTicks(1, 3, 6, 1).values).to.deep.equal([1, 2, 3]);
  });

  it('logTicks are powers of ten (with 2 and 5 on short ranges) and format cleanly', () => {
    expect(logTicks(0.5, 300).values).to.deep.equal([0.1, 1, 10, 100, 1000]);
    expect(logTicks(12.4, 592).values).to.deep.equal([10, 20, 50, 100, 200, 500, 1000]);
    expect(formatTick(0.1 + 0.2, 0.1)).to.equal('0.3');
    expect(formatTick(2, 0.5)).to.equal('2.0');
    expect(formatTick(1e-5, 0)).to.equal('1e-5');
    expect(formatTick(250000, 50000)).to.equal('2.5e5');
  });

  it('bins and counts histograms, including log bins', () => {
    const e = binEdges(0, 10, 5);
    expect(Array.from(e)).to.deep.equal([0, 2, 4, 6, 8, 10]);
    expect(Array.from(histogramCounts([0, 1.99, 2, 9.5, 10, 11, -1], e))).to.deep.equal([2, 1, 0, 0, 2]);
    const l = binEdges(1, 1000, 3, true);
    expect(Array.from(l).map((v) => Number(v.toPrecision(10)))).to.deep.equal([1, 10, 100, 1000]);
    expect(wantsLogAxis([1, 5, 100, 1000])).to.equal(true);
    expect(wantsLogAxis([1, 2, 3])).to.equal(false);
    expect(wantsLogAxis([-1, 2, 3000], 'on')).to.equal(false);
  });

  it('a frame maps data to pixels and renders well-formed, escaped SVG', () => {
    const f = new Frame({ id: 't', title: 'A < B & "C"', x: { label: 'x', min: 0, max: 1, exact: true }, y: { label: 'y', min: 0, max: 10 } });
    expect(f.x.map(0)).to.equal(f.left);
    expect(f.x.map(1)).to.equal(f.right);
    expect(f.y.map(0)).to.equal(f.bottom);
    expect(f.line([0, 0.5, NaN, 1], [0, 5, 1, 10], { color: '#000', name: 'l' })).to.equal(3);
    f.histogram([0, 0.5, 1], [2, 4], '#f00');
    f.scatter([0.1, 0.2], [1, 2], '#00f');
    f.vline(0.5, { color: '#000' }, 'τ = 0.5');
    f.legend([{ label: 'a', color: '#000', kind: 'line' }, { label: 'b', color: '#f00', kind: 'box' }], 'above');
    const svg = f.render(true);
    expect(svg.startsWith('<?xml')).to.equal(true);
    expect(svg).to.include(esc('A < B & "C"'));
    const tags = checkBalanced(svg);
    expect(tags.filter((t) => t === 'polyline')).to.have.length(1);
    expect(svg.match(/data-name="l" points="([^"]*)"/)![1]!.trim().split(/\s+/)).to.have.length(3);
  });
});

describe('report: PCA', () => {
  it('Jacobi eigen-decomposition satisfies A v = λ v with sorted eigenvalues', () => {
    const d = 6;
    const a = new Float64Array(d * d);
    let seed = 7;
    const rnd = (): number => { seed = (seed * 16807) % 2147483647; return seed / 2147483647 - 0.5; };
    for (let i = 0; i < d; i++) for (let j = i; j < d; j++) { const v = rnd(); a[i * d + j] = v; a[j * d + i] = v; }
    const { values, vectors } = symmetricEigen(a, d);
    for (let k = 0; k < d; k++) {
      if (k > 0) expect(values[k]).to.be.at.most(values[k - 1]!);
      for (let i = 0; i < d; i++) {
        let av = 0;
        for (let j = 0; j < d; j++) av += a[i * d + j]! * vectors[j * d + k]!;
        expect(av).to.be.closeTo(values[k]! * vectors[i * d + k]!, 1e-10);
      }
    }
  });

  it('recovers the variance ordering and axes of a rank-2 dataset', () => {
    const d = 10, n = 400;
    // Two orthonormal directions in R^10; the first carries 9× the variance of the second.
    const u = new Float64Array(d), v = new Float64Array(d);
    u[1] = 0.6; u[4] = 0.8;
    v[2] = 1 / Math.SQRT2; v[7] = -1 / Math.SQRT2;
    const offset = Float64Array.from({ length: d }, (_, j) => j - 3);
    const x = new Float64Array(n * d);
    let seed = 11;
    const gauss = (): number => { seed = (seed * 48271) % 2147483647; const a = seed / 2147483647; seed = (seed * 48271) % 2147483647; const b = seed / 2147483647; return Math.sqrt(-2 * Math.log(a)) * Math.cos(2 * Math.PI * b); };
    for (let i = 0; i < n; i++) {
      const a = 3 * gauss(), b = gauss();
      for (let j = 0; j < d; j++) x[i * d + j] = offset[j]! + a * u[j]! + b * v[j]!;
    }
    const p = pca2(x, n, d);
    expect(p.variances[0]).to.be.greaterThan(4 * p.variances[1]);
    expect(p.variances[0] / p.variances[1]).to.be.closeTo(9, 2.5);
    expect(p.variances[0] + p.variances[1]).to.be.closeTo(p.totalVariance, 1e-8 * p.totalVariance);
    const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => { let s = 0; for (let j = 0; j < d; j++) s += a[j]! * b[j]!; return s; };
    expect(Math.abs(dot(p.components[0], u))).to.be.closeTo(1, 1e-2);
    expect(Math.abs(dot(p.components[1], v))).to.be.closeTo(1, 1e-2);
    expect(dot(p.components[0], p.components[1])).to.be.closeTo(0, 1e-10);
    const [mx, my] = p.project(p.mean);
    expect(mx).to.equal(0);
    expect(my).to.equal(0);
    const all = p.projectAll(x, n);
    expect(all).to.have.length(2 * n);
    let s = 0;
    for (let i = 0; i < n; i++) s += all[2 * i]! ** 2;
    expect(s / (n - 1)).to.be.closeTo(p.variances[0], 1e-8 * p.variances[0]);
  });
});

describe('report: svdd report on a tiny run', function () {
  this.timeout(180000);
  let tmp: string;
  let run: string;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'svdd-report-'));
    run = join(tmp, 'run');
    const rc = await silently(() => main(['train', '--preset', 'quick', '--subset', '200', '--test-subset', '300', '--ae-epochs', '1', '--epochs', '1', '--threshold', 'adaptive', '--backend', 'ts', '--out', run]));
    expect(rc).to.equal(0);
    await silently(() => reportCommand([run, '--backend', 'ts']));
  });

  after(() => { rmSync(tmp, { recursive: true, force: true }); });

  const html = (): string => readFileSync(join(run, 'report.html'), 'utf8');

  it('has every section, in order, and no network references', () => {
    const page = html();
    let at = -1;
    for (const h of REPORT_SECTIONS) {
      const i = page.indexOf(`>${esc(h)}</h2>`);
      expect(i, h).to.be.greaterThan(at);
      at = i;
    }
    const urls = page.match(/https?:\/\/[^\s"'<>)]*/g) ?? [];
    expect(urls.filter((u) => u !== 'http://www.w3.org/2000/svg')).to.deep.equal([]);
    expect(page).to.not.match(/<script|<link|@import|url\(\s*['"]?(?!#)/i);
    expect(page).to.include('ORACLE');
    expect(page).to.include('all-anomalous rule');
    expect(page).to.include('Mahalanobis AUROC');
    expect(page).to.not.include('Codes do not reproduce');
    expect(page).to.include('svdd explain');
  });

  it('embeds PNGs that decode', () => {
    const imgs = [...html().matchAll(/<img [^>]*src="data:image\/png;base64,([A-Za-z0-9+/=]+)"/g)];
    expect(imgs.length).to.equal(2);
    for (const m of imgs) {
      const png = PNG.sync.read(Buffer.from(m[1]!, 'base64'));
      expect(png.width).to.be.greaterThan(28);
    }
  });

  it('inline SVGs are well formed and the ROC polyline has one point per ROC point', () => {
    const page = html();
    const svgs = page.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
    expect(svgs.length).to.equal(7);
    for (const s of svgs) checkBalanced(s);
    const results = JSON.parse(readFileSync(join(run, 'results.json'), 'utf8')) as RunResults;
    const labels = results.scores.map((s) => s.label);
    for (const [key, scores] of [['score', results.scores.map((s) => s.score)], ['mahalanobis', results.scores.map((s) => s.mahalanobis!)]] as const) {
      const m = page.match(new RegExp(`data-name="roc-${key}" points="([^"]*)"`));
      expect(m, key).to.not.equal(null);
      expect(m![1]!.trim().split(/\s+/).length).to.equal(rocCurve(labels, scores).length);
    }
    expect(page).to.match(/ROC curve: AUROC \d+\.\d\d%/);
    expect(page).to.match(/Precision-recall curve: AP \d+\.\d\d%/);
  });

  it('writes standalone SVG files with the expected marks', () => {
    const dir = join(run, 'plots');
    expect(readdirSync(dir).sort()).to.deep.equal(['hist-mahalanobis.svg', 'hist-score.svg', 'loss-pretrain.svg', 'loss-train.svg', 'pca.svg', 'pr.svg', 'roc.svg']);
    for (const name of readdirSync(dir)) {
      const svg = readFileSync(join(dir, name), 'utf8');
      expect(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"'), name).to.equal(true);
      const tags = checkBalanced(svg);
      expect(tags, name).to.include('text');
    }
    const read = (n: string): string => readFileSync(join(dir, n), 'utf8');
    expect(read('roc.svg').match(/<polyline/g)!.length).to.be.at.least(3);
    expect(read('hist-score.svg')).to.match(/<path d="M[^"]+Z" fill="#0072B2"/);
    expect(read('hist-score.svg')).to.include('τ quantile');
    expect(read('loss-train.svg')).to.include('<circle');
    // 300 test codes as points, plus the legend's two dots.
    expect(read('pca.svg').match(/<circle/g)!.length).to.equal(300 + 2);
    expect(read('pca.svg')).to.include('center c');
  });

  it('recomputes the latent codes of exactly the run\'s test images', async () => {
    const lat = await latentProjection(readRunDir(run), { backend: 'ts' });
    expect(lat.count).to.equal(300);
    expect(lat.scoreMismatch).to.not.equal(null);
    expect(lat.scoreMismatch!).to.be.below(1e-4);
  });

  it('embeds Grad-CAM when present, works without the latent codes, and warns loudly on collapse', async () => {
    mkdirSync(join(run, 'explain'), { recursive: true });
    copyFileSync(join(run, 'anomalies.png'), join(run, GRADCAM_FILE));
    writeFileSync(join(run, EXPLAIN_INDEX_FILE), '{}\n'); // explain's last file: the explanation is finished
    await silently(() => reportCommand([run, '--no-latent', '--log-x', 'on']));
    const page = html();
    expect([...page.matchAll(/src="data:image\/png;base64,/g)]).to.have.length(3);
    expect(page).to.include('--no-latent');
    expect(existsSync(join(run, 'plots', 'pca.svg')), 'stale pca.svg removed').to.equal(false);
    expect(page).to.include('SVDD distance score (log scale)');

    const r = readRunDir(run);
    r.results.trainingCollapse = { detected: true, reason: 'training distances: all 180 scores are equal (0.01)' };
    const bad = renderReport(r, { error: 'no data' }).html;
    expect(bad).to.match(/class="warn"><strong>⚠ Collapse detected/);
    expect(bad).to.include('Could not compute the test latent codes: no data');
  });

  it('refuses a directory that is not a run', async () => {
    let err: unknown;
    try { await reportCommand([tmp]); } catch (e) { err = e; }
    expect(String(err)).to.match(/no results\.json/);
  });
});
