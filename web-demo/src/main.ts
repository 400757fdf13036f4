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
import { Gallery, normalize, type Neighbour } from './gallery';
import { decodeImage, toInput, toPixels } from './preprocess';
import { drawMap, PALETTE } from './map';

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
  ms: number;
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

function thumbEl(g: Gallery, i: number, px = 64): HTMLDivElement {
  const t = g.thumb(i);
  const d = document.createElement('div');
  d.className = 'thumb';
  const s = px / t.size;
  const t0 = g.manifest.thumbs;
  d.style.backgroundImage = `url(${t.url})`;
  d.style.backgroundPosition = `-${t.x * s}px -${t.y * s}px`;
  d.style.backgroundSize = `${t0.cols * t0.size * s}px auto`;
  d.style.borderColor = PALETTE[g.manifest.clusters.assign[i] % PALETTE.length];
  d.style.width = d.style.height = `${px}px`;
  return d;
}

function card(g: Gallery, i: number, caption: string, onClick?: () => void): HTMLDivElement {
  const c = document.createElement('div');
  c.className = 'card';
  c.dataset.index = String(i);
  c.append(thumbEl(g, i));
  const l = document.createElement('div');
  l.innerHTML = caption;
  c.append(l);
  if (onClick) c.addEventListener('click', onClick);
  return c;
}

async function loadThumbnailImage(g: Gallery, i: number): Promise<ImageBitmap> {
  const t = g.thumb(i);
  const blob = await (await fetch(t.url)).blob();
  const sheet = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  return createImageBitmap(sheet, t.x, t.y, t.size, t.size);
}

async function dataUrl(blob: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result as string);
    r.onerror = () => reject(r.error);
    r.readAsDataURL(blob);
  });
}

async function query(source: string, image: ImageBitmap, blob: Blob | null): Promise<void> {
  const g = demo.gallery!;
  const e = demo.encoder!;
  const p = g.manifest.model.preprocessing;
  const k = Math.max(1, Math.min(50, Number(($('k') as HTMLInputElement).value) || 10));
  const pixels = toPixels(image, p.width, p.height, p.resize);
  const qc = $('query-canvas') as HTMLCanvasElement;
  qc.width = p.width;
  qc.height = p.height;
  qc.getContext('2d')!.putImageData(pixels, 0, 0);
  const t0 = performance.now();
  const raw = await e.embed(toInput(pixels, p), 1);
  const q = normalize(raw);
  let neighbours: Neighbour[];
  let via: QueryResult['via'] = 'browser';
  if (($('use-server') as HTMLInputElement).checked) {
    via = 'server';
    const img = blob ? await dataUrl(blob) : qc.toDataURL('image/png');
    const res = await fetch(`${apiBase}/v1/search`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: img, k }),
    });
    const body = await res.json();
    if (!res.ok) throw new Error(`server search failed: ${body.error?.message ?? res.status}`);
    const row = new Map(g.manifest.ids.map((id, i) => [id, i]));
    neighbours = (body.data as { id: string; score: number }[]).map((n) => {
      const i = row.get(n.id) ?? -1;
      return { index: i, id: n.id, score: n.score, label: i >= 0 ? g.label(i) : null };
    });
  } else neighbours = g.search(q, k);
  const cluster = g.assign(q);
  const ms = performance.now() - t0;

  $('query-info').textContent = `${source} · embedded in ${ms.toFixed(1)} ms (${via === 'server' ? 'server search' : 'in the browser'})`;
  const nb = $('neighbours');
  nb.replaceChildren(
    ...neighbours
      .filter((n) => n.index >= 0)
      .map((n) => card(g, n.index, `${n.label ?? n.id}<br><span class="score">${n.score.toFixed(4)}</span>`)),
  );
  const m = g.manifest.clusters;
  const cl = $('cluster');
  const members = m.members[cluster.cluster].slice(0, 6);
  const head = document.createElement('div');
  head.innerHTML = `cluster <b style="color:${PALETTE[cluster.cluster % PALETTE.length]}">${cluster.cluster}</b> of ${m.k} · similarity ${cluster.score.toFixed(3)} · ${m.sizes[cluster.cluster]} members, e.g.:`;
  const row = document.createElement('div');
  row.className = 'grid';
  row.append(...members.map((i) => card(g, i, g.label(i) ?? g.manifest.ids[i])));
  cl.replaceChildren(head, row);
  drawMap($('map') as HTMLCanvasElement, g, { xy: g.project(q), neighbours: neighbours.map((n) => n.index).filter((i) => i >= 0) });
  drawAttention(e, qc);
  demo.last = {
    source,
    embedding: Array.from(raw),
    neighbours,
    cluster,
    ms,
    via,
    attention: e.lastAttention ? Array.from(e.lastAttention.data) : null,
  };
  demo.queries++;
}

async function queryBlob(blob: Blob, name: string): Promise<void> {
  try {
    $('error').hidden = true;
    await query(name, await decodeImage(blob), blob);
  } catch (e) {
    showError(`${name}: ${(e as Error).message}`);
    demo.queries++;
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
  const e = await BrowserEncoder.load(modelUrl, g.manifest.model, { backend, threads, onProgress: progress('model') });
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

  drawMap($('map') as HTMLCanvasElement, g);
  // A spread of the gallery (galleries are often sorted by class).
  const shown = Math.min(g.manifest.count, 96);
  const stride = g.manifest.count / shown;
  $('gallery').replaceChildren(
    ...Array.from({ length: shown }, (_, j) => Math.floor(j * stride)).map((i) =>
      card(g, i, g.label(i) ?? g.manifest.ids[i], async () => {
        try {
          $('error').hidden = true;
          await query(`gallery item ${g.manifest.ids[i]}`, await loadThumbnailImage(g, i), null);
        } catch (err) {
          showError((err as Error).message);
        }
      }),
    ),
  );

  const file = $('file') as HTMLInputElement;
  file.addEventListener('change', () => {
    const f = file.files?.[0];
    if (f) void queryBlob(f, f.name).then(() => (file.value = ''));
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (ev) => {
    ev.preventDefault();
    drop.classList.remove('over');
    const f = ev.dataTransfer?.files[0];
    if (f) void queryBlob(f, f.name);
  });
  document.addEventListener('paste', (ev) => {
    const item = Array.from(ev.clipboardData?.items ?? []).find((i) => i.type.startsWith('image/'));
    const f = item?.getAsFile();
    if (f) void queryBlob(f, 'pasted image');
  });
  return { backend: e.backend.name, threads: e.backend.threads };
}

demo.ready = start().catch((e: Error) => {
  $('loading').hidden = true;
  showError(e.message);
  throw e;
});
