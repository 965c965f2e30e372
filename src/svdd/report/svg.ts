/**
 * Small typed SVG plotting helpers for the run report: nice axis ticks (linear and log), a plot
 * frame mapping data to pixels, and the few marks the report needs (lines, step histograms,
 * scatter points, reference lines, legend).
 *
 * Hand-written rather than a charting library: the report must be one self-contained HTML file
 * that renders without scripts or network access, so browser charting libraries (which draw at
 * view time with JavaScript) do not fit, and the handful of static marks needed here is less code
 * than adapting a server-side renderer and adds no dependency to audit.
 */

/** Escapes text for XML/HTML content and attribute values. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** Coordinates rounded to 0.01 px: sub-pixel precision is invisible and full doubles triple the file size. */
export const px = (v: number): string => String(Math.round(v * 100) / 100);

/**
 * Heckbert's "nice number": a value of the form {1, 2, 5, 10} × 10^k close to x (rounded) or
 * not below x (not rounded).
 */
export function niceNumber(x: number, round: boolean): number {
  if (!(x > 0) || !Number.isFinite(x)) throw new Error(`niceNumber: expected a positive finite number, got ${x}`);
  const exp = Math.floor(Math.log10(x));
  const f = x / 10 ** exp;
  let nf: number;
  if (round) nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  else nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nf * 10 ** exp;
}

// Multiples of a step like 0.1 accumulate binary error (0.30000000000000004); 12 significant
// digits removes it without touching any value a tick could mean.
const clean = (v: number): number => (v === 0 ? 0 : Number(v.toPrecision(12)));

export interface Ticks {
  /** Tick values, ascending; the first and last bound the data range. */
  values: number[];
  /** Spacing of linear ticks (0 for log ticks). */
  step: number;
}

/** About `target` evenly spaced nice ticks whose ends enclose [min, max]. */
export function niceTicks(min: number, max: number, target = 5, minStep = 0): Ticks {
  if (!Number.isFinite(min) || !Number.isFinite(max)) throw new Error(`niceTicks: non-finite range [${min}, ${max}]`);
  if (max < min) [min, max] = [max, min];
  if (max === min) {
    // A degenerate range still needs an axis; widen it by a nice amount around the value.
    const half = min === 0 ? 1 : niceNumber(Math.abs(min) / 10, true);
    min -= half;
    max += half;
  }
  const range = niceNumber(max - min, false);
  const step = Math.max(minStep, niceNumber(range / Math.max(1, target - 1), true));
  const lo = Math.floor(min / step + 1e-9), hi = Math.ceil(max / step - 1e-9);
  const values: number[] = [];
  for (let k = lo; k <= hi; k++) values.push(clean(k * step));
  return { values, step };
}

/** Powers of ten enclosing [min, max] (both > 0), with 2× and 5× ticks when the range spans few decades. */
export function logTicks(min: number, max: number): Ticks {
  if (!(min > 0 && max > 0) || !Number.isFinite(min) || !Number.isFinite(max)) throw new Error(`logTicks: range must be positive and finite, got [${min}, ${max}]`);
  if (max < min) [min, max] = [max, min];
  const lo = Math.floor(Math.log10(min) + 1e-9);
  let hi = Math.ceil(Math.log10(max) - 1e-9);
  if (hi === lo) hi = lo + 1;
  const values: number[] = [];
  const mult = hi - lo <= 2 ? [1, 2, 5] : [1];
  for (let e = lo; e <= hi; e++) for (const m of mult) if (e < hi || m === 1) values.push(clean(m * 10 ** e));
  // Thin very wide ranges so labels do not overlap.
  const every = Math.ceil(values.length / 9);
  if (every > 1) return { values: values.filter((_, i) => i % every === 0 || i === values.length - 1), step: 0 };
  return { values, step: 0 };
}

/** Tick label: as few decimals as the step needs, exponent notation for very large or small values. */
export function formatTick(v: number, step: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) {
    const [m, e] = v.toExponential().split('e') as [string, string];
    return `${clean(Number(m))}e${Number(e)}`;
  }
  if (step > 0) {
    const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    return v.toFixed(Math.min(decimals, 6));
  }
  return String(clean(v));
}

