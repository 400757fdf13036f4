/**
 * bench/browser: per-image embedding latency of the web demo's model in Chromium (onnxruntime-web,
 * WebAssembly SIMD with 1 and N threads) beside onnxruntime-node (1 and N threads) on the same
 * model file, in the same run. Batch 1, median and p90 over --runs after a warm-up.
 *
 * Then the first load on a throttled link (--mbit, 20 by default, 40 ms latency): the bytes
 * transferred (as sent, compressed where the server compressed), by kind, and the time until the
 * page is usable (its model and gallery loaded), with a cold cache.
 *
 *   npx tsx bench/browser.ts [--model runs/quickstart/model.onnx] [--data fashion-mnist] [--runs 200] [--mbit 20]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { OnnxEncoder } from '../core/runtime/onnx-encoder.js';
import { buildIndex } from '../serve/build-index.js';
import { startServer } from '../serve/server.js';
import { ensureDemoBuilt } from '../web-demo/build.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'runs/quickstart/model.onnx' },
    data: { type: 'string', default: 'fashion-mnist' },
    runs: { type: 'string', default: '200' },
    mbit: { type: 'string', default: '20' },
  },
});
const model = path.resolve(args.model!);
if (!fs.existsSync(model)) throw new Error(`${model}: run 'npm start' first (or pass --model)`);
const runs = Number(args.runs);
const cores = os.cpus().length;
console.log(`# bench/browser — ${path.basename(model)}; ${os.cpus()[0].model}, ${cores} cores; ${new Date().toISOString()}`);

const stats = (ms: number[]) => {
  const s = [...ms].sort((a, b) => a - b);
  return { p50: s[Math.floor(s.length / 2)], p90: s[Math.floor(s.length * 0.9)] };
};
const rows: { where: string; threads: number; p50: number; p90: number }[] = [];

// onnxruntime-node, same model, batch 1.
for (const threads of [1, cores]) {
  const enc = await OnnxEncoder.load(model, { threads, log: () => {} });
  const x = new Float32Array(enc.preprocessing.channels * enc.preprocessing.height * enc.preprocessing.width).map((_, i) => Math.sin(i));
  const ms: number[] = [];
  for (let i = 0; i < runs + 10; i++) {
    const t = performance.now();
    await enc.embed(x, 1);
    if (i >= 10) ms.push(performance.now() - t);
  }
  await enc.release();
  rows.push({ where: 'onnxruntime-node', threads, ...stats(ms) });
}

// Chromium: the demo page served by sslkit serve (cross-origin isolated, so threads work).
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sslkit-bench-browser-'));
await buildIndex(model, path.join(dir, 'g.idx'), { data: args.data!, limit: 1000, gallery: path.join(dir, 'gallery'), log: () => {} });
const server = await startServer({
  model,
  index: path.join(dir, 'g.idx'),
  gallery: path.join(dir, 'gallery'),
  staticDir: await ensureDemoBuilt(),
  port: 0,
  log: () => {},
});
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
for (const threads of [1, cores]) {
  const page = await browser.newPage();
  await page.goto(`${server.url}/?backend=wasm&threads=${threads}`);
  const r = await page.evaluate(() => (window as any).sslkitDemo.ready);
  const ms: number[] = await page.evaluate((n) => (window as any).sslkitDemo.bench(n, 10), runs);
  rows.push({ where: `Chromium wasm (${r.backend})`, threads: r.threads, ...stats(ms) });
  await page.close();
}

// First load on a throttled link, cold cache: bytes on the wire by kind, and the time to usable.
const ctx = await browser.newContext();
const page = await ctx.newPage();
const cdp = await ctx.newCDPSession(page);
await cdp.send('Network.enable');
await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
const bps = (Number(args.mbit) * 1e6) / 8;
await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 40, downloadThroughput: bps, uploadThroughput: bps });
const wire = new Map<string, number>();
const urls = new Map<string, string>();
cdp.on('Network.responseReceived', (e) => urls.set(e.requestId, e.response.url));
cdp.on('Network.loadingFinished', (e) => {
  const url = urls.get(e.requestId) ?? '';
  const kind = /\.wasm$/.test(url)
    ? 'WebAssembly runtime'
    : /\.onnx$/.test(url)
      ? 'model'
      : /\/demo\/gallery\//.test(url)
        ? /thumbs/.test(url)
          ? 'gallery thumbnails'
          : 'gallery data'
        : 'page (HTML, JS, CSS)';
  wire.set(kind, (wire.get(kind) ?? 0) + e.encodedDataLength);
});
const t0 = performance.now();
await page.goto(`${server.url}/`);
await page.evaluate(() => (window as any).sslkitDemo.ready);
const usable = (performance.now() - t0) / 1000;
await ctx.close();
await browser.close();
await server.close();
fs.rmSync(dir, { recursive: true, force: true });

const node1 = rows[0].p50;
console.log('| runtime | threads | p50 ms/image | p90 ms/image | p50 vs onnxruntime-node 1 thread |');
console.log('| --- | --- | --- | --- | --- |');
for (const r of rows)
  console.log(`| ${r.where} | ${r.threads} | ${r.p50.toFixed(3)} | ${r.p90.toFixed(3)} | ${(r.p50 / node1).toFixed(2)}× |`);

const total = [...wire.values()].reduce((a, b) => a + b, 0);
console.log(`\n## First load, cold cache, ${args.mbit} Mbit/s and 40 ms latency: usable after ${usable.toFixed(1)} s\n`);
console.log('| what | transferred |\n| --- | --- |');
for (const [kind, bytes] of [...wire].sort((a, b) => b[1] - a[1])) console.log(`| ${kind} | ${(bytes / 1e6).toFixed(2)} MB |`);
console.log(`| **total** | **${(total / 1e6).toFixed(2)} MB** |`);
