/**
 * The index routes over real HTTP, the same tests against both stores (issue 17): the file store
 * and PostgreSQL with pgvector (a throw-away cluster). Both are filled by `sslkit index` from the
 * same model and images; search, cluster assignment, listing and rebuild, writes and deletes,
 * their errors, readiness and the model identity check must behave alike.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIndex, buildPostgresIndex } from '../../serve/build-index.js';
import { startServer, type RunningServer } from '../../serve/server.js';
import { loadDataset } from '../../data/datasets.js';
import { sampleIndices, type ImageSet } from '../../core/image-set.js';
import { FASHION_DIR, hasFashion, httpJson, isolatedCache, tinyModel, tmpDir } from '../helpers.js';
import { hasPostgres, startPostgres, type TestPostgres } from '../postgres.js';

let model: string;
let pg: TestPostgres | null = null;
let test: ImageSet;
/** Indexed test images (ids) and their PNG bytes. */
let picked: number[];
let pngs: Buffer[];

beforeAll(async () => {
  if (!hasFashion) return;
  isolatedCache();
  model = await tinyModel();
  if (hasPostgres) pg = await startPostgres();
  test = await loadDataset('fashion-mnist', 'test', { dataDir: FASHION_DIR });
  picked = Array.from(sampleIndices(test.labels, test.n, 200).subarray(0, 3));
  pngs = await Promise.all(
    picked.map((i) =>
      sharp(Buffer.from(test.pixels.subarray(i * 784, (i + 1) * 784)), { raw: { width: 28, height: 28, channels: 1 } })
        .png()
        .toBuffer(),
    ),
  );
}, 180_000);
afterAll(() => pg?.remove());

const stores: [string, boolean][] = [
  ['file', hasFashion],
  ['postgres', hasFashion && hasPostgres],
];

