/**
 * The PostgreSQL index against a real PostgreSQL 15 with pgvector (issue 17): two service
 * replicas share one index (writes, deletes and a rebuild seen by the other at once); `kill -9`
 * of a replica in a stream of writes loses no acknowledged write, three times over; PostgreSQL
 * stopped and started under a running service gives 503s and unreadiness, then recovers by
 * itself; two `--shard` indexing jobs fill the same table as one job; bad URLs and an
 * unreachable server are clear errors that never show the password.
 */
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIndex, buildPostgresIndex } from '../../serve/build-index.js';
import { startServer, type RunningServer } from '../../serve/server.js';
import { FASHION_DIR, hasFashion, httpJson, isolatedCache, serveProcess, tinyModel, tmpDir } from '../helpers.js';
import { hasPostgres, startPostgres, type TestPostgres } from '../postgres.js';

const bin = path.resolve(import.meta.dirname, '../../bin/sslkit.js');

/** `sslkit …` as a child process; resolves with its output when it exits. */
function sslkit(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args]);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

describe.runIf(hasFashion && hasPostgres)('the PostgreSQL index', () => {
  let model: string;
  let db: TestPostgres;
  let url: string;
  let dim: number;
  const logs: string[] = [];
  let a: RunningServer;
  let b: RunningServer;

  /** `sslkit index` of `limit` Fashion-MNIST test images into `out`. */
  const indexJob = (out: string, limit: number, ...more: string[]) =>
    sslkit(['index', model, '--data', 'fashion-mnist', '--data-dir', FASHION_DIR, '--limit', String(limit), '--out', out, ...more]);

  /** The ids in a table, straight from PostgreSQL. */
  const idsIn = async (table: string) => new Set((await db.query(`SELECT id FROM "${table}"`)).map((r) => r.id as string));

  beforeAll(async () => {
    isolatedCache();
    model = await tinyModel();
    db = await startPostgres();
    // trust authentication ignores the password, so it can be checked that no log line shows it.
    url = `postgres://postgres:hunter2@127.0.0.1:${db.port}/postgres?table=shared`;
    const built = await buildPostgresIndex(model, url, {
      data: 'fashion-mnist',
      dataDir: FASHION_DIR,
      limit: 100,
      log: (l) => logs.push(l),
    });
    dim = built.dim;
    const o = { model, index: url, port: 0, device: 'cpu' as const, log: (l: string) => logs.push(l) };
    [a, b] = [await startServer(o), await startServer(o)];
  }, 180_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    db?.remove();
  });

  const vec = (i: number) => Array.from({ length: dim }, (_, j) => Math.cos(i * 7.1 + j));

  it('two replicas: a write acknowledged by one is found by the other; deletes and a rebuild likewise', async () => {
    const w = await httpJson(`${a.url}/v1/index/items`, { items: [{ id: 'via-a', embedding: vec(1), metadata: { by: 'a' } }] });
    expect(w).toMatchObject({ status: 201, body: { count: 101 } });
    const seen = await httpJson(`${b.url}/v1/search`, { embedding: vec(1), k: 1 });
    expect(seen.body.data[0]).toMatchObject({ id: 'via-a', metadata: { by: 'a' } });
    expect((await httpJson(`${b.url}/v1/index/items/via-a`, undefined, 'DELETE')).status).toBe(200);
    expect((await httpJson(`${a.url}/v1/search`, { embedding: vec(1), k: 1 })).body.data[0].id).not.toBe('via-a');
    expect((await httpJson(`${a.url}/v1/clusters/rebuild`, { k: 3 })).body).toEqual({ k: 3 });
    expect((await httpJson(`${b.url}/v1/clusters`)).body.k).toBe(3);
    // One rebuild at a time across replicas.
    const [r1, r2] = await Promise.all([
      httpJson(`${a.url}/v1/clusters/rebuild`, { k: 5 }),
      httpJson(`${b.url}/v1/clusters/rebuild`, { k: 6 }),
    ]);
    const codes = [r1, r2].map((r) => (r.status === 200 ? 'ok' : r.body.error.code)).sort();
    expect(codes.includes('ok')).toBe(true);
    expect(codes.every((c) => c === 'ok' || c === 'rebuild_in_progress')).toBe(true);
    expect((await httpJson(`${a.url}/v1/clusters`)).body.clusters.reduce((t: number, c: { size: number }) => t + c.size, 0)).toBe(100);
    expect((await httpJson(`${a.url}/v1/models`)).body.data[0].index).toMatchObject({ engine: 'postgres', items: 100, dim });
  });

  it('kill -9 of a replica in a stream of writes loses no acknowledged write, three times over', async () => {
    const acked = new Set<string>();
    for (let round = 0; round < 3; round++) {
      const r = await serveProcess(['--model', model, '--index', url]);
      let n = 0;
      let stop = false;
      // Four writers, each a write after the other; the replica dies under them.
      const writer = async (w: number) => {
        while (!stop) {
          const id = `r${round}-w${w}-${n++}`;
          try {
            const res = await httpJson(`${r.url}/v1/index/items`, { items: [{ id, embedding: vec(n) }] });
            if (res.status === 201) acked.add(id);
          } catch {
            return; // the connection died with the replica: not acknowledged
          }
        }
      };
      const writers = Array.from({ length: 4 }, (_, w) => writer(w));
      await new Promise((res) => setTimeout(res, 700 + 300 * round));
      const closed = new Promise((res) => r.child.once('close', res));
      r.child.kill('SIGKILL');
      stop = true;
      await Promise.all(writers);
      await closed;
      expect(r.output()).not.toContain('hunter2');
    }
    expect(acked.size).toBeGreaterThan(20);
    const stored = await idsIn('shared');
    expect([...acked].filter((id) => !stored.has(id))).toEqual([]);
    // And the surviving replicas see them.
    expect((await httpJson(`${b.url}/readyz`)).body.index).toBe(stored.size);
  });

  it('PostgreSQL stopped under a running service: 503s and not ready, then it recovers by itself', async () => {
    db.stop();
    try {
      const r = await httpJson(`${a.url}/v1/search`, { embedding: vec(2), k: 3 });
      expect([r.status, r.body.error.code]).toEqual([503, 'index_unavailable']);
      expect(r.body.error.message).toMatch(/the index database is unreachable/);
      const w = await httpJson(`${a.url}/v1/index/items`, { items: [{ id: 'while-down', embedding: vec(3) }] });
      expect([w.status, w.body.error.code]).toEqual([503, 'index_unavailable']);
      const ready = await httpJson(`${a.url}/readyz`);
      expect([ready.status, ready.body.ready, ready.body.index_reachable]).toEqual([503, false, false]);
      // What does not need the index still works.
      expect((await httpJson(`${a.url}/healthz`)).status).toBe(200);
    } finally {
      db.start();
    }
    expect((await httpJson(`${a.url}/readyz`)).body).toMatchObject({ ready: true, index_reachable: true });
    const r = await httpJson(`${a.url}/v1/search`, { embedding: vec(2), k: 3 });
    expect([r.status, r.body.data.length]).toEqual([200, 3]);
    expect((await httpJson(`${b.url}/v1/index/items`, { items: [{ id: 'after', embedding: vec(4) }] })).status).toBe(201);
    const metrics = await (await fetch(`${a.url}/metrics`)).text();
    expect(metrics).toMatch(/sslkit_index_query_errors_total\{op="search",code="[^"]+"\} [1-9]/);
    expect(logs.join('\n')).not.toContain('hunter2');
  });

  it('two --shard jobs fill the same table as one job, and a shard run again changes nothing', async () => {
    const jobs = await Promise.all([
      indexJob(db.url('sharded'), 300, '--shard', '0/2'),
      indexJob(db.url('sharded'), 300, '--shard', '1/2'),
    ]);
    for (const j of jobs) expect(j.code, j.err).toBe(0);
    expect(jobs.map((j) => j.out).join('')).toMatch(/wrote 150 vectors × \d+ \(shard \d\/2\).*clustered into 10/);
    const one = await indexJob(db.url('whole'), 300);
    expect(one.code, one.err).toBe(0);
    expect(one.out).toMatch(
      /wrote 300 vectors × \d+ to postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres\?table=whole: 300 items in the table; clustered into 10/,
    );
    const rows = async (t: string) =>
      (
        await db.query(
          `SELECT i.id, i.embedding::text AS e, i.metadata, a.cluster FROM "${t}" i JOIN "${t}_assign" a ON a.id = i.id ORDER BY i.id COLLATE "C"`,
        )
      ).map((r) => ({ id: r.id as string, metadata: r.metadata, cluster: r.cluster as number, e: JSON.parse(r.e) as number[] }));
    const [s, w] = [await rows('sharded'), await rows('whole')];
    expect([s.length, w.length]).toEqual([300, 300]);
    expect(s.map((r) => [r.id, r.metadata, r.cluster])).toEqual(w.map((r) => [r.id, r.metadata, r.cluster]));
    let worst = 0;
    s.forEach((r, i) => r.e.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - w[i].e[j])))));
    expect(worst).toBeLessThan(1e-5);
    const before = await rows('sharded');
    const again = await indexJob(db.url('sharded'), 300, '--shard', '1/2');
    expect(again.code, again.err).toBe(0);
    expect(await rows('sharded')).toEqual(before);
    expect(await db.query(`SELECT version FROM sslkit_schema WHERE index_table = 'sharded'`)).toEqual([{ version: 1 }]);
  });

  it('--centre: the job that creates the table sets its centre, later shards centre on it; an uncentred table refuses --centre', async () => {
    const first = await indexJob(db.url('centred'), 300, '--shard', '0/2', '--centre');
    expect(first.code, first.err).toBe(0);
    const second = await indexJob(db.url('centred'), 300, '--shard', '1/2');
    expect(second.code, second.err).toBe(0);
    expect(second.err).toMatch(/is centred \(made with --centre\): this job's vectors are centred on its mean too/);
    const [{ model: identity }] = await db.query(`SELECT model FROM "centred_meta"`);
    const centre = identity.centre as number[];
    expect(centre).toHaveLength(dim);
    // Every row, whichever job wrote it, is its plain unit vector centred on the table's centre.
    const plain = await buildIndex(model, path.join(tmpDir(), 'plain.idx'), { data: 'fashion-mnist', dataDir: FASHION_DIR, limit: 300 });
    const rows = await db.query(`SELECT id, embedding::text AS e FROM "centred"`);
    expect(rows).toHaveLength(300);
    let worst = 0;
    for (const r of rows) {
      const i = plain.items.findIndex((it) => it.id === r.id);
      const want = Array.from(plain.vectors.subarray(i * dim, (i + 1) * dim), (v, j) => v - centre[j]);
      const n = Math.hypot(...want);
      (JSON.parse(r.e) as number[]).forEach((v, j) => (worst = Math.max(worst, Math.abs(v - want[j] / n))));
    }
    expect(worst).toBeLessThan(1e-5);
    const refused = await indexJob(db.url('plain'), 50);
    expect(refused.code, refused.err).toBe(0);
    const again = await indexJob(db.url('plain'), 50, '--centre');
    expect(again.code).not.toBe(0);
    expect(again.err).toMatch(/table=plain was made without --centre: its vectors are not centred; index into a new table/);
  });

  it('from --ann-threshold items the HNSW index is built, by sslkit index or by a replica after writes, and searches use it', async () => {
    const hnswValid = async (table: string) =>
      (await db.query(`SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)`, [`"${table}_hnsw"`]))[0]?.indisvalid ?? null;
    const job = await indexJob(db.url('big'), 120, '--ann-threshold', '100');
    expect(job.code, job.err).toBe(0);
    expect(job.err).toMatch(/built the HNSW index in [\d.]+ s/);
    expect(await hnswValid('big')).toBe(true);
    // A replica whose writes take a small index past the threshold builds it in the background.
    const small = db.url('grows');
    await buildPostgresIndex(model, small, { data: 'fashion-mnist', dataDir: FASHION_DIR, limit: 40, annThreshold: 60, log: () => {} });
    expect(await hnswValid('grows')).toBe(null);
    const r = await startServer({ model, index: small, port: 0, device: 'cpu', annThreshold: 60, log: () => {} });
    try {
      const items = Array.from({ length: 30 }, (_, i) => ({ id: `g${i}`, embedding: vec(100 + i) }));
      expect((await httpJson(`${r.url}/v1/index/items`, { items })).body.count).toBe(70);
      let valid = null;
      for (let i = 0; i < 100 && !valid; i++) {
        await httpJson(`${r.url}/readyz`); // each count looks at the index again
        valid = await hnswValid('grows');
        if (!valid) await new Promise((res) => setTimeout(res, 100));
      }
      expect(valid).toBe(true);
      await new Promise((res) => setTimeout(res, 1100)); // the replica's view of the index is at most a second old
      for (const i of [3, 17, 29]) {
        const hit = await httpJson(`${r.url}/v1/search`, { embedding: vec(100 + i), k: 2, ef_search: 80 });
        expect(hit.body.data[0].id).toBe(`g${i}`);
      }
      // The searches went through the HNSW index: PostgreSQL's own count of its scans, which nothing
      // else makes (a backend may hold its statistics back for up to 10 s).
      let scans = 0;
      for (let i = 0; i < 60 && scans < 1; i++) {
        scans = Number((await db.query(`SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'grows_hnsw'`))[0]?.idx_scan ?? 0);
        if (scans < 1) await new Promise((res) => setTimeout(res, 250));
      }
      expect(scans).toBeGreaterThanOrEqual(1);
    } finally {
      await r.close();
    }
  });

  it('bad URLs, unknown tables and an unreachable server are clear errors without the password', async () => {
    const bad = await indexJob(`${url}-x;drop`, 10);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/table=shared-x;drop is not a usable name: lower-case letters, digits and _/);
    expect(bad.err).not.toContain('hunter2');
    const down = await sslkit(['serve', '--model', model, '--index', 'postgres://me:hunter2@127.0.0.1:1/db', '--device', 'cpu']);
    expect(down.code).not.toBe(0);
    expect(down.err).toMatch(/postgres:\/\/me:\*\*\*@127\.0\.0\.1:1\/db: cannot open the index database: .*ECONNREFUSED/);
    expect(down.err).not.toContain('hunter2');
    const shardFile = await indexJob('/tmp/x.idx', 10, '--shard', '0/2');
    expect(shardFile.err).toMatch(/--shard fills a PostgreSQL index/);
    const badShard = await sslkit(['index', model, '--data', 'fashion-mnist', '--out', url, '--shard', '2/2']);
    expect(badShard.err).toMatch(/--shard must be i\/n with 0 ≤ i < n/);
  });
});
