/**
 * bench/serve: the HTTP service against raw in-process onnxruntime on the same model, and search
 * over 100k × 128 vectors, exact and approximate.
 *  - raw: OnnxEncoder.embed at batch 1, 8 and 32 (images/s), before and after the HTTP runs;
 *  - HTTP: POST /v1/embeddings with one PNG per request at concurrency 1, 8, 32 against
 *    `sslkit serve` in a child process (throughput, p50/p99 latency, ratio to raw at 32, and the
 *    server's CPU time per request, and the mean batch the model ran). The load generator is wrk when it is on PATH (C, so it takes
 *    less of the shared cores), else autocannon; `--load` picks one. `--body raw` sends the PNG
 *    as an image/png body instead of OpenAI-style JSON with base64.
 *  - search: queries/s and latency, exact (typed arrays + heap) and HNSW (usearch), recall@10,
 *    and the time to load a 100k index.
 *
 *   npx tsx bench/serve.ts [--model runs/quickstart/model.onnx] [--seconds 6] [--load wrk|autocannon]
 *     [--body json|raw] [--max-batch 32] [--http-only]
 * A heavier model for the throughput ratio: `sslkit train --backbone resnet18 --max-steps 1
 * --out R`, then `sslkit export R` (a ResNet-18, 11.2M parameters).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { get as httpGet } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import sharp from 'sharp';
import { OnnxEncoder } from '../core/runtime/onnx-encoder.js';
import { Rng } from '../core/random.js';
import { normalizeRows } from '../core/vectors.js';
import { saveIndex } from '../serve/index-file.js';
import { FileIndex } from '../serve/file-store.js';
import { ExactSearch } from '../serve/exact-search.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'runs/quickstart/model.onnx' },
    seconds: { type: 'string', default: '6' },
    load: { type: 'string' },
    body: { type: 'string', default: 'json' },
    'http-only': { type: 'boolean', default: false },
    'max-batch': { type: 'string', default: '32' },
  },
});
const hasWrk = (() => {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (e) {
    return (e as { status?: number }).status === 1; // wrk --version prints usage and exits 1
  }
})();
const loadGen = args.load ?? (hasWrk ? 'wrk' : 'autocannon');
const model = path.resolve(args.model!);
if (!fs.existsSync(model)) throw new Error(`${model}: run 'npm start' first (or pass --model)`);
console.log(`# bench/serve — ${path.basename(model)}; ${os.cpus()[0].model}, ${os.cpus().length} cores; ${new Date().toISOString()}`);

// Raw in-process throughput, measured before and after the HTTP runs (the ratio uses their mean:
// on a shared machine one measurement can be off by 10-20%).
const enc = await OnnxEncoder.load(model, { log: () => {} });
const per = enc.preprocessing.channels * enc.preprocessing.height * enc.preprocessing.width;
async function rawThroughput(): Promise<Record<number, number>> {
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
  return raw;
}
const rawBefore = await rawThroughput();

// HTTP through sslkit serve in a child process.
// A PNG at the model's size with the model's channels (grey for a 1-channel model), as a client
// of that model sends; random pixels, so that decoding does real work.
const { width: pw, height: ph, channels: pc } = enc.preprocessing;
const pixels = Buffer.from(Array.from({ length: pw * ph * 3 }, (_, i) => (i * 2654435761) >>> 24));
let pngPipeline = sharp(pixels, { raw: { width: pw, height: ph, channels: 3 } });
if (pc === 1) pngPipeline = pngPipeline.toColourspace('b-w');
const png = await pngPipeline.png().toBuffer();
const [body, contentType] =
  args.body === 'raw' ? [png, 'image/png'] : [JSON.stringify({ input: png.toString('base64') }), 'application/json'];
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
  args['max-batch']!,
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

/** The server process's CPU seconds so far (user + system, from /proc). */
const serverCpu = () => {
  const f = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
};

interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function autocannonLoad(c: number): Promise<Load> {
  const r = await autocannon({
    url: `${url}/v1/embeddings`,
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
    connections: c,
    duration: Number(args.seconds),
  });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.non2xx + r.errors };
}

