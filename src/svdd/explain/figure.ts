/**
 * Readable explanation figures as PNG: a caption that names the score, the methods and the
 * scaling; one column per image headed by its index (or file), true class, score and decision at
 * τ; one row per method with a colour bar; images upscaled nearest-neighbour so pixels stay
 * pixels. Drawn on a small RGB canvas with the bitmap font in font.ts.
 *
 * Colours: attribution values v are shown relative to a range m (the map's own max |v| with
 * per-image scaling, the row's max |v| over all images with shared scaling): red to yellow where
 * v > 0 (the pixel raises the score: evidence of anomaly), blue to cyan where v < 0, blended over
 * the dimmed image with opacity |v|/m, so a zero map shows the bare image and a near-zero one is
 * never painted at full strength unless its own max is what the scale is.
 */
import { imagePng } from '../images.ts';
import { ADVANCE, GLYPH_H, glyph } from './font.ts';

export type RGB = readonly [number, number, number];

export class Canvas {
  /** Planar RGB, values in [0, 1] (the layout imagePng takes). */
  readonly data: Float32Array;
  constructor(readonly width: number, readonly height: number, background: RGB = [1, 1, 1]) {
    this.data = new Float32Array(3 * width * height);
    this.fillRect(0, 0, width, height, background);
  }

  setPixel(x: number, y: number, c: RGB): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const plane = this.width * this.height, i = y * this.width + x;
    this.data[i] = c[0]; this.data[plane + i] = c[1]; this.data[2 * plane + i] = c[2];
  }

  fillRect(x0: number, y0: number, w: number, h: number, c: RGB): void {
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) this.setPixel(x, y, c);
  }

  /** Draws text with its top-left corner at (x, y); returns the width drawn. */
  text(x: number, y: number, text: string, scale = 2, c: RGB = [0, 0, 0]): number {
    let cx = x;
    for (const ch of text) {
      const rows = glyph(ch);
      for (let r = 0; r < GLYPH_H; r++) {
        for (let col = 0; col < 5; col++) {
          if (rows[r]! & (0x10 >> col)) this.fillRect(cx + col * scale, y + r * scale, scale, scale, c);
        }
      }
      cx += ADVANCE * scale;
    }
    return cx - x;
  }

  /** Blits an h×w planar RGB image, each pixel as a zoom×zoom block. */
  image(x0: number, y0: number, rgb: ArrayLike<number>, h: number, w: number, zoom: number): void {
    const plane = h * w;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const i = y * w + x;
      this.fillRect(x0 + x * zoom, y0 + y * zoom, zoom, zoom, [rgb[i]!, rgb[plane + i]!, rgb[2 * plane + i]!]);
    }
  }

  png(): Uint8Array { return imagePng(this.data, 3, this.height, this.width); }
}

/** Colour of t = v/m in [−1, 1] at full opacity: red→yellow for t > 0, blue→cyan for t < 0. */
export function signedColour(t: number): RGB {
  const u = Math.min(1, Math.abs(t));
  return t >= 0 ? [1, 0.1 + 0.9 * u * u, 0.05] : [0.1, 0.35 + 0.6 * u * u, 1];
}

/** Opacity of t = v/m: |t|, clamped to 1. */
export function opacity(t: number): number {
  return Math.min(1, Math.abs(t));
}

/**
 * An attribution map (h·w) over an image (CHW, 1 or 3 channels, [0, 1]) as planar RGB: the image
 * dimmed to `dim` and the colour of v/range blended over it with opacity |v|/range. A range of 0
 * shows the bare dimmed image.
 */
export function attributionRgb(map: ArrayLike<number>, range: number, image: ArrayLike<number> | null, channels: number, dim = 0.45): Float32Array {
  const plane = map.length;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    const t = range > 0 ? map[i]! / range : 0;
    const a = opacity(t), col = signedColour(t);
    for (let c = 0; c < 3; c++) {
      const base = image ? dim * image[(channels === 3 ? c * plane : 0) + i]! : 0;
      out[c * plane + i] = (1 - a) * base + a * col[c]!;
    }
  }
  return out;
}

/** Max |v| of a map. */
export function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]!));
  return m;
}

export type Scaling = 'per-image' | 'shared';

export interface FigureColumn {
  /** Header lines: index or file, class, score, decision. */
  header: string[];
  /** The image as people see it: CHW, 1 or 3 channels, values in [0, 1]. */
  image: ArrayLike<number>;
}

export interface FigureRow {
  /** Label lines, e.g. ['Grad-CAM', 'conv2', 'BN+act']. */
  label: string[];
  /** One map (h·w) per column. */
  maps: ArrayLike<number>[];
  /** Whether negative values can occur (the colour bar then runs from −m to +m). */
  signed: boolean;
  /** Unit of the values, e.g. 'score' or 'CAM'. */
  unit: string;
}

export interface FigureSpec {
  caption: string[];
  columns: FigureColumn[];
  rows: FigureRow[];
  channels: number;
  height: number;
  width: number;
  scaling: Scaling;
  /** Nearest-neighbour upscaling; default max(4, round(140 / width)). */
  zoom?: number;
}

