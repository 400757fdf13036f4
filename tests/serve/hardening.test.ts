/**
 * What an outside attack on `sslkit serve` found (issue 18), each over real HTTP on 127.0.0.1:
 * no spelling of a write route skips the API key; work per request is bounded before decoding;
 * bad multipart, encodings and paths are 4xx errors; ids cannot be overridden by metadata;
 * cluster rebuilds run off the request thread; non-finite vectors are refused; a shutdown does not
 * wait for ever on a slow client; resize policies are compared; small protocol details.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIndex } from '../../serve/build-index.js';
import { startServer, type RunningServer } from '../../serve/server.js';
import { loadIndex, saveIndex } from '../../serve/index-file.js';
import { FASHION_DIR, hasFashion, isolatedCache, tinyModel, tmpDir } from '../helpers.js';

async function call(url: string, init: RequestInit & { json?: unknown } = {}) {
  const headers = new Headers(init.headers);
  let body = init.body;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
  }
  const r = await fetch(url, { method: init.method ?? (body === undefined ? 'GET' : 'POST'), headers, body });
  const text = await r.text();
  let parsed: any;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: r.status, headers: r.headers, body: parsed };
}

describe.runIf(hasFashion)('sslkit serve under attack', () => {
  let model: string;
  let indexFile: string;
  let s: RunningServer;
  let png: Buffer;
  let dim: number;

  beforeAll(async () => {
    isolatedCache();
    model = await tinyModel();
    indexFile = path.join(tmpDir(), 'g.idx');
    await buildIndex(model, indexFile, { data: 'fashion-mnist', dataDir: FASHION_DIR, limit: 100, log: () => {} });
    dim = loadIndex(indexFile).dim;
    png = await sharp({ create: { width: 28, height: 28, channels: 3, background: '#808080' } })
      .png()
      .toBuffer();
    s = await startServer({
      model,
      index: indexFile,
      port: 0,
      device: 'cpu',
      apiKey: 'sekret',
      apiKeyScope: 'writes',
      maxBodyBytes: 100_000,
      maxImages: 8,
      maxQueue: 4,
      log: () => {},
    });
  }, 180_000);
  afterAll(() => s?.close());

  it('no spelling of a write route skips the key: routing is case-sensitive and strict', async () => {
    const item = { items: [{ id: 'w', embedding: Array(dim).fill(1) }] };
    for (const [method, p] of [
      ['POST', '/V1/INDEX/ITEMS'],
      ['POST', '/v1/index/items/'],
      ['DELETE', '/V1/index/items/0'],
      ['POST', '/v1/clusters/rebuild/'],
      ['POST', '/V1/CLUSTERS/REBUILD'],
    ]) {
      const r = await call(`${s.url}${p}`, { method, json: item });
      expect([p, r.status, r.body.error.code]).toEqual([p, 404, 'not_found']);
    }
    expect((await call(`${s.url}/v1/index/items`, { json: item })).status).toBe(401);
    expect((await call(`${s.url}/v1/index/items/base0`, { method: 'DELETE' })).status).toBe(401);
    expect((await call(`${s.url}/v1/clusters/rebuild`, { json: {} })).status).toBe(401);
    const ok = await call(`${s.url}/v1/index/items`, { json: item, headers: { authorization: 'Bearer sekret' } });
    expect(ok.status).toBe(201);
    expect((await call(`${s.url}/v1/index/items/w`, { method: 'DELETE', headers: { authorization: 'Bearer sekret' } })).status).toBe(200);
  });

  it('work per request is bounded before any image is decoded', async () => {
    const b64 = png.toString('base64');
    const many = await call(`${s.url}/v1/embeddings`, { json: { input: Array(9).fill(b64) } });
    expect([many.status, many.body.error.code]).toEqual([413, 'too_many_images']);
    expect(many.body.error.message).toMatch(/9 images in one request; the limit is 8 \(--max-images\)/);
    // More than the queue could ever hold: 413 (a retry cannot help), never 429 with Retry-After.
    const overQueue = await call(`${s.url}/v1/embeddings`, { json: { input: Array(5).fill(b64) } });
    expect([overQueue.status, overQueue.body.error.code, overQueue.headers.get('retry-after')]).toEqual([413, 'too_many_images', null]);
    // Deeply nested JSON is refused by a scan before JSON.parse.
    const deep = await call(`${s.url}/v1/search`, {
      body: `${'['.repeat(40_000)}${']'.repeat(40_000)}`,
      headers: { 'content-type': 'application/json' },
    });
    expect([deep.status, deep.body.error.code]).toEqual([400, 'json_too_deep']);
    expect((await call(`${s.url}/healthz`)).status).toBe(200);
  });

  it('multipart: the file count and the whole body are bounded; malformed bodies, encodings and paths are 4xx', async () => {
    const form = (n: number, bytes: Buffer) => {
      const f = new FormData();
      for (let i = 0; i < n; i++) f.append('file', new Blob([new Uint8Array(bytes)], { type: 'image/png' }), `${i}.png`);
      return f;
    };
    const nine = await call(`${s.url}/v1/embeddings`, { method: 'POST', body: form(9, png) });
    expect([nine.status, nine.body.error.code]).toEqual([413, 'too_many_images']);
    // Each part under the limit, all of them together over it.
    const big = Buffer.alloc(40_000, 7);
    const sum = await call(`${s.url}/v1/embeddings`, { method: 'POST', body: form(3, big) });
    expect([sum.status, sum.body.error.code]).toEqual([413, 'body_too_large']);
    const two = await call(`${s.url}/v1/embeddings`, { method: 'POST', body: form(2, png) });
    expect([two.status, two.body.data.length]).toEqual([200, 2]);
    const notMultipart = await call(`${s.url}/v1/embeddings`, {
      method: 'POST',
      body: 'hello, not multipart',
      headers: { 'content-type': 'multipart/form-data; boundary=xyz' },
    });
    expect([notMultipart.status, notMultipart.body.error.code]).toEqual([400, 'invalid_multipart']);
    const noBoundary = await call(`${s.url}/v1/embeddings`, {
      method: 'POST',
      body: 'x',
      headers: { 'content-type': 'multipart/form-data' },
    });
    expect([noBoundary.status, noBoundary.body.error.code]).toEqual([400, 'invalid_multipart']);
    const compress = await call(`${s.url}/v1/search`, {
      method: 'POST',
      body: '{"k":1}',
      headers: { 'content-type': 'application/json', 'content-encoding': 'compress' },
    });
    expect([compress.status, compress.body.error.code]).toEqual([415, 'unsupported_content_encoding']);
    // br is decoded (body-parser 2); a body that is not brotli is the client's error.
    const br = await call(`${s.url}/v1/search`, {
      method: 'POST',
      body: '{"k":1}',
      headers: { 'content-type': 'application/json', 'content-encoding': 'br' },
    });
    expect([br.status, br.body.error.code]).toEqual([400, 'bad_encoding']);
    const badPath = await call(`${s.url}/v1/index/items/%E0%A4%A`, { method: 'DELETE', headers: { authorization: 'Bearer sekret' } });
    expect([badPath.status, badPath.body.error.code]).toEqual([400, 'invalid_path']);
  });

  it("metadata cannot set an item's id; non-finite and zero vectors are refused on every route that takes one", async () => {
    const auth = { authorization: 'Bearer sekret' };
    const v = Array(dim).fill(0.5);
    const r = await call(`${s.url}/v1/index/items`, { json: { items: [{ id: 'ok', embedding: v, metadata: { id: '' } }] }, headers: auth });
    expect([r.status, r.body.error.field]).toEqual([400, 'items.0.metadata.id']);
    const huge = [...v.slice(1), 1e39];
    const add = await call(`${s.url}/v1/index/items`, { json: { items: [{ id: 'inf', embedding: huge }] }, headers: auth });
    expect([add.status, add.body.error.code]).toEqual([400, 'non_finite']);
    const search = await call(`${s.url}/v1/search`, { json: { embedding: huge, k: 3 } });
    expect([search.status, search.body.error.code]).toEqual([400, 'non_finite']);
    const assign = await call(`${s.url}/v1/clusters/assign`, { json: { embedding: Array(dim).fill(0) } });
    expect([assign.status, assign.body.error.code]).toEqual([400, 'zero_vector']);
  });

  it('a cluster rebuild runs off the request thread, with a bounded k', async () => {
    const auth = { authorization: 'Bearer sekret' };
    const tooMany = await call(`${s.url}/v1/clusters/rebuild`, { json: { k: 5000 }, headers: auth });
    expect([tooMany.status, tooMany.body.error.code]).toEqual([400, 'out_of_range']);
    // A bigger index (random vectors) so that k-means takes a while.
    const dir = tmpDir();
    const big = path.join(dir, 'big.idx');
    const base = loadIndex(indexFile);
    const n = 8_000;
    const vectors = new Float32Array(n * dim);
    for (let i = 0; i < vectors.length; i++)
      vectors[i] = Math.sin(i * 12.9898) * 43758.5453 - Math.floor(Math.sin(i * 12.9898) * 43758.5453) - 0.5;
    saveIndex(big, {
      ...base,
      items: Array.from({ length: n }, (_, i) => ({ id: String(i) })),
      vectors,
      clusters: { k: 1, centroids: vectors.slice(0, dim), assign: new Int32Array(n) },
    });
    const b = await startServer({ model, index: big, port: 0, device: 'cpu', log: () => {} });
    try {
      const order: string[] = [];
      const rebuild = call(`${b.url}/v1/clusters/rebuild`, { json: { k: 100 } }).then((r) => (order.push('rebuild'), r));
      await new Promise((r) => setTimeout(r, 50));
      const health = call(`${b.url}/healthz`).then((r) => (order.push('healthz'), r));
      const [rb, h] = await Promise.all([rebuild, health]);
      expect([rb.status, rb.body.k, h.status]).toEqual([200, 100, 200]);
      expect(order).toEqual(['healthz', 'rebuild']);
      const sizes = (await call(`${b.url}/v1/clusters`)).body.clusters.map((c: { size: number }) => c.size);
      expect(sizes.reduce((a: number, x: number) => a + x, 0)).toBe(n);
    } finally {
      await b.close();
    }
  }, 120_000);

  it('a shutdown does not wait for ever on a half-sent body: it cuts it at the deadline and saves the index', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'g.idx');
    fs.copyFileSync(indexFile, file);
    const d = await startServer({ model, index: file, port: 0, device: 'cpu', drainMs: 300, log: () => {} });
    await call(`${d.url}/v1/index/items`, { json: { items: [{ id: 'kept', embedding: Array(dim).fill(0.3) }] } });
    const port = Number(new URL(d.url).port);
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write('POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"k":');
    sock.on('error', () => {});
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await d.close();
    expect(Date.now() - t0).toBeLessThan(20_000); // the default Node drain would wait up to 5 minutes
    sock.destroy();
    expect(loadIndex(file).items.some((it) => it.id === 'kept')).toBe(true);
    expect(fs.statSync(`${file}.wal`).size).toBe(8); // folded into the snapshot: the log holds its header only
  });

  it('refuses an index built with another resize policy', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'g.idx');
    const x = loadIndex(indexFile);
    saveIndex(file, { ...x, model: { ...x.model, preprocessing: { ...x.model.preprocessing!, resize: 'stretch' } } });
    await expect(startServer({ model, index: file, port: 0, device: 'cpu', log: () => {} })).rejects.toThrow(/"resize":"stretch"/);
  });

  it('media types are case-insensitive; a cut-off PNG is truncated_image; bad JSON is counted under its route; wrong types are 415', async () => {
    const upper = await call(`${s.url}/v1/embeddings`, {
      method: 'POST',
      body: new Uint8Array(png),
      headers: { 'content-type': 'IMAGE/PNG' },
    });
    expect([upper.status, upper.body.error]).toEqual([200, undefined]);
    const cut = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#336699' } })
      .png()
      .toBuffer();
    const torn = await call(`${s.url}/v1/embeddings`, { json: { input: cut.subarray(0, cut.length - 30).toString('base64') } });
    expect([torn.status, torn.body.error.code]).toEqual([400, 'truncated_image']);
    const bad = await call(`${s.url}/v1/search`, { body: '{"k": 1,', headers: { 'content-type': 'application/json' } });
    expect([bad.status, bad.body.error.code]).toEqual([400, 'invalid_json']);
    const metrics = (await call(`${s.url}/metrics`)).body as string;
    expect(metrics).toMatch(/sslkit_http_requests_total\{route="\/v1\/search",method="POST",status="400"\}/);
    const text = await call(`${s.url}/v1/search`, { body: '{"k": 1}', headers: { 'content-type': 'text/plain' } });
    expect([text.status, text.body.error.code]).toEqual([415, 'unsupported_content_type']);
  });
});
