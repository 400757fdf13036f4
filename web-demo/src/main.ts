/**
 * The demo page: loads the gallery and the encoder, then embeds whatever image the user drops,
 * pastes, picks or clicks, and shows its neighbours, its cluster and its place on the PCA map.
 * Everything runs here; only the "query the server" toggle sends the image to /v1/search.
 *
 * URL parameters: model (default demo/model.onnx), gallery (default demo/gallery/), api (the
 * service's origin for the toggle, default this page's), backend (auto | wasm | webgpu), threads.
 * window.sslkitDemo exposes the state for tests and benchmarks.
 */
import { BrowserEncoder } from './model';
import { Gallery, queryVector, type Neighbour } from '../../web/gallery.js';
import { decodeImage, toInput, toPixels } from '../../web/preprocess.js';
import { drawMap, mapLegend, PALETTE, type MapView } from './map';
import { backgroundOf, type Preprocessing } from './types';
import { dataUrl, serverSearch } from './server-search';

const params = new URLSearchParams(location.search);
const modelUrl = new URL(params.get('model') ?? 'demo/model.onnx', document.baseURI).href;
const galleryUrl = new URL(params.get('gallery') ?? 'demo/gallery/', document.baseURI).href;
const apiBase = params.get('api') ?? location.origin;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

interface QueryResult {
  source: string;
  embedding: number[];
  neighbours: Neighbour[];
  cluster: { cluster: number; score: number };
  /** Model run plus search (or the server's round trip). */
  ms: number;
  /** The model run alone. */
  embedMs: number;
  via: 'browser' | 'server';
  /** heads × patches, for ViT models. */
  attention: number[] | null;
}

/**
 * A ViT's CLS self-attention over the query's patches, averaged over heads, as a heat map laid
 * over the query image (DINO's attention maps), and one small map per head.
 */
function drawAttention(e: BrowserEncoder, query: HTMLCanvasElement): void {
  const box = $('attention');
  box.hidden = !e.lastAttention;
  if (!e.lastAttention) return;
  const { heads, patches, data } = e.lastAttention;
  const side = Math.round(Math.sqrt(patches));
  const heat = (values: Float32Array, size: number, withImage: boolean) => {
    const c = document.createElement('canvas');
    c.width = c.height = size;
    const g = c.getContext('2d')!;
    if (withImage) g.drawImage(query, 0, 0, size, size);
    // Min-max scaled: a barely trained ViT attends almost uniformly, and the differences are the point.
    let [lo, hi] = [Infinity, -Infinity];
    for (const v of values) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
    const cell = size / side;
    for (let p = 0; p < patches; p++) {
      g.fillStyle = `rgba(255, 40, 0, ${(0.8 * (values[p] - lo)) / (hi - lo || 1)})`;
      g.fillRect((p % side) * cell, Math.floor(p / side) * cell, cell, cell);
    }
    return c;
  };
  const mean = new Float32Array(patches);
  for (let h = 0; h < heads; h++) for (let p = 0; p < patches; p++) mean[p] += data[h * patches + p] / heads;
  const maps = Array.from({ length: heads }, (_, h) => heat(data.subarray(h * patches, (h + 1) * patches), 48, false));
  const title = document.createElement('div');
  title.textContent = `CLS self-attention, last block: mean of ${heads} heads, then each head`;
  box.replaceChildren(title, heat(mean, 128, true), ...maps);
}

const demo = {
  ready: null as unknown as Promise<{ backend: string; threads: number }>,
  queries: 0,
  last: null as QueryResult | null,
  error: null as string | null,
  encoder: null as BrowserEncoder | null,
  gallery: null as Gallery | null,
  /** Resolves true once the service worker holds everything for an offline reload (false: no offline cache). */
  offline: null as Promise<boolean> | null,
  /** The map as last drawn (redrawn with every query): the point under the pointer, an item's place. */
  mapView: null as MapView | null,
  /** The last query, to run again when k changes. */
  lastQuery: null as { source: string; image: ImageBitmap; blob: Blob | null } | null,
  /** Decoded thumbnail sheets, one fetch each: a click on the gallery does not download its sheet again. */
  sheets: new Map<string, Promise<ImageBitmap>>(),
  /** Where gallery item i is drawn on the map, in canvas pixels (for tests). */
  mapPosition: (i: number): [number, number] | null => demo.mapView?.position(i) ?? null,
  /** Per-image latency of the model alone (batch 1), in ms, after `warmup` runs. */
  async bench(runs = 50, warmup = 5): Promise<number[]> {
    const e = demo.encoder!;
    const p = demo.gallery!.manifest.model.preprocessing;
    const x = new Float32Array(p.channels * p.height * p.width).map((_, i) => Math.sin(i));
    const times: number[] = [];
    for (let i = 0; i < warmup + runs; i++) {
      const t = performance.now();
      await e.embed(x, 1);
      if (i >= warmup) times.push(performance.now() - t);
    }
    return times;
  },
};
(window as unknown as { sslkitDemo: typeof demo }).sslkitDemo = demo;