export interface AxisSpec {
  label: string;
  /** Data range to show; ticks may extend it to nice values. */
  min: number;
  max: number;
  log?: boolean;
  /** Keep exactly [min, max] instead of extending to the outer ticks (e.g. probabilities in [0, 1]). */
  exact?: boolean;
  ticks?: number;
  /** Ticks at whole numbers only (e.g. epochs). */
  integer?: boolean;
}

export interface Scale {
  domain: [number, number];
  log: boolean;
  ticks: Ticks;
  label: string;
  /** Data value to pixel coordinate. */
  map(v: number): number;
}

function makeScale(spec: AxisSpec, r0: number, r1: number): Scale {
  const log = spec.log ?? false;
  let min = spec.min, max = spec.max;
  if (log && !(min > 0)) throw new Error(`log axis '${spec.label}' needs a positive minimum, got ${min}`);
  const ticks = log ? logTicks(min, max) : niceTicks(min, max, spec.ticks ?? 6, spec.integer ? 1 : 0);
  if (!spec.exact) { min = ticks.values[0]!; max = ticks.values[ticks.values.length - 1]!; }
  else ticks.values = ticks.values.filter((t) => t >= min - 1e-12 && t <= max + 1e-12);
  const f = log ? Math.log10 : (v: number) => v;
  const a = f(min), b = f(max);
  const span = b - a || 1;
  return {
    domain: [min, max], log, ticks, label: spec.label,
    map: (v: number) => r0 + ((f(v) - a) / span) * (r1 - r0),
  };
}

export interface FrameOptions {
  /** Unique within a page: prefixes element ids (the clip path). */
  id: string;
  title: string;
  x: AxisSpec;
  y: AxisSpec;
  width?: number;
  height?: number;
  /** Reserve a band under the title for a one-row legend, so no legend covers data or labels. */
  legendAbove?: boolean;
  /** Rows reserved for that legend (default 1); its items wrap onto them. */
  legendRows?: number;
}

const MARGIN = { left: 66, right: 16, top: 34, topWithLegend: 58, bottom: 46 };
/** Height of one more legend row above the plot. */
const LEGEND_ROW = 20;

/** Pixel size of the plot area inside a frame of the given size (to set equal-aspect ranges before building it). */
export function plotAreaSize(width = 560, height = 360, legendAbove = false): { width: number; height: number } {
  return { width: width - MARGIN.left - MARGIN.right, height: height - (legendAbove ? MARGIN.topWithLegend : MARGIN.top) - MARGIN.bottom };
}

export interface LineStyle {
  color: string; width?: number; dash?: string; opacity?: number;
  /** Written as data-name, so tests and scripts can find a series in the SVG. */
  name?: string;
}

export interface LegendItem { label: string; color: string; kind: 'line' | 'box' | 'dot' | 'cross'; dash?: string }

export type LegendPlace = 'top-right' | 'top-left' | 'bottom-right' | 'bottom-left' | 'above';

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

/** A plot area with two axes; marks are SVG fragments drawn in data coordinates and clipped to it. */
export class Frame {
  readonly id: string;
  readonly width: number;
  readonly height: number;
  readonly left = MARGIN.left;
  readonly right: number;
  readonly top: number;
  readonly bottom: number;
  readonly x: Scale;
  readonly y: Scale;
  readonly title: string;
  private readonly marks: string[] = [];
  private readonly overlays: string[] = [];

  constructor(opts: FrameOptions) {
    this.id = opts.id.replace(/[^A-Za-z0-9_-]/g, '_');
    this.width = opts.width ?? 560;
    this.height = opts.height ?? 360;
    this.right = this.width - MARGIN.right;
    this.top = opts.legendAbove ? MARGIN.topWithLegend + LEGEND_ROW * ((opts.legendRows ?? 1) - 1) : MARGIN.top;
    this.bottom = this.height - MARGIN.bottom;
    this.title = opts.title;
    this.x = makeScale(opts.x, this.left, this.right);
    this.y = makeScale(opts.y, this.bottom, this.top);
  }