function wrkLoad(c: number): Load {
  const bodyFile = path.join(os.tmpdir(), `sslkit-bench-body-${process.pid}`);
  fs.writeFileSync(bodyFile, body);
  const script = path.join(os.tmpdir(), `sslkit-bench-${process.pid}.lua`);
  fs.writeFileSync(
    script,
    `local f = io.open(${JSON.stringify(bodyFile)}, "rb")\nwrk.method = "POST"\nwrk.body = f:read("*a")\nf:close()\n` +
      `wrk.headers["Content-Type"] = "${contentType}"\n` +
      `done = function(summary, latency, requests)\n  io.write(string.format("JSON {\\"p50\\":%d,\\"p99\\":%d,\\"non2xx\\":%d}\\n", latency:percentile(50), latency:percentile(99), summary.errors.status))\nend\n`,
  );
  const out = execFileSync('wrk', ['-t', '1', '-c', String(c), '-d', `${args.seconds}s`, '-s', script, `${url}/v1/embeddings`], {
    encoding: 'utf8',
  });
  fs.rmSync(script);
  fs.rmSync(bodyFile);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]);
  const j = JSON.parse(/JSON (\{.*\})/.exec(out)![1]);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = j.non2xx + (sockErr ? sockErr.slice(1).reduce((a, v) => a + Number(v), 0) : 0);
  return { rps, p50: j.p50 / 1000, p99: j.p99 / 1000, errors };
}

/** The server's batch-size histogram so far: [sum, count]. */
async function batches(): Promise<[number, number]> {
  // A new connection each time (fetch's pooled one may have been closed by the server meanwhile).
  const text = await new Promise<string>((resolve, reject) =>
    httpGet(`${url}/metrics`, { agent: false }, (res) => {
      let t = '';
      res.on('data', (d) => (t += d));
      res.on('end', () => resolve(t));
    }).on('error', reject),
  );
  const num = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return [num('sslkit_batch_size_sum'), num('sslkit_batch_size_count')];
}

const http: (Load & { c: number; cpuMs: number; meanBatch: number })[] = [];
for (const c of [1, 8, 32]) {
  const cpu0 = serverCpu();
  const b0 = await batches();
  const r = loadGen === 'wrk' ? wrkLoad(c) : await autocannonLoad(c);
  const b1 = await batches();
  http.push({
    ...r,
    c,
    cpuMs: ((serverCpu() - cpu0) * 1000) / (r.rps * Number(args.seconds)),
    meanBatch: (b1[0] - b0[0]) / (b1[1] - b0[1]),
  });
}
child.kill('SIGTERM');
const rawAfter = await rawThroughput();
await enc.release();
const raw32 = (rawBefore[32] + rawAfter[32]) / 2;
console.log('| raw onnxruntime-node (in process), img/s | batch 1 | batch 8 | batch 32 |\n|---|---|---|---|');
for (const [when, r] of [
  ['before HTTP', rawBefore],
  ['after HTTP', rawAfter],
] as const)
  console.log(`| ${when} | ${r[1].toFixed(0)} | ${r[8].toFixed(0)} | ${r[32].toFixed(0)} |`);
console.log(`\nHTTP: ${loadGen}, ${args.body === 'raw' ? 'image/png bodies' : 'JSON bodies with base64 PNG'} (${png.length} bytes)`);
console.log(
  '| concurrency | requests/s (= img/s) | p50 ms | p99 ms | vs raw batch 32 (mean) | server CPU ms/request | mean model batch |\n|---|---|---|---|---|---|---|',
);
for (const r of http)
  console.log(
    `| ${r.c} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${(r.rps / raw32).toFixed(2)}× | ${r.cpuMs.toFixed(2)} | ${r.meanBatch.toFixed(1)} |${r.errors ? ` (${r.errors} errors)` : ''}`,
  );
if (args['http-only']) process.exit(0);

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
const exactStore = FileIndex.open(file, { annThreshold: Infinity });
const loadExact = performance.now() - t;
t = performance.now();
const annStore = FileIndex.open(file, { annThreshold: 1 });
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
const reopened = FileIndex.open(file, { annThreshold: 1 });
console.log(`| HNSW reopened from its saved graph | ${(performance.now() - t).toFixed(0)} ms | | | (reused: ${reopened.annLoaded}) |`);
reopened.close();
for (const f of [file, `${file}.wal`, `${file}.hnsw`, `${file}.hnsw.json`]) fs.rmSync(f, { force: true });
