/**
 * The gallery's 2-D PCA map on a canvas, coloured by cluster, with the query marked; its legend
 * (each cluster's size and most common label) and a picker for the point under the pointer.
 */
import type { Gallery } from '../../web/gallery.js';

export const PALETTE = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
  '#393b79',
  '#e6550d',
  '#31a354',
  '#843c39',
  '#7b4173',
  '#3182bd',
  '#fd8d3c',
  '#74c476',
  '#9e9ac8',
  '#969696',
];

/** What was drawn: the item nearest to canvas pixel (x, y) within `radius` (or null), and where item i is. */
export interface MapView {
  pick(x: number, y: number, radius?: number): number | null;
  position(i: number): [number, number];
}

export function drawMap(canvas: HTMLCanvasElement, g: Gallery, query?: { xy: [number, number]; neighbours: number[] }): MapView {
  const ctx = canvas.getContext('2d')!;
  const { width: w, height: h } = canvas;
  const c = g.coords;
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (let i = 0; i < c.length; i += 2) {
    x0 = Math.min(x0, c[i]);
    x1 = Math.max(x1, c[i]);
    y0 = Math.min(y0, c[i + 1]);
    y1 = Math.max(y1, c[i + 1]);
  }
  if (query) {
    x0 = Math.min(x0, query.xy[0]);
    x1 = Math.max(x1, query.xy[0]);
    y0 = Math.min(y0, query.xy[1]);
    y1 = Math.max(y1, query.xy[1]);
  }
  const pad = 12;
  const sx = (x: number) => pad + ((x - x0) / (x1 - x0 || 1)) * (w - 2 * pad);
  const sy = (y: number) => h - pad - ((y - y0) / (y1 - y0 || 1)) * (h - 2 * pad);
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, w, h);
  ctx.globalAlpha = 0.55;
  const assign = g.manifest.clusters.assign;
  for (let i = 0; i < assign.length; i++) {
    ctx.fillStyle = PALETTE[assign[i] % PALETTE.length];
    ctx.fillRect(sx(c[2 * i]) - 1, sy(c[2 * i + 1]) - 1, 2.5, 2.5);
  }
  ctx.globalAlpha = 1;
  const pick = (x: number, y: number, radius = 6) => {
    let best: number | null = null;
    let bestD = radius * radius;
    for (let i = 0; i < assign.length; i++) {
      const d = (sx(c[2 * i]) - x) ** 2 + (sy(c[2 * i + 1]) - y) ** 2;
      if (d <= bestD) [best, bestD] = [i, d];
    }
    return best;
  };
  const view: MapView = { pick, position: (i) => [sx(c[2 * i]), sy(c[2 * i + 1])] };
  if (!query) return view;
  ctx.strokeStyle = '#000';
  for (const i of query.neighbours) {
    ctx.beginPath();
    ctx.arc(sx(c[2 * i]), sy(c[2 * i + 1]), 4, 0, 2 * Math.PI);
    ctx.stroke();
  }
  const [qx, qy] = [sx(query.xy[0]), sy(query.xy[1])];
  ctx.fillStyle = '#000';
  ctx.beginPath();
  for (let k = 0; k < 10; k++) {
    const r = k % 2 ? 4 : 10;
    const a = (k * Math.PI) / 5 - Math.PI / 2;
    ctx.lineTo(qx + r * Math.cos(a), qy + r * Math.sin(a));
  }
  ctx.closePath();
  ctx.fill();
  return view;
}

/** One line per cluster: its colour, size and, for a labelled gallery, its most common label. */
export function mapLegend(g: Gallery): HTMLElement[] {
  const m = g.manifest;
  return Array.from({ length: m.clusters.k }, (_, c) => {
    const counts = new Map<string, number>();
    for (const i of m.clusters.members[c] ?? []) {
      const l = g.label(i);
      if (l !== null) counts.set(l, (counts.get(l) ?? 0) + 1);
    }
    const [top, n] = [...counts].sort((a, b) => b[1] - a[1])[0] ?? [null, 0];
    const li = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = PALETTE[c % PALETTE.length];
    swatch.setAttribute('aria-hidden', 'true');
    const size = m.clusters.sizes[c];
    const members = m.clusters.members[c]?.length ?? 0;
    li.append(swatch, `cluster ${c}: ${size} images${top ? `, mostly ${top} (${Math.round((100 * n) / Math.max(1, members))}%)` : ''}`);
    return li;
  });
}