  /** Polyline through the points (non-finite points are skipped); returns the number of points drawn. */
  line(xs: ArrayLike<number>, ys: ArrayLike<number>, style: LineStyle): number {
    const pts: string[] = [];
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i]!, y = ys[i]!;
      if (!Number.isFinite(x) || !Number.isFinite(y) || (this.x.log && x <= 0) || (this.y.log && y <= 0)) continue;
      pts.push(`${px(this.x.map(x))},${px(this.y.map(y))}`);
    }
    if (pts.length === 0) return 0;
    this.marks.push(`<polyline fill="none" stroke="${style.color}" stroke-width="${style.width ?? 2}"${style.dash ? ` stroke-dasharray="${style.dash}"` : ''}${style.opacity !== undefined ? ` stroke-opacity="${style.opacity}"` : ''} stroke-linejoin="round"${style.name ? ` data-name="${esc(style.name)}"` : ''} points="${pts.join(' ')}"/>`);
    // A single point draws nothing as a line, so it gets a visible marker too.
    if (pts.length === 1) {
      const [cx, cy] = pts[0]!.split(',');
      this.marks.push(`<circle cx="${cx}" cy="${cy}" r="3.5" fill="${style.color}"/>`);
    }
    return pts.length;
  }

  /** Markers at each point (for epoch-wise curves with few epochs). */
  dots(xs: ArrayLike<number>, ys: ArrayLike<number>, color: string, r = 2.5, opacity = 1): void {
    const out: string[] = [];
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i]!, y = ys[i]!;
      if (!Number.isFinite(x) || !Number.isFinite(y) || (this.x.log && x <= 0) || (this.y.log && y <= 0)) continue;
      out.push(`<circle cx="${px(this.x.map(x))}" cy="${px(this.y.map(y))}" r="${r}"/>`);
    }
    // Unclipped: a marker on the frame edge (first or last epoch) would otherwise show as half a dot.
    if (out.length > 0) this.overlays.push(`<g fill="${color}"${opacity < 1 ? ` fill-opacity="${opacity}"` : ''}>${out.join('')}</g>`);
  }

  /** A filled step outline of a histogram: `edges` has one more entry than `heights`. */
  histogram(edges: ArrayLike<number>, heights: ArrayLike<number>, color: string, fillOpacity = 0.35): void {
    const y0 = px(this.y.map(this.y.domain[0]));
    let d = `M${px(this.x.map(edges[0]!))},${y0}`;
    for (let i = 0; i < heights.length; i++) {
      const y = px(this.y.map(heights[i]!));
      d += ` V${y} H${px(this.x.map(edges[i + 1]!))}`;
    }
    d += ` V${y0} Z`;
    this.marks.push(`<path d="${d}" fill="${color}" fill-opacity="${fillOpacity}" stroke="${color}" stroke-width="1.5"/>`);
  }

  /** One small circle per point, grouped so the style is written once. */
  scatter(xs: ArrayLike<number>, ys: ArrayLike<number>, color: string, r = 2.2, opacity = 0.6): number {
    const out: string[] = [];
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i]!, y = ys[i]!;
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      out.push(`<circle cx="${px(this.x.map(x))}" cy="${px(this.y.map(y))}" r="${r}"/>`);
    }
    this.marks.push(`<g fill="${color}" fill-opacity="${opacity}">${out.join('')}</g>`);
    return out.length;
  }

  /** A cross marker with a white halo so it stays visible on top of dense scatter. */
  cross(x: number, y: number, color: string, label?: string): void {
    const cx = this.x.map(x), cy = this.y.map(y), s = 8;
    const path = `M${px(cx - s)},${px(cy - s)} L${px(cx + s)},${px(cy + s)} M${px(cx - s)},${px(cy + s)} L${px(cx + s)},${px(cy - s)}`;
    this.overlays.push(`<path d="${path}" stroke="#fff" stroke-width="6"/><path d="${path}" stroke="${color}" stroke-width="3"/>`);
    if (label) this.overlays.push(`<text x="${px(cx + s + 4)}" y="${px(cy - s)}" font-size="13" font-weight="bold" fill="${color}" stroke="#fff" stroke-width="3" paint-order="stroke">${esc(label)}</text>`);
  }

  /** A vertical reference line across the plot, labelled at the top (labels stagger by `slot`). */
  vline(x: number, style: LineStyle, label?: string, slot = 0): void {
    if (!Number.isFinite(x) || (this.x.log && x <= 0)) return;
    const X = this.x.map(x);
    if (X < this.left - 0.5 || X > this.right + 0.5) return;
    this.overlays.push(`<line x1="${px(X)}" x2="${px(X)}" y1="${this.top}" y2="${this.bottom}" stroke="${style.color}" stroke-width="${style.width ?? 1.5}"${style.dash ? ` stroke-dasharray="${style.dash}"` : ''}/>`);
    if (label) {
      const anchorEnd = X > (this.left + this.right) / 2;
      this.overlays.push(`<text x="${px(X + (anchorEnd ? -4 : 4))}" y="${this.top + 14 + 15 * slot}" font-size="11.5" fill="${style.color}" text-anchor="${anchorEnd ? 'end' : 'start'}" stroke="#fff" stroke-width="3" paint-order="stroke">${esc(label)}</text>`);
    }
  }

  /** A horizontal reference line across the plot. */
  hline(y: number, style: LineStyle, label?: string): void {
    if (!Number.isFinite(y) || (this.y.log && y <= 0)) return;
    const Y = this.y.map(y);
    this.overlays.push(`<line x1="${this.left}" x2="${this.right}" y1="${px(Y)}" y2="${px(Y)}" stroke="${style.color}" stroke-width="${style.width ?? 1}"${style.dash ? ` stroke-dasharray="${style.dash}"` : ''}/>`);
    if (label) this.overlays.push(`<text x="${this.left + 6}" y="${px(Y - 5)}" font-size="11.5" fill="${style.color}" stroke="#fff" stroke-width="3" paint-order="stroke">${esc(label)}</text>`);
  }

  /** A filled bar from y = base to y = value over [x0, x1] in data coordinates. */
  bar(x0: number, x1: number, value: number, color: string, base = this.y.domain[0], name?: string): void {
    if (![x0, x1, value, base].every(Number.isFinite)) return;
    const X0 = this.x.map(x0), X1 = this.x.map(x1), Y0 = this.y.map(base), Y1 = this.y.map(value);
    this.marks.push(`<rect x="${px(Math.min(X0, X1))}" y="${px(Math.min(Y0, Y1))}" width="${px(Math.abs(X1 - X0))}" height="${px(Math.abs(Y1 - Y0))}" fill="${color}" fill-opacity="0.8"${name ? ` data-name="${esc(name)}"` : ''}/>`);
  }

  /** A vertical error bar from lo to hi at x, with caps. */
  errorBar(x: number, lo: number, hi: number, color = '#222'): void {
    if (![x, lo, hi].every(Number.isFinite)) return;
    const X = this.x.map(x), Ylo = this.y.map(lo), Yhi = this.y.map(hi), c = 3;
    this.overlays.push(`<path d="M${px(X)},${px(Ylo)} V${px(Yhi)} M${px(X - c)},${px(Ylo)} H${px(X + c)} M${px(X - c)},${px(Yhi)} H${px(X + c)}" stroke="${color}" stroke-width="1.2" fill="none"/>`);
  }

  /** A short horizontal tick over [x0, x1] at y (a reference value drawn over bars). */
  tick(x0: number, x1: number, y: number, color: string): void {
    if (![x0, x1, y].every(Number.isFinite)) return;
    const Y = px(this.y.map(y));
    this.overlays.push(`<line x1="${px(this.x.map(x0))}" x2="${px(this.x.map(x1))}" y1="${Y}" y2="${Y}" stroke="#fff" stroke-width="5"/><line x1="${px(this.x.map(x0))}" x2="${px(this.x.map(x1))}" y1="${Y}" y2="${Y}" stroke="${color}" stroke-width="2.5"/>`);
  }

  /** Points marked with a ring (e.g. operating points on a ROC curve). */
  ring(x: number, y: number, color: string): void {
    if (!Number.isFinite(x) || !Number.isFinite(y)) return;
    this.overlays.push(`<circle cx="${px(this.x.map(x))}" cy="${px(this.y.map(y))}" r="5.5" fill="#fff" fill-opacity="0.7" stroke="${color}" stroke-width="2.5"/>`);
  }

  legend(items: LegendItem[], place: LegendPlace = 'top-right'): void {
    if (items.length === 0) return;
    const rowH = 18, pad = 8, sw = 22;
    if (place === 'above') { this.legendRow(items, sw); return; }
    const textW = Math.max(...items.map((it) => it.label.length)) * 6.6;
    const w = pad * 2 + sw + 6 + textW, h = pad * 2 + rowH * items.length - 4;
    const x0 = place.endsWith('right') ? this.right - w - 8 : this.left + 8;
    const y0 = place.startsWith('top') ? this.top + 8 : this.bottom - h - 8;
    const rows = items.map((it, i) => {
      const cy = y0 + pad + rowH * i + 6;
      const sx = x0 + pad;
      const sym = this.symbol(it, sx, cy, sw);
      return `${sym}<text x="${px(sx + sw + 6)}" y="${px(cy + 4)}" font-size="12">${esc(it.label)}</text>`;
    });
    this.overlays.push(`<g class="legend"><rect x="${px(x0)}" y="${px(y0)}" width="${px(w)}" height="${px(h)}" rx="4" fill="#fff" fill-opacity="0.88" stroke="#bbb"/>${rows.join('')}</g>`);
  }

  private symbol(it: LegendItem, sx: number, cy: number, sw: number): string {
    if (it.kind === 'line') return `<line x1="${px(sx)}" x2="${px(sx + sw)}" y1="${px(cy)}" y2="${px(cy)}" stroke="${it.color}" stroke-width="2.5"${it.dash ? ` stroke-dasharray="${it.dash}"` : ''}/>`;
    if (it.kind === 'box') return `<rect x="${px(sx + 3)}" y="${px(cy - 6)}" width="${sw - 6}" height="12" fill="${it.color}" fill-opacity="0.35" stroke="${it.color}" stroke-width="1.5"/>`;
    if (it.kind === 'dot') return `<circle cx="${px(sx + sw / 2)}" cy="${px(cy)}" r="4" fill="${it.color}"/>`;
    return `<path d="M${px(sx + 6)},${px(cy - 5)} L${px(sx + 16)},${px(cy + 5)} M${px(sx + 6)},${px(cy + 5)} L${px(sx + 16)},${px(cy - 5)}" stroke="${it.color}" stroke-width="3"/>`;
  }

  /** The legend as centred rows in the band between title and plot (items wrap to the plot's width). */
  private legendRow(items: LegendItem[], sw: number): void {
    const widths = items.map((it) => sw + 6 + it.label.length * 6.6 + 18);
    const rows: number[][] = [[]];
    let used = 0;
    items.forEach((_, i) => {
      if (used + widths[i]! > this.right - this.left && rows.at(-1)!.length > 0) { rows.push([]); used = 0; }
      rows.at(-1)!.push(i);
      used += widths[i]!;
    });
    const out: string[] = [];
    rows.forEach((row, r) => {
      const total = row.reduce((a, i) => a + widths[i]!, 0);
      let x = Math.max(this.left, (this.left + this.right) / 2 - total / 2);
      const cy = MARGIN.top + 9 + LEGEND_ROW * r;
      for (const i of row) {
        const it = items[i]!;
        out.push(`${this.symbol(it, x, cy, sw)}<text x="${px(x + sw + 6)}" y="${px(cy + 4)}" font-size="12">${esc(it.label)}</text>`);
        x += widths[i]!;
      }
    });
    this.overlays.push(`<g class="legend">${out.join('')}</g>`);
  }

  private axes(): string {
    const out: string[] = [];
    const { left, right, top, bottom } = this;
    for (const t of this.x.ticks.values) {
      const X = px(this.x.map(t));
      out.push(`<line x1="${X}" x2="${X}" y1="${top}" y2="${bottom}" stroke="#e6e6e6"/>`);
      out.push(`<line x1="${X}" x2="${X}" y1="${bottom}" y2="${bottom + 5}" stroke="#333"/>`);
      out.push(`<text x="${X}" y="${bottom + 18}" font-size="11.5" text-anchor="middle" fill="#333">${esc(formatTick(t, this.x.ticks.step))}</text>`);
    }
    for (const t of this.y.ticks.values) {
      const Y = px(this.y.map(t));
      out.push(`<line x1="${left}" x2="${right}" y1="${Y}" y2="${Y}" stroke="#e6e6e6"/>`);
      out.push(`<line x1="${left - 5}" x2="${left}" y1="${Y}" y2="${Y}" stroke="#333"/>`);
      out.push(`<text x="${left - 8}" y="${px(this.y.map(t) + 4)}" font-size="11.5" text-anchor="end" fill="#333">${esc(formatTick(t, this.y.ticks.step))}</text>`);
    }
    out.push(`<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#333"/>`);
    out.push(`<text x="${px((left + right) / 2)}" y="${this.height - 8}" font-size="13" text-anchor="middle">${esc(this.x.label + (this.x.log ? ' (log scale)' : ''))}</text>`);
    out.push(`<text transform="translate(15 ${px((top + bottom) / 2)}) rotate(-90)" font-size="13" text-anchor="middle">${esc(this.y.label + (this.y.log ? ' (log scale)' : ''))}</text>`);
    out.push(`<text x="${px(this.width / 2)}" y="21" font-size="14.5" font-weight="bold" text-anchor="middle">${esc(this.title)}</text>`);
    return out.join('');
  }

  /**
   * The finished SVG. Standalone files get an XML declaration and the namespace (required for an
   * .svg file to open on its own); the same markup is valid inline in HTML5.
   */
  render(standalone = false): string {
    const clip = `${this.id}-clip`;
    const head = `${standalone ? '<?xml version="1.0" encoding="UTF-8"?>\n' : ''}<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${this.width} ${this.height}" width="${this.width}" height="${this.height}" ${FONT} role="img" aria-label="${esc(this.title)}">`;
    return `${head}<title>${esc(this.title)}</title><defs><clipPath id="${clip}"><rect x="${this.left}" y="${this.top}" width="${this.right - this.left}" height="${this.bottom - this.top}"/></clipPath></defs>`
      + `<rect width="100%" height="100%" fill="#fff"/>${this.axes()}<g clip-path="url(#${clip})">${this.marks.join('')}</g>${this.overlays.join('')}</svg>${standalone ? '\n' : ''}`;
  }
}