function showError(msg: string): void {
  demo.error = msg;
  const el = $('error');
  el.textContent = msg;
  el.hidden = false;
}

function progress(label: string) {
  return (loaded: number, total: number) => {
    $('status').textContent = `${label}: ${(loaded / 1048576).toFixed(1)}${total ? ` of ${(total / 1048576).toFixed(1)}` : ''} MB`;
    if (total) ($('progress') as HTMLProgressElement).value = loaded / total;
  };
}

const lazyThumbs = new IntersectionObserver(
  (entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      const el = e.target as HTMLElement;
      el.style.backgroundImage = `url(${el.dataset.src})`;
      lazyThumbs.unobserve(el);
    }
  },
  { rootMargin: '200px' },
);

function thumbEl(g: Gallery, i: number, px = 64): HTMLDivElement {
  const t = g.thumb(i);
  const d = document.createElement('div');
  d.className = 'thumb';
  const s = px / t.size;
  const t0 = g.manifest.thumbs;
  // The sheet is fetched when the thumbnail comes near the screen, not on first load.
  d.dataset.src = t.url;
  lazyThumbs.observe(d);
  d.style.backgroundPosition = `-${t.x * s}px -${t.y * s}px`;
  d.style.backgroundSize = `${t0.cols * t0.size * s}px auto`;
  d.style.borderColor = PALETTE[g.manifest.clusters.assign[i] % PALETTE.length];
  d.style.width = d.style.height = `${px}px`;
  return d;
}

/** A click, or Enter or Space while focused: what a button does, for an element that plays one. */
function onActivate(el: HTMLElement, action: () => void): void {
  el.addEventListener('click', action);
  el.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter' && ev.key !== ' ') return;
    ev.preventDefault();
    action();
  });
}

/** A thumbnail with its caption; with `onClick` a button that Enter and Space press too. */
function card(g: Gallery, i: number, caption: string, onClick?: () => void, score?: number): HTMLDivElement {
  const c = document.createElement('div');
  c.className = 'card';
  c.dataset.index = String(i);
  const name = g.label(i) ?? g.manifest.ids[i];
  const thumb = thumbEl(g, i);
  thumb.setAttribute('role', 'img');
  thumb.setAttribute('aria-label', `gallery image ${g.manifest.ids[i]}: ${name}`);
  c.append(thumb);
  const l = document.createElement('div');
  l.textContent = caption;
  if (score !== undefined) {
    const sc = document.createElement('span');
    sc.className = 'score';
    // Centred scores spread over [−1, 1]: two decimals say it; uncentred ones crowd near 1.
    sc.textContent = score.toFixed(g.manifest.centre ? 2 : 4);
    l.append(document.createElement('br'), sc);
  }
  c.append(l);
  if (onClick) {
    c.setAttribute('role', 'button');
    c.tabIndex = 0;
    // The visible caption comes first in the name (what a speech user says is what they see).
    c.setAttribute('aria-label', `${caption}: search with gallery image ${g.manifest.ids[i]}`);
    onActivate(c, onClick);
  }
  return c;
}