const SCALE = 2;
const LINE = (GLYPH_H + 3) * SCALE;
const PAD = 8;
const CHAR = ADVANCE * SCALE;

export function formatValue(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 0.01 && a < 1000 ? v.toPrecision(3) : v.toExponential(1);
}

function wrap(text: string, maxChars: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > maxChars) { out.push(line); line = word; } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}

function fit(text: string, maxChars: number): string {
  const chars = [...text];
  return chars.length <= maxChars ? text : `${chars.slice(0, Math.max(1, maxChars - 1)).join('')}…`;
}

/** Renders the figure; returns PNG bytes. */
export function renderFigure(spec: FigureSpec): Uint8Array {
  const { columns, rows, channels, height: h, width: w } = spec;
  const zoom = spec.zoom ?? Math.max(4, Math.round(140 / w));
  const tile = w * zoom, tileH = h * zoom;
  const colChars = Math.max(10, Math.floor(tile / CHAR));
  const colW = Math.max(tile, colChars * CHAR) + PAD;
  const labelChars = Math.max(8, ...rows.flatMap((r) => r.label.map((l) => [...l].length)), 5);
  const labelW = Math.min(16, labelChars) * CHAR + PAD;
  const barW = 16, barLabelW = 9 * CHAR;
  const gridW = labelW + columns.length * colW + PAD + barW + 4 + barLabelW;
  const figW = Math.max(gridW + 2 * PAD, 60 * CHAR);
  const caption = spec.caption.flatMap((c) => wrap(c, Math.floor((figW - 2 * PAD) / CHAR)));
  const headerLines = Math.max(1, ...columns.map((c) => c.header.length));
  const statLine = LINE; // per-tile "max |v|" under each map
  const rowH = tileH + statLine + PAD;
  const top = PAD + caption.length * LINE + PAD;
  const gridTop = top + headerLines * LINE;
  const figH = gridTop + (tileH + PAD) + rows.length * rowH + PAD;
  const cv = new Canvas(figW, figH);
  caption.forEach((l, i) => cv.text(PAD, PAD + i * LINE, l));

  const colX = (j: number): number => PAD + labelW + j * colW;
  columns.forEach((c, j) => c.header.forEach((l, i) => cv.text(colX(j), top + i * LINE, fit(l, colChars))));

  // Input row.
  const grey = (img: ArrayLike<number>): Float32Array => {
    const plane = h * w, out = new Float32Array(3 * plane);
    for (let ch = 0; ch < 3; ch++) for (let i = 0; i < plane; i++) out[ch * plane + i] = img[(channels === 3 ? ch * plane : 0) + i]!;
    return out;
  };
  cv.text(PAD, gridTop, 'input');
  columns.forEach((c, j) => cv.image(colX(j), gridTop, grey(c.image), h, w, zoom));

  rows.forEach((r, ri) => {
    const y = gridTop + tileH + PAD + ri * rowH;
    r.label.forEach((l, i) => cv.text(PAD, y + i * LINE, fit(l, Math.floor((labelW - PAD) / CHAR))));
    const shared = maxAbs(r.maps.flatMap((m) => Array.from(m)));
    r.maps.forEach((m, j) => {
      const own = maxAbs(m);
      const range = spec.scaling === 'shared' ? shared : own;
      cv.image(colX(j), y, attributionRgb(m, range, columns[j]!.image, channels), h, w, zoom);
      cv.text(colX(j), y + tileH + 3, fit(`max ${formatValue(own)}`, colChars), SCALE, own === 0 ? [0.75, 0, 0] : [0.3, 0.3, 0.3]);
    });
    // Colour bar: top = +range, middle = 0 (signed) or bottom = 0 (unsigned).
    const bx = colX(columns.length) + 4;
    for (let yy = 0; yy < tileH; yy++) {
      const t = r.signed ? 1 - (2 * yy) / (tileH - 1) : 1 - yy / (tileH - 1);
      const a = opacity(t), col = signedColour(t);
      cv.fillRect(bx, y + yy, barW, 1, [a * col[0], a * col[1], a * col[2]]);
    }
    const lx = bx + barW + 4;
    const top = spec.scaling === 'shared' ? `+${formatValue(shared)}` : '+max';
    cv.text(lx, y, fit(r.signed ? top : top.slice(1), 9));
    if (r.signed) {
      cv.text(lx, y + Math.floor(tileH / 2) - GLYPH_H, '0');
      cv.text(lx, y + tileH - GLYPH_H * SCALE, fit(spec.scaling === 'shared' ? `-${formatValue(shared)}` : '-max', 9));
    } else {
      cv.text(lx, y + tileH - GLYPH_H * SCALE, '0');
    }
    cv.text(lx, y + tileH + 3, fit(spec.scaling === 'shared' ? r.unit : 'per image', 9), SCALE, [0.3, 0.3, 0.3]);
  });
  return cv.png();
}