/** Bin edges: `bins` equal-width bins over [min, max], equal in log10 when `log`. */
export function binEdges(min: number, max: number, bins: number, log = false): Float64Array {
  if (!(bins >= 1)) throw new Error(`binEdges: need at least one bin, got ${bins}`);
  if (log && !(min > 0)) throw new Error(`binEdges: log bins need a positive minimum, got ${min}`);
  if (max <= min) max = min + (min === 0 ? 1 : Math.abs(min) * 1e-6);
  const a = log ? Math.log10(min) : min, b = log ? Math.log10(max) : max;
  const e = new Float64Array(bins + 1);
  for (let i = 0; i <= bins; i++) { const t = a + ((b - a) * i) / bins; e[i] = log ? 10 ** t : t; }
  e[0] = min;
  e[bins] = max;
  return e;
}

/** Counts per bin (values at the last edge fall in the last bin; values outside are dropped). */
export function histogramCounts(values: ArrayLike<number>, edges: ArrayLike<number>): Float64Array {
  const nb = edges.length - 1;
  const counts = new Float64Array(nb);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!(v >= edges[0]! && v <= edges[nb]!)) continue;
    let lo = 0, hi = nb;
    while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (v >= edges[mid]!) lo = mid; else hi = mid; }
    counts[lo]!++;
  }
  return counts;
}
