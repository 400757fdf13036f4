/**
 * bench/serve: the HTTP service against raw in-process onnxruntime on the same model, and search
 * over 100k × 128 vectors, exact and approximate.
 *  - raw: OnnxEncoder.embed at batch 1, 8 and 32 (images/s);
 *  - HTTP: POST /v1/embeddings with one PNG per request from autocannon at concurrency 1, 8, 32
 *    against `sslkit serve` in a child process (throughput, p50/p99 latency, ratio to raw at 32);
 *  - search: queries/s and latency, exact (typed arrays + heap) and HNSW (usearch), recall@10,
 *    and the time to load a 100k index.
 *
 *   npx tsx bench/serve.ts [--model runs/quickstart/model.onnx] [--seconds 6]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import sharp from 'sharp';
import { OnnxEncoder } from '../export/onnx-encoder.js';
import { Rng } from '../core/random.js';
import { normalizeRows } from '../core/vectors.js';
import { saveIndex } from '../serve/index-file.js';
import { IndexStore } from '../serve/store.js';
import { ExactSearch } from '../serve/exact-search.js';

const { values: args } = parseArgs({
  options: { model: { type: 'string', default: 'runs/quickstart/model.onnx' }, seconds: { type: 'string', default: '6' } },
});
const model = path.resolve(args.model!);
if (!fs.existsSync(model)) throw new Error(`${model}: run 'npm start' first (or pass --model)`);
console.log(`# bench/serve — ${path.basename(model)}; ${os.cpus()[0].model}, ${os.cpus().length} cores; ${new Date().toISOString()}`);

// Raw in-process throughput.
const enc = await OnnxEncoder.load(model, { log: () => {} });
const per = enc.preprocessing.channels * enc.preprocessing.height * enc.preprocessing.width;
const raw: Record<number, number> = {};
for (const b of [1, 8, 32]) {
  const x = Float32Array.from({ length: b * per }, (_, i) => Math.sin(i));
  await enc.embed(x, b, b);
  const t = performance.now();
  let n = 0;
  while (performance.now() - t < 2000) {
    await enc.embed(x, b, b);
    n += b;
  }
  raw[b] = n / ((performance.now() - t) / 1000);
}
await enc.release();
console.log(
  `| raw onnxruntime-node (in process) | batch 1: ${raw[1].toFixed(0)} img/s | batch 8: ${raw[8].toFixed(0)} img/s | batch 32: ${raw[32].toFixed(0)} img/s |`,
);

// HTTP through sslkit serve in a child process.
const png = await sharp({
  create: { width: enc.preprocessing.width, height: enc.preprocessing.height, channels: 3, background: { r: 120, g: 80, b: 200 } },
})
  .png()
  .toBuffer();
const body = JSON.stringify({ input: png.toString('base64') });
const child = spawn(process.execPath, [
  path.resolve(import.meta.dirname, '../bin/sslkit.js'),
  'serve',
  '--model',
  model,
  '--port',
  '0',
  '--device',
  'cpu',
  '--max-batch',
  '32',
  '--max-delay-ms',
  '2',
]);
const url = await new Promise<string>((resolve) => {
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
    const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(out);
    if (m) resolve(m[1]);
  });
});
console.log('| concurrency | requests/s (= img/s) | p50 ms | p99 ms | vs raw batch 32 |\n|---|---|---|---|---|');
for (const c of [1, 8, 32]) {
  const r = await autocannon({
    url: `${url}/v1/embeddings`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: c,
    duration: Number(args.seconds),
  });
  console.log(
    `| ${c} | ${r.requests.average.toFixed(0)} | ${r.latency.p50} | ${r.latency.p99} | ${(r.requests.average / raw[32]).toFixed(2)}× |${r.non2xx ? ` (${r.non2xx} non-2xx)` : ''}`,
  );
}
child.kill('SIGTERM');

// Search at 100k × 128.
const n = 100_000;
const d = 128;
const rng = new Rng(1);
const centres = Array.from({ length: 100 }, () => Float32Array.from({ length: d }, () => rng.normal()));
const vectors = new Float32Array(n * d);
for (let i = 0; i < n; i++) {
  const c = centres[rng.int(100)];
  for (let t = 0; t < d; t++) vectors[i * d + t] = c[t] + 0.7 * rng.normal();
}
normalizeRows(vectors, d);
const file = path.join(os.tmpdir(), `sslkit-bench-${process.pid}.idx`);
saveIndex(file, {
  dim: d,
  metric: 'cosine',
  model: { file: 'synthetic', bytes: 0, embeddingDim: d, metadata: {} },
  items: Array.from({ length: n }, (_, i) => ({ id: String(i) })),
  vectors,
  clusters: { k: 1, centroids: vectors.slice(0, d), assign: new Int32Array(n) },
});
let t = performance.now();
const exactStore = IndexStore.open(file, { annThreshold: Infinity });
const loadExact = performance.now() - t;
t = performance.now();
const annStore = IndexStore.open(file, { annThreshold: 1 });
const loadAnn = performance.now() - t;
const queries = Array.from({ length: 200 }, () => {
  const b = rng.int(n);
  return Float32Array.from(vectors.subarray(b * d, (b + 1) * d), (v) => v + 0.05 * rng.normal());
});
const exact = new ExactSearch(exactStore.view());
t = performance.now();
const truth = queries.map((q) => new Set(exact.search(q, 10).map((r) => r.id)));
const exactMs = (performance.now() - t) / queries.length;
t = performance.now();
let hits = 0;
queries.forEach((q, i) => (hits += annStore.nearest(q, 10).filter((r) => truth[i].has(r.id)).length));
const annMs = (performance.now() - t) / queries.length;
console.log(`| search 100k × 128 | load | per query | queries/s | recall@10 |\n|---|---|---|---|---|`);
console.log(`| exact | ${loadExact.toFixed(0)} ms | ${exactMs.toFixed(2)} ms | ${(1000 / exactMs).toFixed(0)} | 1 |`);
console.log(
  `| HNSW (usearch) | ${loadAnn.toFixed(0)} ms (incl. build) | ${annMs.toFixed(3)} ms | ${(1000 / annMs).toFixed(0)} | ${(hits / 2000).toFixed(4)} |`,
);
exactStore.close();
annStore.snapshot(); // saves the HNSW graph beside the index
annStore.close();
t = performance.now();
const reopened = IndexStore.open(file, { annThreshold: 1 });
console.log(`| HNSW reopened from its saved graph | ${(performance.now() - t).toFixed(0)} ms | | | (reused: ${reopened.annLoaded}) |`);
reopened.close();
for (const f of [file, `${file}.wal`, `${file}.hnsw`, `${file}.hnsw.json`]) fs.rmSync(f, { force: true });
