/**
 * The PostgreSQL index under faults and contention (issue 36, items 1, 4, 8, 10), against a real
 * PostgreSQL 15 with pgvector:
 * - the database restarted (`-m fast`, then `-m immediate`) under four clients writing and
 *   searching through two `sslkit serve` replicas: both replicas live on, answer 503 while it is
 *   down, recover by themselves, and every acknowledged write is in the table;
 * - four clients upserting overlapping ids through both replicas: no deadlock reaches a client
 *   (never a 500), every write lands;
 * - HNSW search after heavy updates and deletes (autovacuum off): k hits whenever the table has k rows;
 * - a `?table=` whose names are taken (sslkit_schema, another index's NAME_meta): a clear error.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPostgresIndex } from '../../serve/build-index.js';
import { startServer } from '../../serve/server.js';
import { FASHION_DIR, hasFashion, httpJson, isolatedCache, serveProcess, tinyModel } from '../helpers.js';
import { hasPostgres, startPostgres, type TestPostgres } from '../postgres.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.runIf(hasFashion && hasPostgres)('the PostgreSQL index under faults', () => {
  let model: string;
  let db: TestPostgres;
  let dim: number;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    isolatedCache();
    model = await tinyModel();
    db = await startPostgres();
    dim = (await buildPostgresIndex(model, db.url('shared'), { data: 'fashion-mnist', dataDir: FASHION_DIR, limit: 100, log: () => {} }))
      .dim;
  }, 180_000);
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
    db?.remove();
  });

  const vec = (i: number) => Array.from({ length: dim }, (_, j) => Math.cos(i * 5.3 + j * 0.7));
  const ids = async (table: string) => new Set((await db.query(`SELECT id FROM "${table}"`)).map((r) => r.id as string));

  it('replicas live through a database restart under load (fast, then immediate) and lose no acknowledged write', async () => {
    const replicas = [
      await serveProcess(['--model', model, '--index', db.url('shared')]),
      await serveProcess(['--model', model, '--index', db.url('shared')]),
    ];
    children.push(...replicas.map((r) => r.child));
    const acked = new Set<string>();
    const statuses: number[] = [];
    let stop = false;
    let n = 0;
    // Two writers and two searchers per replica, each a request after the other.
    const client = async (url: string, writes: boolean) => {
      while (!stop) {
        const i = n++;
        try {
          const r = writes
            ? await httpJson(`${url}/v1/index/items`, { items: [{ id: `load-${i}`, embedding: vec(i) }] })
            : await httpJson(`${url}/v1/search`, { embedding: vec(i), k: 5 });
          statuses.push(r.status);
          if (writes && r.status === 201) acked.add(`load-${i}`);
        } catch {
          statuses.push(0); // no answer: the replica is gone
        }
        if (statuses.at(-1) !== 200 && statuses.at(-1) !== 201) await sleep(20);
      }
    };
    const clients = replicas.flatMap((r) => [client(r.url, true), client(r.url, false)]);
    for (const mode of ['fast', 'immediate'] as const) {
      await sleep(500);
      await db.stopAsync(mode);
      await sleep(700);
      await db.startAsync();
    }
    // Back to normal service on both replicas.
    for (let i = 0; i < 100 && (statuses.length < 20 || statuses.slice(-20).some((c) => c !== 200 && c !== 201)); i++) await sleep(100);
    stop = true;
    await Promise.all(clients);
    for (const r of replicas) {
      expect(r.child.exitCode, r.output()).toBeNull();
      expect(r.output()).not.toMatch(/Unhandled 'error' event|uncaught/i);
      expect((await httpJson(`${r.url}/readyz`)).body).toMatchObject({ ready: true, index_reachable: true });
    }
    // Only answers: 200/201, or 503 while the database was away.
    expect(statuses.filter((c) => ![200, 201, 503].includes(c))).toEqual([]);
    expect(statuses.filter((c) => c === 503).length).toBeGreaterThan(0);
    expect(acked.size).toBeGreaterThan(10);
    const stored = await ids('shared');
    expect([...acked].filter((id) => !stored.has(id))).toEqual([]);
    for (const r of replicas) r.child.kill('SIGTERM');
  }, 120_000);

  it('overlapping upserts from four clients over two replicas: no deadlock reaches a client, every write lands', async () => {
    // With the HNSW index (every write also inserts into the graph) a transaction holds its row locks longer.
    const o = { model, index: db.url('upserts'), port: 0, device: 'cpu' as const, annThreshold: 10, log: () => {} };
    await buildPostgresIndex(model, o.index, { data: 'fashion-mnist', dataDir: FASHION_DIR, limit: 20, annThreshold: 10, log: () => {} });
    const [a, b] = [await startServer(o), await startServer(o)];
    try {
      let seed = 1;
      const rand = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
      const statuses: number[] = [];
      const client = async (w: number) => {
        for (let round = 0; round < 100; round++) {
          // Three of ten ids, in a random order: two batches lock rows in opposite orders unless sorted.
          const picked = [...new Set(Array.from({ length: 3 }, () => Math.floor(rand() * 10)))];
          const items = picked.map((id) => ({ id: `u${id}`, embedding: vec(w * 1000 + round * 10 + id), metadata: { w } }));
          statuses.push((await httpJson(`${(w % 2 ? a : b).url}/v1/index/items`, { items })).status);
        }
      };
      await Promise.all([0, 1, 2, 3].map(client));
      expect(statuses.filter((c) => c !== 201)).toEqual([]);
      expect(statuses).toHaveLength(400);
      expect((await ids('upserts')).size).toBe(30);
    } finally {
      await a.close();
      await b.close();
    }
  }, 120_000);

  it('HNSW search after heavy updates and deletes (autovacuum off) still returns k hits', async () => {
    const index = db.url('churn');
    await buildPostgresIndex(model, index, { data: 'fashion-mnist', dataDir: FASHION_DIR, limit: 400, annThreshold: 100, log: () => {} });
    await db.query(`ALTER TABLE "churn" SET (autovacuum_enabled = false)`);
    const s = await startServer({ model, index, port: 0, device: 'cpu', annThreshold: 100, log: () => {} });
    try {
      // Every row rewritten three times, then half of them deleted: thousands of dead tuples in the graph.
      const rows = (await db.query(`SELECT id FROM "churn" ORDER BY id`)).map((r) => r.id as string);
      for (let pass = 0; pass < 3; pass++)
        for (let at = 0; at < rows.length; at += 200) {
          const items = rows.slice(at, at + 200).map((id, j) => ({ id, embedding: vec(pass * 10_000 + at + j) }));
          expect((await httpJson(`${s.url}/v1/index/items`, { items })).status).toBe(201);
        }
      for (const id of rows.filter((_, i) => i % 2))
        expect((await httpJson(`${s.url}/v1/index/items/${id}`, undefined, 'DELETE')).status).toBe(200);
      await sleep(1100); // the replica's view of the index (HNSW or not) is at most a second old
      for (const k of [40, 150, 200]) {
        for (const q of [1, 2, 3]) {
          const r = await httpJson(`${s.url}/v1/search`, { embedding: vec(q * 7919), k });
          expect(r.body.data, `k = ${k}`).toHaveLength(k);
        }
      }
      const all = await httpJson(`${s.url}/v1/search`, { embedding: vec(5), k: 1000 });
      expect(all.body.data).toHaveLength(200);
    } finally {
      await s.close();
    }
  }, 180_000);

  it('a table name whose relations are taken is refused with a clear message, not a stack trace', async () => {
    for (const table of ['sslkit_schema', 'shared_meta', 'shared_clusters']) {
      await expect(
        buildPostgresIndex(model, db.url(table), { data: 'fashion-mnist', dataDir: FASHION_DIR, limit: 10, log: () => {} }),
      ).rejects.toThrow(
        new RegExp(`table=${table} cannot be a new index here: .* already exists? in this database .*choose another table name`),
      );
    }
    // An index 'x' beside a table 'x_assign' that is not sslkit's.
    await db.query(`CREATE TABLE x_assign (a int)`);
    await expect(startServer({ model, index: db.url('x'), port: 0, device: 'cpu', log: () => {} })).rejects.toThrow(
      /x_assign already exists/,
    );
    // Nothing was created on the way.
    expect(await db.query(`SELECT index_table FROM sslkit_schema WHERE index_table IN ('x', 'sslkit_schema', 'shared_meta')`)).toEqual([]);
  });
});
