/**
 * The web demo in a real Chromium (Debian's, driven by playwright-core), served by `sslkit serve`
 * on 127.0.0.1, with a model trained here on real CIFAR-10 test images. Checks that the browser's
 * embedding equals onnxruntime-node's, that its neighbours equal the server's /v1/search, that
 * top-1 label agreement matches Node's, the error messages, the server toggle, offline reload and
 * the static-site export. Saves a screenshot to test-artifacts/web-demo.png.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import express from 'express';
import sharp, { type Sharp } from 'sharp';
import * as tar from 'tar';
import { chromium, type Browser, type FileChooser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CIFAR_ARCHIVE, hasCifar, isolatedCache, tinyModel, tmpDir } from '../helpers.js';
import { buildIndex } from '../../serve/build-index.js';
import { startServer, type RunningServer } from '../../serve/server.js';
import { OnnxEncoder } from '../../core/runtime/onnx-encoder.js';
import { loadIndex } from '../../serve/index-file.js';
import { ExactSearch } from '../../serve/exact-search.js';
import { writeDemoSite } from '../../web-demo/site.js';
import { quantizeFile } from '../../export/int8.js';
import { ensureDemoBuilt } from '../../web-demo/build.js';
import { imageToInput } from '../../serve/images.js';
import { centreRows, normalizeRows } from '../../core/vectors.js';
import * as ort from 'onnxruntime-node';
import axe from 'axe-core';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = fs.existsSync(CHROMIUM);
if (process.env.CI && !hasChromium) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium for these tests`);
const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts');

const PER_CLASS_GALLERY = 100;
const QUERIES_PER_CLASS = 2;

describe.runIf(hasChromium && hasCifar)('web demo in Chromium', () => {
  let work: string;
  let model: string;
  let galleryDir: string;
  let indexFile: string;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const queries: { file: string; label: string }[] = [];

  beforeAll(async () => {
    isolatedCache();
    work = tmpDir();
    // Real CIFAR-10 test images: 100 per class for training and the gallery, 2 more per class as queries.
    const raw = path.join(work, 'cifar');
    await tar.x({
      file: CIFAR_ARCHIVE,
      cwd: fs.mkdirSync(raw, { recursive: true })!,
      filter: (p) => /^test\/\w+\/0(0\d\d|10[01])\.jpg$/.test(p),
    });
    const images = path.join(work, 'images');
    const qdir = path.join(work, 'queries');
    fs.mkdirSync(qdir);
    for (const cls of fs.readdirSync(path.join(raw, 'test'))) {
      fs.mkdirSync(path.join(images, cls), { recursive: true });
      for (const f of fs.readdirSync(path.join(raw, 'test', cls))) {
        const src = path.join(raw, 'test', cls, f);
        if (Number(f.slice(0, 4)) < PER_CLASS_GALLERY) fs.copyFileSync(src, path.join(images, cls, f));
        else {
          // Each query twice: the original JPEG and the same pixels as a lossless PNG.
          const jpg = path.join(qdir, `${cls}-${f}`);
          fs.copyFileSync(src, jpg);
          const png = jpg.replace(/\.jpg$/, '.png');
          await sharp(src).png().toFile(png);
          queries.push({ file: jpg, label: cls }, { file: png, label: cls });
        }
      }
    }
    expect(queries).toHaveLength(10 * QUERIES_PER_CLASS * 2);
    model = await tinyModel({ data: `folder:${images}`, dataDir: undefined, batchSize: 64, limit: undefined, width: 0.5 });
    indexFile = path.join(work, 'gallery.idx');
    galleryDir = path.join(work, 'gallery');
    await buildIndex(model, indexFile, { data: `folder:${images}`, gallery: galleryDir });
    server = await startServer({
      model,
      index: indexFile,
      gallery: galleryDir,
      staticDir: await ensureDemoBuilt(),
      port: 0,
      log: () => {},
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(`${server.url}/`);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  const ready = (p: Page) => p.evaluate(() => (window as any).sslkitDemo.ready);

  /** Uploads a file through the page's file input and returns what the page computed. */
  async function upload(p: Page, file: string): Promise<any> {
    const before = await p.evaluate(() => (window as any).sslkitDemo.queries);
    await p.setInputFiles('#file', file);
    await p.waitForFunction((n) => (window as any).sslkitDemo.queries > n, before);
    return p.evaluate(() => ({ last: (window as any).sslkitDemo.last, error: (window as any).sslkitDemo.error }));
  }

  async function post(route: string, body: unknown): Promise<any> {
    const res = await fetch(`${server.url}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(200);
    return res.json();
  }

  it('loads cross-origin isolated with multi-threaded WebAssembly and says so', async () => {
    const r = await ready(page);
    expect(r).toEqual({ backend: 'wasm', threads: expect.any(Number) });
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    expect(r.threads).toBeGreaterThan(1);
    expect(await page.textContent('#backend')).toMatch(/^WebAssembly SIMD · \d+ threads$/);
    expect(await page.textContent('#model-info')).toContain('1000 images');
    expect(await page.locator('#gallery .card').count()).toBe(96);
  });

  it('computes the same embeddings as onnxruntime-node and the same neighbours as /v1/search', async () => {
    let maxDiff = 0;
    for (const q of queries) {
      const { last, error } = await upload(page, q.file);
      expect(error).toBeNull();
      expect(last.via).toBe('browser');
      const b64 = fs.readFileSync(q.file).toString('base64');
      const node = (await post('/v1/embeddings', { input: [b64] })).data[0].embedding as number[];
      expect(last.embedding).toHaveLength(node.length);
      for (let d = 0; d < node.length; d++) maxDiff = Math.max(maxDiff, Math.abs(last.embedding[d] - node[d]));
      const server = (await post('/v1/search', { image: b64, k: 10 })).data as { id: string; score: number }[];
      expect(last.neighbours.map((n: any) => n.id)).toEqual(server.map((n) => n.id));
      last.neighbours.forEach((n: any, i: number) => expect(n.score).toBeCloseTo(server[i].score, 4));
    }
    expect(maxDiff).toBeLessThan(1e-4);
    // The page shows them: 10 neighbour cards and the query's cluster.
    expect(await page.locator('#neighbours .card').count()).toBe(10);
    expect(await page.textContent('#cluster')).toMatch(/cluster \d+ of 10/);
  });

  it('top-1 neighbour label agreement equals what the same model gives in Node', async () => {
    const enc = await OnnxEncoder.load(model);
    const search = new ExactSearch(loadIndex(indexFile));
    let browserAgree = 0;
    let nodeAgree = 0;
    try {
      for (const q of queries) {
        const { last } = await upload(page, q.file);
        if (last.neighbours[0].label === q.label) browserAgree++;
        const v = await enc.embed(await imageToInput(fs.readFileSync(q.file), enc.preprocessing, 1e7, 'image'), 1);
        if (search.search(v, 1)[0].item.label === q.label) nodeAgree++;
      }
    } finally {
      await enc.release();
    }
    expect(browserAgree).toBe(nodeAgree);
    // A trained encoder on real images: better than the 10% of chance.
    expect(nodeAgree / queries.length).toBeGreaterThan(0.1);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-demo.png'), fullPage: true });
  });

  it('queries the server instead when the toggle is on', async () => {
    await page.check('#use-server');
    const { last } = await upload(page, queries[0].file);
    await page.uncheck('#use-server');
    expect(last.via).toBe('server');
    const server = (await post('/v1/search', { image: fs.readFileSync(queries[0].file).toString('base64'), k: 10 })).data;
    expect(last.neighbours.map((n: any) => n.id)).toEqual(server.map((n: any) => n.id));
  });

  it('says clearly when a file is not an image, and keeps working', async () => {
    const bad = path.join(work, 'notes.png');
    fs.writeFileSync(bad, 'these are not pixels');
    const { error } = await upload(page, bad);
    expect(error).toMatch(/^notes\.png: could not read this file as an image/);
    expect(await page.isVisible('#error')).toBe(true);
    const { last } = await upload(page, queries[1].file);
    expect(last.source).toBe(path.basename(queries[1].file));
    expect(await page.isVisible('#error')).toBe(false);
  });

  it('turns an EXIF-tagged photo upright (orientation 6) as the service does, not as its stored pixels', async () => {
    await ready(page);
    // A real query stored turned 90° anticlockwise and tagged "rotate 90° clockwise to show".
    const src = queries.find((q) => q.file.endsWith('.jpg'))!.file;
    const jpeg = (x: Sharp) => x.jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer();
    const turned = await sharp(src).rotate(270).png().toBuffer();
    const files = {
      straight: await jpeg(sharp(src)),
      sideways: await jpeg(sharp(turned)),
      tagged: await jpeg(sharp(turned).withMetadata({ orientation: 6 })),
    };
    const seen: Record<string, number[]> = {};
    for (const [name, bytes] of Object.entries(files)) {
      const file = path.join(work, `orientation-${name}.jpg`);
      fs.writeFileSync(file, bytes);
      const { last } = await upload(page, file);
      expect(last.source).toBe(path.basename(file));
      seen[name] = last.embedding;
    }
    const cos = (x: number[], y: number[]) => {
      const dot = (a: number[], b: number[]) => a.reduce((t, v, d) => t + v * b[d], 0);
      return dot(x, y) / Math.sqrt(dot(x, x) * dot(y, y));
    };
    // The same pixels as the service decodes from the same file, and the upright picture's embedding.
    const node = (await post('/v1/embeddings', { input: [files.tagged.toString('base64')] })).data[0].embedding as number[];
    node.forEach((v, d) => expect(seen.tagged[d]).toBeCloseTo(v, 4));
    expect(cos(seen.tagged, seen.straight)).toBeGreaterThan(0.999);
    expect(cos(seen.tagged, seen.sideways)).toBeLessThan(cos(seen.tagged, seen.straight) - 0.002);
  });

  it("composites a transparent image on the model's background as the server does, and says so; notes tiny and flat images", async () => {
    await ready(page);
    const enc = await OnnxEncoder.load(model, { log: () => {} });
    const bg = enc.preprocessing.background!;
    await enc.release();
    // The model's background is its training images' edge colour (CIFAR-10 photos: not white, not black).
    expect(bg.some((v) => v > 20 && v < 235)).toBe(true);
    // A dark boot-like shape on a transparent background, at the model's size (alpha 0 or 255: no rounding).
    const rgba = Buffer.alloc(32 * 32 * 4);
    for (let y = 6; y < 26; y++) for (let x = 8; x < 24; x++) rgba.set([25, 20, 18, 255], 4 * (32 * y + x));
    const shape = path.join(work, 'dark-shape.png');
    await sharp(rgba, { raw: { width: 32, height: 32, channels: 4 } })
      .png()
      .toFile(shape);
    const empty = path.join(work, 'empty.png');
    await sharp({ create: { width: 32, height: 32, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
      .png()
      .toFile(empty);
    const shown = await upload(page, shape);
    expect(shown.last.source).toBe('dark-shape.png');
    const node = (await post('/v1/embeddings', { input: [fs.readFileSync(shape).toString('base64')] })).data[0].embedding as number[];
    node.forEach((v, d) => expect(shown.last.embedding[d]).toBeCloseTo(v, 4));
    expect(await page.textContent('#query-info')).toContain(
      `its transparent parts were filled with rgb(${bg.join(', ')}), the colour of the model's training images' edges`,
    );
    // The shape is seen: not the embedding of an empty transparent image (which alpha-dropping gave).
    const blank = await upload(page, empty);
    const [a, b] = [blank.last.embedding as number[], shown.last.embedding as number[]];
    const dot = (x: number[], y: number[]) => x.reduce((s, v, d) => s + v * y[d], 0);
    const cos = dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b));
    expect(cos).toBeLessThan(0.999);
    expect(await page.textContent('#query-info')).toContain('the model sees an almost uniform image');
    // A 1×1 image is accepted, with a note that it was enlarged.
    const tiny = path.join(work, 'dot.png');
    await sharp({ create: { width: 1, height: 1, channels: 3, background: { r: 200, g: 30, b: 30 } } })
      .png()
      .toFile(tiny);
    expect((await upload(page, tiny)).last.source).toBe('dot.png');
    expect(await page.textContent('#query-info')).toContain("the image is 1×1, far below the model's 32×32; it was enlarged");
  });

  it('clicking a gallery image searches with it and finds itself first', async () => {
    const before = await page.evaluate(() => (window as any).sslkitDemo.queries);
    const card = page.locator('#gallery .card').nth(7);
    const index = Number(await card.getAttribute('data-index'));
    await card.click();
    await page.waitForFunction((n) => (window as any).sslkitDemo.queries > n, before);
    const last = await page.evaluate(() => (window as any).sslkitDemo.last);
    expect(last.neighbours[0].index).toBe(index);
    expect(last.neighbours[0].score).toBeGreaterThan(0.9999);
  });

  it('sends hashed assets precompressed and cached as immutable; the page itself is revalidated', async () => {
    const raw = (p: string, encoding: string) =>
      new Promise<{ headers: http.IncomingHttpHeaders; bytes: number }>((resolve, reject) => {
        http
          .get(`${server.url}${p}`, { headers: { 'accept-encoding': encoding } }, (res) => {
            let bytes = 0;
            res.on('data', (c: Buffer) => (bytes += c.length));
            res.on('end', () => resolve({ headers: res.headers, bytes }));
          })
          .on('error', reject);
      });
    const { files } = JSON.parse(fs.readFileSync(path.join(await ensureDemoBuilt(), 'precache.json'), 'utf8')) as { files: string[] };
    const wasm = `/${files.find((f) => f.endsWith('.wasm'))}`;
    const plain = await raw(wasm, 'identity');
    const br = await raw(wasm, 'br, gzip');
    const gz = await raw(wasm, 'gzip');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect([br.headers['content-encoding'], br.headers['content-type']]).toEqual(['br', 'application/wasm']);
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(br.bytes).toBeLessThan(0.25 * plain.bytes);
    expect(gz.bytes).toBeLessThan(0.3 * plain.bytes);
    for (const r of [plain, br, gz]) expect(r.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect((await raw('/', 'gzip')).headers['cache-control']).toBe('no-cache');
    expect((await raw('/sw.js', 'gzip')).headers['cache-control']).toBe('no-cache');
  });

  it('passes an automated accessibility audit (axe-core) with no serious or critical violations, before and after a query', async () => {
    const audit = async () => {
      await page.addScriptTag({ content: axe.source });
      const r = await page.evaluate(() => (window as any).axe.run(document, { resultTypes: ['violations'] }));
      return (r.violations as { id: string; impact: string; nodes: { target: string[] }[] }[])
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    };
    await ready(page);
    expect(await audit()).toEqual([]);
    await upload(page, queries[5].file);
    expect(await audit()).toEqual([]);
  });

  it('the map has a legend and axes, shows an image under the pointer and searches with it on a click; timings say what they measured', async () => {
    const legend = await page.locator('#map-legend li').allTextContents();
    const k = await page.evaluate(() => (window as any).sslkitDemo.gallery.manifest.clusters.k);
    expect(legend).toHaveLength(k);
    // The gallery is labelled (CIFAR-10 class folders): each cluster names its most common class.
    legend.forEach((l) => expect(l).toMatch(/^cluster \d+: \d+ images, mostly \w+ \(\d+%\)$/));
    expect(await page.textContent('#map-axes')).toMatch(/first principal component of the embeddings \(\d+% of the variance\)/);
    const target = 123;
    const [x, y] = await page.evaluate((i) => (window as any).sslkitDemo.mapPosition(i), target);
    const box = (await page.locator('#map').boundingBox())!;
    const scale = box.width / 420;
    await page.mouse.move(box.x + x * scale, box.y + y * scale);
    await page.waitForSelector('#map-tip:not([hidden])');
    expect(await page.locator('#map-tip .thumb').getAttribute('aria-label')).toMatch(/^gallery image /);
    const before = await page.evaluate(() => (window as any).sslkitDemo.queries);
    await page.mouse.click(box.x + x * scale, box.y + y * scale);
    await page.waitForFunction((n) => (window as any).sslkitDemo.queries > n, before);
    const last = await page.evaluate(() => (window as any).sslkitDemo.last);
    // The point under the pointer (or one drawn on top of it) finds itself first.
    expect(last.neighbours[0].score).toBeGreaterThan(0.9999);
    expect(last.source).toMatch(/^gallery item /);
    expect(last.embedMs).toBeLessThanOrEqual(last.ms);
    expect(await page.textContent('#query-info')).toMatch(/model [\d.]+ ms in the browser · search and cluster [\d.]+ ms in the browser/);
  });

  it('for people: keyboard only, a 390 px screen, k as shown, a failed query clears the old results, drops anywhere, one sheet fetch', async () => {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const p = await ctx.newPage();
    try {
      const thumbLoads: string[] = [];
      p.on('request', (r) => {
        if (/thumbs-\d+\.png/.test(r.url())) thumbLoads.push(r.url());
      });
      await p.goto(`${server.url}/`);
      await ready(p);
      // Thumbnail sheets load when the gallery comes into view, not with the page.
      expect(thumbLoads).toHaveLength(0);
      await p.locator('#gallery .card').first().scrollIntoViewIfNeeded();
      await expect.poll(() => thumbLoads.length).toBeGreaterThan(0);
      await p.evaluate(() => window.scrollTo(0, 0));
      // Nothing wider than the phone's screen.
      expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      // Keyboard: Tab reaches the drop zone, Enter opens the file chooser.
      let focused = '';
      for (let i = 0; i < 10 && focused !== 'drop'; i++) {
        await p.keyboard.press('Tab');
        focused = await p.evaluate(() => document.activeElement?.id ?? '');
      }
      expect(focused).toBe('drop');
      const queriesBefore = await p.evaluate(() => (window as any).sslkitDemo.queries);
      // Listening before the key press turns on Chromium's chooser interception (a round trip later it is in place).
      const chosen = new Promise<FileChooser>((r) => p.once('filechooser', r));
      await p.evaluate(() => 0);
      await p.keyboard.press('Enter');
      const chooser = await chosen;
      await chooser.setFiles(queries[4].file);
      await p.waitForFunction((n) => (window as any).sslkitDemo.queries > n, queriesBefore);
      expect(await p.evaluate(() => (window as any).sslkitDemo.last.source)).toBe(path.basename(queries[4].file));
      expect(await p.locator('#results').getAttribute('aria-live')).toBe('polite');
      // A gallery card is a button: focus it and press Space.
      const card = p.locator('#gallery .card').nth(5);
      expect(await card.getAttribute('role')).toBe('button');
      expect(await card.locator('.thumb').getAttribute('aria-label')).toMatch(/^gallery image /);
      const sheetRequests: string[] = [];
      p.on('request', (r) => {
        if (/thumbs/.test(r.url())) sheetRequests.push(r.url());
      });
      for (const nth of [5, 6]) {
        const before = await p.evaluate(() => (window as any).sslkitDemo.queries);
        await p.locator('#gallery .card').nth(nth).focus();
        await p.keyboard.press(' ');
        await p.waitForFunction((n) => (window as any).sslkitDemo.queries > n, before);
      }
      expect(await p.evaluate(() => (window as any).sslkitDemo.last.neighbours[0].index)).toBe(
        Number(await p.locator('#gallery .card').nth(6).getAttribute('data-index')),
      );
      expect(new Set(sheetRequests).size).toBe(sheetRequests.length); // no sheet fetched twice
      // k: out-of-range values are clamped in the field, and a change re-runs the query.
      const before = await p.evaluate(() => (window as any).sslkitDemo.queries);
      await p.fill('#k', '1000');
      await p.locator('#k').dispatchEvent('change');
      await p.waitForFunction((n) => (window as any).sslkitDemo.queries > n, before);
      expect(await p.inputValue('#k')).toBe('50');
      expect(await p.evaluate(() => (window as any).sslkitDemo.last.neighbours.length)).toBe(50);
      await p.fill('#k', '0');
      await p.locator('#k').dispatchEvent('change');
      await p.waitForFunction(() => (window as any).sslkitDemo.last?.neighbours.length === 1);
      expect(await p.inputValue('#k')).toBe('1');
      // A failed query leaves no results of the previous image behind.
      const bad = path.join(work, 'broken.png');
      fs.writeFileSync(bad, 'not an image');
      const { error, last } = await upload(p, bad);
      expect(error).toMatch(/could not read this file as an image/);
      expect(last).toBeNull();
      expect(await p.locator('#neighbours .card').count()).toBe(0);
      // A file dropped outside the drop zone is a query, and the page stays.
      const url = p.url();
      const dropped = await p.evaluate(
        async (bytes) => {
          const q = (window as any).sslkitDemo.queries;
          const dt = new DataTransfer();
          dt.items.add(new File([new Uint8Array(bytes)], 'dropped.png', { type: 'image/png' }));
          document.querySelector('footer')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
          while ((window as any).sslkitDemo.queries === q) await new Promise((r) => setTimeout(r, 20));
          return (window as any).sslkitDemo.last?.source;
        },
        Array.from(fs.readFileSync(queries[6].file.replace(/\.jpg$/, '.png'))),
      );
      expect(dropped).toBe('dropped.png');
      expect(p.url()).toBe(url);
    } finally {
      await ctx.close();
    }
  });

  it('downloads one WebAssembly runtime with real progress, and reloads offline after the first load (shell, model, gallery and that runtime cached)', async () => {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    const runtimes: string[] = [];
    p.on('request', (r) => {
      if (/ort-wasm[^/]*\.wasm$/.test(r.url())) runtimes.push(path.basename(r.url()));
    });
    ctx.on('request', (r) => {
      if (r.serviceWorker() && /ort-wasm[^/]*\.wasm$/.test(r.url())) runtimes.push(`service worker: ${path.basename(r.url())}`);
    });
    // Every text the loading line shows, as it changes.
    await p.addInitScript(() => {
      (window as any).statusLines = [];
      new MutationObserver(() => {
        const t = document.getElementById('status')?.textContent;
        if (t) (window as any).statusLines.push(t);
      }).observe(document, { subtree: true, childList: true, characterData: true });
    });
    await p.goto(`${server.url}/`);
    await ready(p);
    expect(await p.evaluate(() => (window as any).sslkitDemo.offline)).toBe(true);
    // No WebGPU here: only the plain WebAssembly build (14 MB, not the WebGPU build's 27 MB), fetched once by the page.
    expect(runtimes.filter((r) => !r.startsWith('service worker'))).toEqual([
      expect.stringMatching(/^ort-wasm-simd-threaded-[\w-]+\.wasm$/),
    ]);
    expect(runtimes.filter((r) => r.includes('asyncify'))).toEqual([]);
    const runtimeBytes = fs.statSync(
      path.resolve(import.meta.dirname, '../../node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm'),
    ).size;
    const total = ((runtimeBytes + fs.statSync(model).size) / 1048576).toFixed(1);
    const lines: string[] = await p.evaluate(() => (window as any).statusLines);
    const progress = lines.filter((l) => l.startsWith('model and runtime: '));
    expect(progress.length).toBeGreaterThan(2);
    for (const l of progress) expect(l).toMatch(new RegExp(`^model and runtime: \\d+\\.\\d of ${total.replace('.', '\\.')} MB$`));
    expect(progress[progress.length - 1]).toBe(`model and runtime: ${total} of ${total} MB`);
    await ctx.setOffline(true);
    await p.reload();
    expect(await ready(p)).toMatchObject({ backend: 'wasm' });
    const { last } = await upload(p, queries[2].file);
    expect(last.neighbours).toHaveLength(10);
    await ctx.close();
  });

  it('works from a plain static host (single-threaded), searches a centred gallery as Node does, and reports a broken model or a mismatched gallery', async () => {
    const site = path.join(work, 'site');
    await writeDemoSite(site, model, galleryDir);
    // A gallery that claims twice the model's embedding size.
    const bad = path.join(site, 'bad-gallery');
    fs.cpSync(galleryDir, bad, { recursive: true });
    const m = JSON.parse(fs.readFileSync(path.join(bad, 'manifest.json'), 'utf8'));
    Object.assign(m, { dim: m.dim * 2, count: m.count / 2 });
    m.clusters.k = m.clusters.k / 2;
    m.pca.mean = [...m.pca.mean, ...m.pca.mean];
    fs.writeFileSync(path.join(bad, 'manifest.json'), JSON.stringify(m));
    // The same images indexed with --centre: the page centres its queries on the gallery's mean.
    const centredIndex = path.join(work, 'centred.idx');
    await buildIndex(model, centredIndex, {
      data: `folder:${path.join(work, 'images')}`,
      gallery: path.join(site, 'centred-gallery'),
      centre: true,
    });
    const app = express().use(express.static(site));
    const host = http.createServer(app).listen(0, '127.0.0.1');
    await new Promise((r) => host.once('listening', r));
    const url = `http://127.0.0.1:${(host.address() as { port: number }).port}`;
    const ctx = await browser.newContext();
    try {
      const p = await ctx.newPage();
      await p.goto(`${url}/index.html`);
      expect(await ready(p)).toEqual({ backend: 'wasm', threads: 1 });
      expect(await p.textContent('#backend')).toContain('not cross-origin isolated');
      // No API behind a static host: no "query the server" toggle.
      await p.waitForFunction(() => document.getElementById('use-server-label')!.hidden);
      const { last } = await upload(p, queries[3].file);
      expect(last.neighbours).toHaveLength(10);

      // Centred: the page's query vector and neighbours are Node's over the centred index, and
      // the scores spread out far more than the plain gallery's (shown with two decimals).
      await p.goto(`${url}/index.html?gallery=centred-gallery/`);
      await ready(p);
      const centred = (await upload(p, queries[3].file)).last;
      const idx = loadIndex(centredIndex);
      const enc = await OnnxEncoder.load(model, { log: () => {} });
      const raw = await enc.embed(await imageToInput(fs.readFileSync(queries[3].file), enc.preprocessing, 1e7, 'image'), 1);
      await enc.release();
      const q = centreRows(normalizeRows(raw, idx.dim), idx.dim, idx.model.centre!);
      q.forEach((v, d) => expect(centred.embedding[d]).toBeCloseTo(v, 4));
      expect(centred.neighbours.map((n: any) => n.id)).toEqual(new ExactSearch(idx).search(q, 10).map((h) => h.id));
      const spread = (r: any) => r.neighbours[0].score - r.neighbours[9].score;
      expect(spread(centred)).toBeGreaterThan(3 * spread(last));
      expect(await p.locator('#neighbours .score').first().textContent()).toMatch(/^-?\d\.\d\d$/);

      const errorOf = async (query: string) => {
        await p.goto(`${url}/index.html?${query}`);
        await p.waitForFunction(() => (window as any).sslkitDemo.error !== null);
        expect(await p.isVisible('#error')).toBe(true);
        return p.textContent('#error');
      };
      expect(await errorOf('gallery=bad-gallery/')).toMatch(/gallery holds \d+-d embeddings but the model gives \d+-d ones/);
      expect(await errorOf('model=demo/gallery/manifest.json')).toMatch(/^model: onnxruntime-web could not load/);
      expect(await errorOf('gallery=missing/')).toMatch(/^gallery: .*missing\/manifest\.json answered 404/);
      // A page that failed to load shows no empty interface and says so in the badge.
      expect(await errorOf('model=nope.onnx')).toMatch(/^model: /);
      expect(await p.isVisible('main')).toBe(false);
      expect(await p.textContent('#backend')).toBe('failed to load');
    } finally {
      await ctx.close();
      host.close();
    }
  });

  it('runs an int8 model (sslkit quantize) like any other: the smaller file, the same embeddings as onnxruntime-node', async () => {
    const images = `folder:${path.join(work, 'images')}`;
    const int8 = path.join(work, 'model.int8.onnx');
    await quantizeFile(model, int8, { data: images, calibration: 128, log: () => {} });
    expect(fs.statSync(int8).size).toBeLessThan(0.5 * fs.statSync(model).size);
    const site = path.join(work, 'int8-site');
    const gallery = path.join(work, 'int8-gallery');
    await buildIndex(int8, path.join(work, 'int8.idx'), { data: images, gallery, limit: 200 });
    await writeDemoSite(site, int8, gallery);
    const host = http.createServer(express().use(express.static(site))).listen(0, '127.0.0.1');
    await new Promise((r) => host.once('listening', r));
    const ctx = await browser.newContext();
    try {
      const p = await ctx.newPage();
      await p.goto(`http://127.0.0.1:${(host.address() as { port: number }).port}/index.html`);
      await ready(p);
      const enc = await OnnxEncoder.load(int8, { log: () => {} });
      try {
        for (const q of queries.slice(0, 4)) {
          const { last } = await upload(p, q.file);
          const want = await enc.embed(await imageToInput(fs.readFileSync(q.file), enc.preprocessing, 1e7, 'image'), 1);
          // onnxruntime-web's integer kernels (WebAssembly) against onnxruntime-node's (x86): the same 8-bit arithmetic.
          want.forEach((v, d) => expect(last.embedding[d]).toBeCloseTo(v, 3));
          expect(last.neighbours).toHaveLength(10);
        }
      } finally {
        await enc.release();
      }
    } finally {
      await ctx.close();
      host.close();
    }
  });

  it("shows a ViT's CLS self-attention over the query, equal to onnxruntime-node's", async () => {
    const images = path.join(work, 'images');
    const vit = await tinyModel({ data: `folder:${images}`, dataDir: undefined, backbone: 'vit', batchSize: 64, limit: 256, width: 1 });
    const gal = path.join(work, 'vit-gallery');
    await buildIndex(vit, path.join(work, 'vit.idx'), { data: `folder:${images}`, gallery: gal, limit: 200 });
    const s = await startServer({
      model: vit,
      index: path.join(work, 'vit.idx'),
      gallery: gal,
      staticDir: await ensureDemoBuilt(),
      port: 0,
      log: () => {},
    });
    const ctx = await browser.newContext();
    try {
      const p = await ctx.newPage();
      await p.goto(`${s.url}/`);
      await ready(p);
      expect(await p.isVisible('#attention')).toBe(false);
      const { last } = await upload(p, queries[1].file);
      expect(await p.isVisible('#attention')).toBe(true);
      const session = await ort.InferenceSession.create(vit);
      const enc = await OnnxEncoder.load(vit);
      const x = await imageToInput(fs.readFileSync(queries[1].file), enc.preprocessing, 1e7, 'image');
      const p0 = enc.preprocessing;
      const out = await session.run({ [enc.input]: new ort.Tensor('float32', x, [1, p0.channels, p0.height, p0.width]) });
      const [, heads, patches] = out.attention.dims as number[];
      const node = out.attention.data as Float32Array;
      expect(last.attention).toHaveLength(heads * patches);
      let maxDiff = 0;
      node.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - last.attention[i]))));
      expect(maxDiff).toBeLessThan(1e-4);
      // One overlay of the mean over heads, then one map per head.
      expect(await p.locator('#attention canvas').count()).toBe(heads + 1);
      await p.screenshot({ path: path.join(ARTIFACTS, 'web-demo-vit.png') });
      await enc.release();
      await session.release();
    } finally {
      await ctx.close();
      await s.close();
    }
  });

  it('the service refuses a gallery made with another model', async () => {
    const bad = path.join(work, 'site', 'bad-gallery');
    await expect(startServer({ model, gallery: bad, staticDir: await ensureDemoBuilt(), port: 0, log: () => {} })).rejects.toThrow(
      /holds \d+-d embeddings but .* gives \d+-d ones/,
    );
  });
});
