/**
 * The evaluation's pictures, drawn as SVG and rasterised to PNG by sharp (librsvg): a 2-D PCA map
 * of test embeddings coloured by class, and the loss / kNN curves of a run's metrics.jsonl.
 */
import sharp from 'sharp';
import { pca, project } from '../core/pca.js';
import { normalizeRows } from '../core/vectors.js';

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const esc = (s: string) => s.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);

export async function embeddingMapPng(
  file: string,
  x: Float32Array,
  d: number,
  labels: Int32Array | null,
  classes: string[],
  title: string,
): Promise<void> {
  const z = normalizeRows(Float32Array.from(x), d);
  const xy = project(pca(z, d, 2), z);
  const n = xy.length / 2;
  const [W, H, pad, legend] = [720, 600, 30, classes.length ? 150 : 0];
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (let i = 0; i < n; i++) {
    [x0, x1] = [Math.min(x0, xy[2 * i]), Math.max(x1, xy[2 * i])];
    [y0, y1] = [Math.min(y0, xy[2 * i + 1]), Math.max(y1, xy[2 * i + 1])];
  }
  const sx = (v: number) => pad + ((v - x0) / (x1 - x0 || 1)) * (W - legend - 2 * pad);
  const sy = (v: number) => H - pad - ((v - y0) / (y1 - y0 || 1)) * (H - 2 * pad - 20);
  const dots: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = labels && labels[i] >= 0 ? PALETTE[labels[i] % PALETTE.length] : '#555';
    dots.push(`<circle cx="${sx(xy[2 * i]).toFixed(1)}" cy="${sy(xy[2 * i + 1]).toFixed(1)}" r="1.6" fill="${c}" fill-opacity="0.6"/>`);
  }
  const keys = classes.map(
    (name, k) =>
      `<circle cx="${W - legend + 12}" cy="${50 + 20 * k}" r="5" fill="${PALETTE[k % PALETTE.length]}"/><text x="${W - legend + 22}" y="${54 + 20 * k}" font-size="12" font-family="sans-serif">${esc(name)}</text>`,
  );
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="100%" height="100%" fill="white"/>
<text x="${pad}" y="20" font-size="14" font-family="sans-serif">${esc(title)}</text>${dots.join('')}${keys.join('')}</svg>`;
  await sharp(Buffer.from(svg)).png().toFile(file);
}

export interface Series {
  name: string;
  points: [number, number][];
  color: string;
}

/** Line charts sharing an x axis (steps), one panel per series. */
export async function curvesPng(file: string, series: Series[], title: string): Promise<void> {
  const [W, panelH, pad] = [720, 220, 40];
  const H = 30 + series.length * panelH;
  const panels = series.map((s, k) => {
    const top = 30 + k * panelH;
    if (!s.points.length) return '';
    const xs = s.points.map((p) => p[0]);
    const ys = s.points.map((p) => p[1]);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const sx = (v: number) => pad + ((v - x0) / (x1 - x0 || 1)) * (W - 2 * pad);
    const sy = (v: number) => top + panelH - pad + -((v - y0) / (y1 - y0 || 1)) * (panelH - 2 * pad);
    const line = s.points.map((p, i) => `${i ? 'L' : 'M'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join('');
    return `<text x="${pad}" y="${top + 14}" font-size="13" font-family="sans-serif">${esc(s.name)}: ${y0.toPrecision(3)} – ${y1.toPrecision(3)} (steps ${x0}–${x1})</text>
<rect x="${pad}" y="${top + pad - 10}" width="${W - 2 * pad}" height="${panelH - 2 * pad + 10}" fill="none" stroke="#ccc"/>
<path d="${line}" fill="none" stroke="${s.color}" stroke-width="1.5"/>${
      s.points.length < 40 ? s.points.map((p) => `<circle cx="${sx(p[0])}" cy="${sy(p[1])}" r="3" fill="${s.color}"/>`).join('') : ''
    }`;
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="100%" height="100%" fill="white"/>
<text x="${pad}" y="20" font-size="14" font-family="sans-serif">${esc(title)}</text>${panels.join('')}</svg>`;
  await sharp(Buffer.from(svg)).png().toFile(file);
}
