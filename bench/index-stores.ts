/**
 * bench/index-stores: the file store beside PostgreSQL with pgvector on the same 100,000 × 128
 * vectors, in one run (issue 17).
 *  - ingest: items/s until the index is searchable by HNSW, through each store's write path (file:
 *    write-ahead log, snapshot, graph built on open; PostgreSQL: one transaction per batch of 500,
 *    then the HNSW index built over the rows), and PostgreSQL with 2 writer processes at once;
 *  - search: p50/p99 latency and recall@10 against exact search, file store HNSW (usearch) and
 *    pgvector HNSW at ef_search 40 and 100, plus each store's exact search;
 *  - service: POST /v1/search (by embedding) req/s through one and two `sslkit serve` replicas on
 *    the PostgreSQL index, and one on the file index, with the same load generator.
 * The vectors are embedding-like: 2,000 clusters in a 16-d latent space mapped to 128-d (real
 * embeddings are clustered and of low intrinsic dimension; uniform random vectors in 128-d are a
 * worst case no index sees in practice), the queries drawn from the same distribution.
 * PostgreSQL is a throw-away cluster (tests/postgres.ts) with its default settings.
 *
 *   npx tsx bench/index-stores.ts [--n 100000] [--seconds 8] [--concurrency 16]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Rng } from '../core/random.js';
import { normalizeRows } from '../core/vectors.js';
import { saveIndex } from '../serve/index-file.js';
import { FileIndex } from '../serve/file-store.js';
import { PostgresStore } from '../serve/postgres-store.js';
import { ExactSearch } from '../serve/exact-search.js';
import { modelIdentity } from '../serve/identity.js';
import { OnnxEncoder } from '../core/runtime/onnx-encoder.js';
import { train } from '../train/trainer.js';
import { TrainConfigSchema } from '../train/config.js';
import { exportRun } from '../export/exporter.js';
import { startPostgres } from '../tests/postgres.js';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '100000' },
    seconds: { type: 'string', default: '8' },
    concurrency: { type: 'string', default: '16' },
    // A writer process of the parallel-ingest run (internal).
    'ingest-child': { type: 'string' },
  },
});
const N = Number(args.n);
const DIM = 128;
const BATCH = 500;

// Embedding-like data: 2,000 clusters in a 16-d latent space, mapped to 128-d by one fixed random
// linear map, plus a little full-rank noise. Data and queries share the clusters and the map.
const LATENT = 16;
const structure = new Rng(0);
const centres = Float32Array.from({ length: 2000 * LATENT }, () => structure.normal());
const lift = Float32Array.from({ length: DIM * LATENT }, () => structure.normal());
function mixture(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(n * DIM);
  const z = new Float32Array(LATENT);
  for (let i = 0; i < n; i++) {
    const c = rng.int(2000);
    for (let l = 0; l < LATENT; l++) z[l] = centres[c * LATENT + l] + 0.5 * rng.normal();
    for (let j = 0; j < DIM; j++) {
      let v = 0.3 * rng.normal();
      for (let l = 0; l < LATENT; l++) v += lift[j * LATENT + l] * z[l];
      x[i * DIM + j] = v;
    }
  }
  return normalizeRows(x, DIM);
}

const entries = (x: Float32Array, from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => ({
    item: { id: String(from + i) },
    vector: x.subarray((from + i) * DIM, (from + i + 1) * DIM),
  }));

// A writer process: adds its half of the items (by batch parity) to the PostgreSQL table.
if (args['ingest-child']) {
  const [url, part] = args['ingest-child'].split('|');
  const x = mixture(N, 1);
  const store = await PostgresStore.open(url);
  for (let b = Number(part); b * BATCH < N; b += 2) await store.add(entries(x, b * BATCH, Math.min(N, (b + 1) * BATCH)));
  await store.close();
  process.exit(0);
}

const pct = (a: number[], p: number) => a.slice().sort((u, v) => u - v)[Math.min(a.length - 1, Math.floor((p / 100) * a.length))];
const ms = (v: number) => `${v.toFixed(2)} ms`;
console.log(`# bench/index-stores — ${N} × ${DIM}; ${os.cpus()[0].model}, ${os.cpus().length} cores; ${new Date().toISOString()}`);

// A 128-d encoder (convnet, width 1, one training step): the service checks the index's dimension and model.
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sslkit-bench-'));
await train(
  TrainConfigSchema.parse({
    method: 'simclr',
    data: 'fashion-mnist-small',
    maxSteps: 1,
    batchSize: 32,
    limit: 64,
    knnMemory: 0,
    tuneConv: false,
    device: 'cpu',
    workers: 0,
    out: work,
  }),
  { log: () => {} },
);
const model = path.join(work, 'model.onnx');
await exportRun(work, { out: model, log: () => {} });
const enc = await OnnxEncoder.load(model, { log: () => {} });
const identity = modelIdentity(model, enc);
await enc.release();

const x = mixture(N, 1);
const queries = mixture(200, 2);
const exact = new ExactSearch({
  dim: DIM,
  metric: 'cosine',
  model: identity,
  items: Array.from({ length: N }, (_, i) => ({ id: String(i) })),
  vectors: x,
  clusters: { k: 1, centroids: x.subarray(0, DIM), assign: new Int32Array(N) },
});
const truth = Array.from({ length: queries.length / DIM }, (_, q) =>
  exact.search(queries.subarray(q * DIM, (q + 1) * DIM), 10).map((h) => h.id),
);
const recall = (got: string[][]) => got.reduce((t, ids, q) => t + ids.filter((id) => truth[q].includes(id)).length, 0) / (10 * got.length);

const rows: string[] = ['| | ingest (items/s) | search p50 | search p99 | recall@10 |', '| --- | --- | --- | --- | --- |'];
async function searchRow(name: string, ingest: string, search: (q: Float32Array) => Promise<string[]>) {
  const lat: number[] = [];
  const got: string[][] = [];
  for (let q = 0; q < queries.length / DIM; q++) {
    const t = performance.now();
    got.push(await search(queries.subarray(q * DIM, (q + 1) * DIM)));
    lat.push(performance.now() - t);
  }
  rows.push(`| ${name} | ${ingest} | ${ms(pct(lat, 50))} | ${ms(pct(lat, 99))} | ${recall(got).toFixed(3)} |`);
  console.log(rows.at(-1));
}

// File store: the snapshot starts empty.
const file = path.join(work, 'bench.idx');
saveIndex(file, {
  dim: DIM,
  metric: 'cosine',
  model: identity,
  items: [],
  vectors: new Float32Array(0),
  clusters: { k: 1, centroids: x.subarray(0, DIM), assign: new Int32Array(0) },
});
// Through the write-ahead log (an fsync per batch), then a snapshot and a reopen that builds the HNSW graph.
let t = performance.now();
const writer = FileIndex.open(file);
for (let b = 0; b * BATCH < N; b++) writer.add(entries(x, b * BATCH, Math.min(N, (b + 1) * BATCH)));
writer.snapshot();
writer.close();
const fileStore = FileIndex.open(file, { annThreshold: 1 });
const fileIngest = `${((N / (performance.now() - t)) * 1000).toFixed(0)}`;
await searchRow('file store, HNSW (usearch)', fileIngest, async (q) => fileStore.nearest(q, 10).map((h) => h.id));
fileStore.snapshot(); // saves the graph for the service below
fileStore.close();
const exactFile = FileIndex.open(file, { annThreshold: Infinity });
await searchRow('file store, exact', '', async (q) => exactFile.nearest(q, 10).map((h) => h.id));
exactFile.close();

// PostgreSQL: one writer, then two writer processes into a second table.
const db = await startPostgres();
try {
  const url1 = db.url('bench1');
  t = performance.now();
  const pgStore = await PostgresStore.open(url1, { create: { dim: DIM, model: identity }, annThreshold: 1 });
  for (let b = 0; b * BATCH < N; b++) await pgStore.add(entries(x, b * BATCH, Math.min(N, (b + 1) * BATCH)));
  const loaded1 = performance.now() - t;
  await pgStore.buildAnnIndex();
  const pgIngest1 = (N / (performance.now() - t)) * 1000;
  console.log(
    `PostgreSQL, 1 writer: rows loaded in ${(loaded1 / 1000).toFixed(1)} s, HNSW index built in ${((performance.now() - t - loaded1) / 1000).toFixed(1)} s`,
  );
  for (const ef of [40, 100])
    await searchRow(`PostgreSQL, pgvector HNSW, ef_search ${ef}`, ef === 40 ? pgIngest1.toFixed(0) : '', async (q) =>
      (await pgStore.nearest(q, 10, { efSearch: ef })).map((h) => h.id),
    );
  await pgStore.close();
  const pgExact = await PostgresStore.open(url1, { annThreshold: Infinity });
  await searchRow('PostgreSQL, exact (sequential scan)', '', async (q) => (await pgExact.nearest(q, 10)).map((h) => h.id));
  await pgExact.close();

  const url2 = db.url('bench2');
  await (await PostgresStore.open(url2, { create: { dim: DIM, model: identity } })).close();
  t = performance.now();
  const child = (part: number) =>
    new Promise<void>((resolve, reject) => {
      const c = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, '--n', String(N), '--ingest-child', `${url2}|${part}`], {
        stdio: 'inherit',
      });
      c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer ${part} exited ${code}`))));
    });
  await Promise.all([child(0), child(1)]);
  const loaded2 = performance.now() - t;
  const second = await PostgresStore.open(url2);
  await second.buildAnnIndex();
  await second.close();
  const pgIngest2 = (N / (performance.now() - t)) * 1000;
  console.log(
    `PostgreSQL, 2 writers: rows loaded in ${(loaded2 / 1000).toFixed(1)} s, HNSW index built in ${((performance.now() - t - loaded2) / 1000).toFixed(1)} s`,
  );
  console.log(rows.join('\n'));
  console.log(
    `\nPostgreSQL ingest: 1 writer ${pgIngest1.toFixed(0)} items/s, 2 writer processes ${pgIngest2.toFixed(0)} items/s (${(pgIngest2 / pgIngest1).toFixed(2)}x)`,
  );

  // The service: POST /v1/search by embedding, `concurrency` clients for `seconds`, round-robin over the replicas.
  const serve = (index: string) =>
    new Promise<{ url: string; child: ChildProcess }>((resolve, reject) => {
      const c = spawn(process.execPath, [
        'bin/sslkit.js',
        'serve',
        '--model',
        model,
        '--index',
        index,
        '--port',
        '0',
        '--device',
        'cpu',
        '--ann-threshold',
        '1',
      ]);
      let out = '';
      c.stdout.on('data', (d) => {
        out += d;
        const m = /sslkit serve: (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) resolve({ url: m[1], child: c });
      });
      c.on('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
    });
  const bodies = Array.from({ length: queries.length / DIM }, (_, q) =>
    JSON.stringify({ embedding: Array.from(queries.subarray(q * DIM, (q + 1) * DIM)), k: 10 }),
  );
  async function load(urls: string[]): Promise<{ rps: number; p50: number; p99: number }> {
    const end = performance.now() + Number(args.seconds) * 1000;
    const lat: number[] = [];
    let i = 0;
    await Promise.all(
      Array.from({ length: Number(args.concurrency) }, async () => {
        while (performance.now() < end) {
          const n = i++;
          const s = performance.now();
          const r = await fetch(`${urls[n % urls.length]}/v1/search`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: bodies[n % bodies.length],
          });
          await r.arrayBuffer();
          if (r.status !== 200) throw new Error(`search answered ${r.status}`);
          lat.push(performance.now() - s);
        }
      }),
    );
    return { rps: lat.length / Number(args.seconds), p50: pct(lat, 50), p99: pct(lat, 99) };
  }
  const svc: string[] = ['| service | req/s | p50 | p99 |', '| --- | --- | --- | --- |'];
  const one = [await serve(file)];
  const f1 = await load(one.map((r) => r.url));
  svc.push(`| file store, 1 replica | ${f1.rps.toFixed(0)} | ${ms(f1.p50)} | ${ms(f1.p99)} |`);
  one[0].child.kill('SIGTERM');
  const replicas = [await serve(url1), await serve(url1)];
  for (const count of [1, 2]) {
    const r = await load(replicas.slice(0, count).map((p) => p.url));
    svc.push(`| PostgreSQL, ${count} replica${count > 1 ? 's' : ''} | ${r.rps.toFixed(0)} | ${ms(r.p50)} | ${ms(r.p99)} |`);
  }
  for (const r of replicas) r.child.kill('SIGTERM');
  console.log(
    `\n${svc.join('\n')}\n(${args.concurrency} concurrent clients in this process for ${args.seconds} s each; replicas, PostgreSQL and the clients share the ${os.cpus().length} cores)`,
  );
} finally {
  db.remove();
  fs.rmSync(work, { recursive: true, force: true });
}