async function loadThumbnailImage(g: Gallery, i: number): Promise<ImageBitmap> {
  const t = g.thumb(i);
  let sheet = demo.sheets.get(t.url);
  if (!sheet) {
    sheet = fetch(t.url)
      .then((r) => r.blob())
      .then((blob) => createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' }));
    demo.sheets.set(t.url, sheet);
    sheet.catch(() => demo.sheets.delete(t.url));
  }
  return createImageBitmap(await sheet, t.x, t.y, t.size, t.size);
}

/** Clears the previous query's results, so a failed query never leaves them under a new preview. */
function clearResults(): void {
  $('neighbours').replaceChildren();
  $('cluster').replaceChildren();
  $('query-info').textContent = '';
  $('attention').hidden = true;
  const qc = $('query-canvas') as HTMLCanvasElement;
  qc.getContext('2d')!.clearRect(0, 0, qc.width, qc.height);
  demo.last = null;
}

/** The k field, clamped to 1..50 and written back, so what it shows is what is used. */
function readK(): number {
  const field = $('k') as HTMLInputElement;
  const v = field.value.trim() === '' ? NaN : Number(field.value);
  const k = Number.isFinite(v) ? Math.max(1, Math.min(50, Math.round(v))) : 10;
  field.value = String(k);
  return k;
}

/** Hover shows a gallery point's image and label; a click searches with it. */
function wireMap(g: Gallery): void {
  const canvas = $('map') as HTMLCanvasElement;
  const tip = $('map-tip');
  const at = (ev: MouseEvent) => {
    const r = canvas.getBoundingClientRect();
    // The canvas may be drawn smaller than its pixel size (narrow screens).
    return demo.mapView?.pick(((ev.clientX - r.left) * canvas.width) / r.width, ((ev.clientY - r.top) * canvas.height) / r.height) ?? null;
  };
  let shown: number | null = null;
  canvas.addEventListener('mousemove', (ev) => {
    const i = at(ev);
    tip.hidden = i === null;
    if (i === null) return;
    // A new card only when the pointer reaches another point, not on every move.
    if (i !== shown) tip.replaceChildren(card(g, i, g.label(i) ?? g.manifest.ids[i]));
    shown = i;
    tip.style.left = `${canvas.offsetLeft + ev.offsetX + 12}px`;
    tip.style.top = `${canvas.offsetTop + ev.offsetY + 12}px`;
  });
  canvas.addEventListener('mouseleave', () => (tip.hidden = true));
  canvas.addEventListener('click', (ev) => {
    const i = at(ev);
    if (i !== null) void queryGalleryItem(g, i);
  });
  // Each axis's share of the embeddings' total variance (the trace of their covariance, n − 1 as PCA's).
  const { count, dim, pca } = g.manifest;
  let total = 0;
  for (let i = 0; i < count; i++) for (let d = 0; d < dim; d++) total += (g.vectors[i * dim + d] - pca.mean[d]) ** 2;
  total /= Math.max(1, count - 1);
  const pct = (x = 0) => (total > 0 ? ` (${((100 * x) / total).toFixed(0)}% of the variance)` : '');
  $('map-axes').textContent =
    `Across: the first principal component of the embeddings${pct(pca.variance[0])}; up: the second${pct(pca.variance[1])}.`;
  $('map-legend').replaceChildren(...mapLegend(g));
}

/** Runs a query and shows it; on failure clears the old results and shows the error. */
async function runQuery(source: string, image: () => Promise<ImageBitmap>, blob: Blob | null): Promise<void> {
  $('error').hidden = true;
  try {
    const img = await image();
    demo.lastQuery = { source, image: img, blob };
    await query(source, img, blob);
  } catch (e) {
    clearResults();
    showError(`${source}: ${(e as Error).message}`);
    demo.queries++;
  }
}

/** The spread of the pixels (0-255, per channel, then averaged): near 0 when the model sees one flat colour. */
function pixelSpread(img: ImageData): number {
  const n = img.data.length / 4;
  let spread = 0;
  for (let k = 0; k < 3; k++) {
    let sum = 0;
    let sq = 0;
    for (let q = k; q < img.data.length; q += 4) {
      sum += img.data[q];
      sq += img.data[q] ** 2;
    }
    spread += Math.sqrt(Math.max(0, sq / n - (sum / n) ** 2)) / 3;
  }
  return spread;
}

/** The query image at the model's input size, drawn on the query canvas. */
function showQueryImage(image: ImageBitmap, p: Preprocessing) {
  const background = backgroundOf(p);
  const { pixels, transparent } = toPixels(image, p.width, p.height, p.resize, background);
  const canvas = $('query-canvas') as HTMLCanvasElement;
  canvas.width = p.width;
  canvas.height = p.height;
  canvas.getContext('2d')!.putImageData(pixels, 0, 0);
  return { pixels, transparent, background, canvas };
}

/** Neighbours from the gallery here, or from the service when the toggle says so. */
async function findNeighbours(g: Gallery, q: Float32Array, k: number, blob: Blob | null, canvas: HTMLCanvasElement) {
  if (!($('use-server') as HTMLInputElement).checked) return { neighbours: g.search(q, k), via: 'browser' as const };
  const image = blob ? await dataUrl(blob) : canvas.toDataURL('image/png');
  return { neighbours: await serverSearch(apiBase, g, image, k), via: 'server' as const };
}

/** What was measured, and what the user should know about the image the model saw. */
function showQueryInfo(
  source: string,
  image: ImageBitmap,
  view: ReturnType<typeof showQueryImage>,
  p: Preprocessing,
  t: { embedMs: number; searchMs: number; via: QueryResult['via'] },
) {
  const small = image.width * image.height < (p.width * p.height) / 4;
  const flat = pixelSpread(view.pixels) < 4;
  $('query-info').textContent =
    `${source} · model ${t.embedMs.toFixed(1)} ms in the browser · ` +
    (t.via === 'server'
      ? `search on the server ${t.searchMs.toFixed(0)} ms (round trip)`
      : `search and cluster ${t.searchMs.toFixed(1)} ms in the browser`) +
    (small ? ` · note: the image is ${image.width}×${image.height}, far below the model's ${p.width}×${p.height}; it was enlarged` : '') +
    (view.transparent
      ? ` · note: its transparent parts were filled with rgb(${view.background.join(', ')}), ${p.background ? "the colour of the model's training images' edges" : 'white (the model does not name a background)'}`
      : '') +
    (flat ? ' · note: the model sees an almost uniform image, so its neighbours say little' : '');
}

function showNeighbours(g: Gallery, neighbours: Neighbour[]): void {
  $('neighbours').replaceChildren(
    ...neighbours.filter((n) => n.index >= 0).map((n) => card(g, n.index, n.label ?? n.id, undefined, n.score)),
  );
}

function showCluster(g: Gallery, cluster: { cluster: number; score: number }): void {
  const m = g.manifest.clusters;
  const members = m.members[cluster.cluster].slice(0, 6);
  const head = document.createElement('div');
  // The colour is a swatch beside the number: several palette colours are too light for text.
  const swatch = document.createElement('span');
  swatch.className = 'swatch';
  swatch.style.background = PALETTE[cluster.cluster % PALETTE.length];
  swatch.setAttribute('aria-hidden', 'true');
  const name = document.createElement('b');
  name.textContent = String(cluster.cluster);
  head.append('cluster ', swatch, name, ` of ${m.k} · similarity ${cluster.score.toFixed(3)} · ${m.sizes[cluster.cluster]} members, e.g.:`);
  const row = document.createElement('div');
  row.className = 'grid';
  row.append(...members.map((i) => card(g, i, g.label(i) ?? g.manifest.ids[i])));
  $('cluster').replaceChildren(head, row);
}

/** Embeds the image, finds its neighbours and cluster, and shows each view. */
async function query(source: string, image: ImageBitmap, blob: Blob | null): Promise<void> {
  const g = demo.gallery!;
  const e = demo.encoder!;
  const p = g.manifest.model.preprocessing;
  const k = readK();
  const view = showQueryImage(image, p);
  const t0 = performance.now();
  const raw = await e.embed(toInput(view.pixels, p), 1);
  const embedMs = performance.now() - t0;
  const q = queryVector(raw, g.manifest.centre);
  const { neighbours, via } = await findNeighbours(g, q, k, blob, view.canvas);
  const cluster = g.assign(q);
  const ms = performance.now() - t0;
  showQueryInfo(source, image, view, p, { embedMs, searchMs: ms - embedMs, via });
  showNeighbours(g, neighbours);
  showCluster(g, cluster);
  demo.mapView = drawMap($('map') as HTMLCanvasElement, g, {
    xy: g.project(q),
    neighbours: neighbours.map((n) => n.index).filter((i) => i >= 0),
  });
  drawAttention(e, view.canvas);
  demo.last = {
    source,
    // What the service's /v1/embeddings gives: the model's output, or its centred unit vector.
    embedding: Array.from(g.manifest.centre ? q : raw),
    neighbours,
    cluster,
    ms,
    embedMs,
    via,
    attention: e.lastAttention ? Array.from(e.lastAttention.data) : null,
  };
  demo.queries++;
}

const queryBlob = (blob: Blob, name: string) => runQuery(name, () => decodeImage(blob), blob);
const queryGalleryItem = (g: Gallery, i: number) => runQuery(`gallery item ${g.manifest.ids[i]}`, () => loadThumbnailImage(g, i), null);

/** Shows the "query the server" toggle only where the sslkit API answers (not on a static host). */
async function offerServerToggle(): Promise<void> {
  try {
    const r = await fetch(`${apiBase}/v1/models`, { headers: { accept: 'application/json' } });
    const body = r.ok ? await r.json() : null;
    $('use-server-label').hidden = !body?.data?.length;
  } catch {
    $('use-server-label').hidden = true;
  }
}

/**
 * Asks the service worker to keep files it did not pre-cache at install: the WebAssembly runtime
 * this browser chose (only that one of the two is ever downloaded). They come from the HTTP
 * cache, where this page just put them.
 */
async function keepForOffline(urls: string[]): Promise<boolean> {
  if (!('serviceWorker' in navigator) || !location.protocol.startsWith('http')) return false;
  try {
    const reg = await navigator.serviceWorker.ready;
    return await new Promise<boolean>((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = (ev) => resolve(ev.data?.ok === true);
      reg.active!.postMessage({ type: 'keep', urls }, [channel.port2]);
    });
  } catch {
    return false;
  }
}

async function start(): Promise<{ backend: string; threads: number }> {
  if ('serviceWorker' in navigator && location.protocol.startsWith('http'))
    navigator.serviceWorker.register('./sw.js').catch((e) => console.warn(`no offline cache: ${e.message}`));
  $('status').textContent = 'Loading the gallery…';
  const g = await Gallery.load(galleryUrl, progress('gallery'));
  demo.gallery = g;
  $('status').textContent = 'Loading the model…';
  const backend = (params.get('backend') ?? 'auto') as 'auto' | 'wasm' | 'webgpu';
  const threads = params.get('threads') ? Number(params.get('threads')) : undefined;
  const e = await BrowserEncoder.load(modelUrl, g.manifest.model, { backend, threads, onProgress: progress('model and runtime') });
  demo.offline = keepForOffline([e.backend.runtime]);
  // The gallery must come from this model: compare the embedding size the model really gives.
  const p = g.manifest.model.preprocessing;
  const probe = await e.embed(new Float32Array(p.channels * p.height * p.width), 1).catch((err: Error) => {
    throw new Error(
      `model: a test run failed (${err.message}); is the gallery's preprocessing (${p.channels}×${p.height}×${p.width}) this model's?`,
    );
  });
  if (probe.length !== g.manifest.dim || probe.some((v) => !Number.isFinite(v)))
    throw new Error(
      `the gallery holds ${g.manifest.dim}-d embeddings but the model gives ${probe.length}-d ones: index the gallery with this model`,
    );
  demo.encoder = e;

  const b = $('backend');
  b.textContent =
    e.backend.name === 'webgpu'
      ? 'WebGPU'
      : `WebAssembly SIMD · ${e.backend.threads} thread${e.backend.threads > 1 ? 's' : ''}${e.backend.isolated ? '' : ' (not cross-origin isolated)'}`;
  b.className = `badge ${e.backend.name}`;
  const meta = g.manifest.model.metadata;
  $('model-info').textContent =
    `${meta.method ?? 'model'} · ${g.manifest.dim}-d · ${g.manifest.count} images${g.manifest.data ? ` of ${g.manifest.data}` : ''}`;
  $('loading').hidden = true;
  document.querySelector('main')!.hidden = false;

  demo.mapView = drawMap($('map') as HTMLCanvasElement, g);
  wireMap(g);
  // A spread of the gallery (galleries are often sorted by class).
  const shown = Math.min(g.manifest.count, 96);
  const stride = g.manifest.count / shown;
  $('gallery').replaceChildren(
    ...Array.from({ length: shown }, (_, j) => Math.floor(j * stride)).map((i) =>
      card(g, i, g.label(i) ?? g.manifest.ids[i], () => void queryGalleryItem(g, i)),
    ),
  );

  const file = $('file') as HTMLInputElement;
  file.addEventListener('change', () => {
    const f = file.files?.[0];
    if (f) void queryBlob(f, f.name).then(() => (file.value = ''));
  });
  const drop = $('drop');
  onActivate(drop, () => file.click());
  // A file dropped anywhere on the page is a query; the browser never navigates away to it.
  document.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    drop.classList.add('over');
  });
  document.addEventListener('dragleave', (ev) => {
    if (!ev.relatedTarget) drop.classList.remove('over');
  });
  document.addEventListener('drop', (ev) => {
    ev.preventDefault();
    drop.classList.remove('over');
    const f = ev.dataTransfer?.files[0];
    if (f) void queryBlob(f, f.name);
  });
  ($('k') as HTMLInputElement).addEventListener('change', () => {
    readK();
    const last = demo.lastQuery;
    if (last) void runQuery(last.source, async () => last.image, last.blob);
  });
  void offerServerToggle();
  document.addEventListener('paste', (ev) => {
    const item = Array.from(ev.clipboardData?.items ?? []).find((i) => i.type.startsWith('image/'));
    const f = item?.getAsFile();
    if (f) void queryBlob(f, 'pasted image');
  });
  return { backend: e.backend.name, threads: e.backend.threads };
}

demo.ready = start().catch((e: Error) => {
  $('loading').hidden = true;
  document.querySelector('main')!.hidden = true;
  const b = $('backend');
  b.textContent = 'failed to load';
  b.className = 'badge failed';
  showError(e.message);
  throw e;
});