describe.each(stores)('index routes on the %s store', (kind, available) => {
  let s: RunningServer;
  let location: string;

  beforeAll(async () => {
    if (!available) return;
    const o = { data: 'fashion-mnist', dataDir: FASHION_DIR, limit: 200, log: () => {} };
    if (kind === 'file') {
      location = path.join(tmpDir(), 'g.idx');
      await buildIndex(model, location, o);
    } else {
      location = pg!.url('routes');
      await buildPostgresIndex(model, location, o);
    }
    s = await startServer({ model, index: location, port: 0, device: 'cpu', log: () => {} });
  }, 180_000);
  afterAll(() => s?.close());

  it.runIf(available)('search by image and by embedding; ef_search is taken and checked', async () => {
    const r = await httpJson(`${s.url}/v1/search`, { image: pngs[0].toString('base64'), k: 5 });
    expect(r.status).toBe(200);
    expect(r.body.data).toHaveLength(5);
    expect(r.body.data[0]).toMatchObject({
      id: String(picked[0]),
      metadata: { id: String(picked[0]), source: `fashion-mnist:test:${picked[0]}`, label: test.classes[test.labels![picked[0]]] },
    });
    expect(r.body.data[0].score).toBeCloseTo(1, 4);
    for (let j = 1; j < 5; j++) expect(r.body.data[j].score).toBeLessThanOrEqual(r.body.data[j - 1].score + 1e-6);
    const emb = (await httpJson(`${s.url}/v1/embeddings`, { input: pngs[1].toString('base64') })).body.data[0].embedding;
    const byEmb = await httpJson(`${s.url}/v1/search`, { embedding: emb, k: 3, ef_search: 100 });
    expect(byEmb.body.data[0].id).toBe(String(picked[1]));
    expect((await httpJson(`${s.url}/v1/search`, { embedding: emb, k: 3, ef_search: 0 })).body.error).toMatchObject({
      code: 'out_of_range',
      field: 'ef_search',
    });
    expect((await httpJson(`${s.url}/v1/search`, { embedding: [1, 2], k: 3 })).body.error).toMatchObject({ code: 'wrong_dimension' });
    expect((await httpJson(`${s.url}/v1/search`, { embedding: emb.map(() => 0), k: 3 })).body.error.code).toBe('zero_vector');
  });

  it.runIf(available)('cluster assignment, listing and a rebuild that later requests see', async () => {
    const emb = (await httpJson(`${s.url}/v1/embeddings`, { input: pngs[2].toString('base64') })).body.data[0].embedding;
    const a = await httpJson(`${s.url}/v1/clusters/assign`, { embedding: emb, members: 3 });
    expect(a.status).toBe(200);
    expect(a.body.members.length).toBeGreaterThan(0);
    const list = (await httpJson(`${s.url}/v1/clusters`)).body;
    expect(list.k).toBe(10);
    expect(list.clusters.reduce((t: number, c: { size: number }) => t + c.size, 0)).toBe(200);
    const mine = list.clusters.find((c: { id: number }) => c.id === a.body.cluster);
    expect(mine.size).toBeGreaterThanOrEqual(a.body.members.length);
    expect(mine.representatives).toHaveLength(5);
    expect((await httpJson(`${s.url}/v1/clusters/rebuild`, { k: 4 })).body).toEqual({ k: 4 });
    const after = (await httpJson(`${s.url}/v1/clusters`)).body;
    expect(after.clusters).toHaveLength(4);
    expect(after.clusters.reduce((t: number, c: { size: number }) => t + c.size, 0)).toBe(200);
    expect((await httpJson(`${s.url}/v1/models`)).body.data[0].index).toMatchObject({ engine: kind, items: 200, clusters: 4 });
    // Members are in the cluster they were asked for.
    const b = await httpJson(`${s.url}/v1/clusters/assign`, { embedding: emb, members: 50 });
    const again = await httpJson(`${s.url}/v1/clusters/assign`, { embedding: emb, members: 50 });
    expect(again.body).toEqual(b.body);
    expect(b.body.members.length).toBeLessThanOrEqual(after.clusters[b.body.cluster].size);
  });

  it.runIf(available)('writes: concurrent adds all land, a batch replaces by id, deletes remove, bad vectors are refused', async () => {
    const before = (await httpJson(`${s.url}/readyz`)).body.index as number;
    const emb = (await httpJson(`${s.url}/v1/embeddings`, { input: pngs[1].toString('base64') })).body.data[0].embedding as number[];
    const writes = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        httpJson(`${s.url}/v1/index/items`, {
          items: [{ id: `new-${i}`, embedding: emb.map((v, j) => v + (j === i ? 1 : 0)), metadata: { n: i } }],
        }),
      ),
    );
    expect(writes.map((w) => w.status)).toEqual(Array(24).fill(201));
    expect((await httpJson(`${s.url}/readyz`)).body).toMatchObject({ ready: true, index: before + 24 });
    // One batch: an image item and the same id twice (the last wins).
    const batch = await httpJson(`${s.url}/v1/index/items`, {
      items: [
        { id: 'from-image', image: pngs[0].toString('base64'), metadata: { who: 'first' } },
        { id: 'twice', embedding: emb, metadata: { v: 1 } },
        { id: 'twice', embedding: emb.map((v) => -v), metadata: { v: 2 } },
      ],
    });
    expect(batch).toMatchObject({ status: 201, body: { ids: ['from-image', 'twice', 'twice'], count: before + 26 } });
    const far = await httpJson(`${s.url}/v1/search`, { embedding: emb.map((v) => -v), k: 1 });
    expect(far.body.data[0]).toMatchObject({ id: 'twice', metadata: { v: '2' } });
    expect(far.body.data[0].score).toBeCloseTo(1, 5);
    const found = await httpJson(`${s.url}/v1/search`, { embedding: emb.map((v, j) => v + (j === 5 ? 1 : 0)), k: 1 });
    expect(found.body.data[0]).toMatchObject({ id: 'new-5', metadata: { n: '5' } });
    // A refused batch writes nothing.
    const bad = await httpJson(`${s.url}/v1/index/items`, {
      items: [
        { id: 'ok', embedding: emb },
        { id: 'bad', embedding: emb.map((v, j) => (j === 2 ? 1e39 : v)) },
      ],
    });
    expect([bad.status, bad.body.error.code, bad.body.error.field]).toEqual([400, 'non_finite', 'items.1.embedding']);
    expect((await httpJson(`${s.url}/v1/search`, { embedding: emb, k: 30 })).body.data.map((d: { id: string }) => d.id)).not.toContain(
      'ok',
    );
    expect((await httpJson(`${s.url}/v1/index/items/new-3`, undefined, 'DELETE')).body).toEqual({ deleted: 'new-3', count: before + 25 });
    const gone = await httpJson(`${s.url}/v1/index/items/new-3`, undefined, 'DELETE');
    expect([gone.status, gone.body.error.code]).toEqual([404, 'unknown_id']);
    const still = await httpJson(`${s.url}/v1/search`, { embedding: emb.map((v, j) => v + (j === 3 ? 1 : 0)), k: 3 });
    expect(still.body.data.map((d: { id: string }) => d.id)).not.toContain('new-3');
    // New items are assigned to a cluster of the current clustering.
    const sizes = (await httpJson(`${s.url}/v1/clusters`)).body.clusters.reduce((t: number, c: { size: number }) => t + c.size, 0);
    expect(sizes).toBe(before + 25);
  });

  it.runIf(available)(
    'ids and metadata both engines store as sent: NUL, lone surrogates and oversized metadata are refused naming the field',
    async () => {
      const before = (await httpJson(`${s.url}/readyz`)).body.index as number;
      const emb = (await httpJson(`${s.url}/v1/embeddings`, { input: pngs[0].toString('base64') })).body.data[0].embedding as number[];
      const write = (item: Record<string, unknown>) => httpJson(`${s.url}/v1/index/items`, { items: [{ embedding: emb, ...item }] });
      const cases: [Record<string, unknown>, number, string, string][] = [
        [{ id: 'a\u0000b' }, 400, 'invalid_text', 'items.0.id'],
        [{ id: 'lone-\ud800' }, 400, 'invalid_text', 'items.0.id'],
        [{ id: '\udc00-lone' }, 400, 'invalid_text', 'items.0.id'],
        [{ id: 'm1', metadata: { note: 'x\u0000y' } }, 400, 'invalid_text', 'items.0.metadata.note'],
        [{ id: 'm2', metadata: { note: 'half \ud83d' } }, 400, 'invalid_text', 'items.0.metadata.note'],
        [{ id: 'm3', metadata: { ['k\u0000']: 'v' } }, 400, 'invalid_text', 'items.0.metadata'],
        [{ id: 'm4', metadata: { big: 'x'.repeat(17_000) } }, 413, 'metadata_too_large', 'items.0.metadata'],
        [
          { id: 'm5', metadata: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i])) },
          400,
          'too_many_metadata_keys',
          'items.0.metadata',
        ],
      ];
      for (const [item, status, code, field] of cases) {
        const r = await write(item);
        expect([r.status, r.body.error?.code, r.body.error?.field], JSON.stringify(item).slice(0, 80)).toEqual([status, code, field]);
      }
      const del = await httpJson(`${s.url}/v1/index/items/a%00b`, undefined, 'DELETE');
      expect([del.status, del.body.error.code, del.body.error.field]).toEqual([400, 'invalid_text', 'id']);
      expect((await httpJson(`${s.url}/readyz`)).body.index).toBe(before);
      // Text outside the BMP (a surrogate pair) and metadata just under the limit are stored and returned as sent.
      const id = '📷 café-\u4e2d';
      const own = emb.map((v, j) => v + (j === 7 ? 3 : 0));
      const ok = await write({ id, embedding: own, metadata: { caption: '🌅'.repeat(10), pad: 'y'.repeat(16_000) } });
      expect([ok.status, ok.body.ids]).toEqual([201, [id]]);
      const hit = (await httpJson(`${s.url}/v1/search`, { embedding: own, k: 1 })).body.data[0];
      expect([hit.id, hit.metadata.caption]).toEqual([id, '🌅'.repeat(10)]);
      expect((await httpJson(`${s.url}/v1/index/items/${encodeURIComponent(id)}`, undefined, 'DELETE')).status).toBe(200);
    },
  );

  it.runIf(available)('readiness, metrics and a model other than the index was built with', async () => {
    expect((await httpJson(`${s.url}/readyz`)).body).toMatchObject({ ready: true, model: true, index_reachable: true });
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/sslkit_index_items \d+/);
    if (kind === 'postgres') {
      expect(metrics).toMatch(/sslkit_index_query_seconds_count\{op="search"\} \d+/);
      expect(metrics).toMatch(/sslkit_index_query_seconds_count\{op="write"\} \d+/);
    }
    const other = await tinyModel({ seed: 7 });
    // A copy of the file: the file itself is held by the running service (one writer per file).
    const index = kind === 'file' ? path.join(tmpDir(), 'copy.idx') : location;
    if (kind === 'file') fs.copyFileSync(location, index);
    await expect(startServer({ model: other, index, port: 0, device: 'cpu', log: () => {} })).rejects.toThrow(
      /was built with another model \(.*sha256 [0-9a-f]{12}…\) than .*: its vectors are not comparable/,
    );
  });
});
