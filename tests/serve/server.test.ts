/**
 * sslkit serve over real HTTP on 127.0.0.1: every route with an sslkit-exported model and the
 * foreign torch.onnx fixture; each bad request gets its JSON error code and the service keeps
 * answering correctly; concurrent writes lose nothing; an acknowledged write survives kill -9;
 * auth; 429 on a full queue; 503 past the timeout; CORS; metrics, readiness and the OpenAPI document.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIndex } from '../../serve/build-index.js';
import { startServer, type RunningServer } from '../../serve/server.js';
import { OnnxEncoder } from '../../core/runtime/onnx-encoder.js';
import { preprocessImages } from '../../core/preprocess.js';
import { loadDataset } from '../../data/datasets.js';
import { sampleIndices, type ImageSet } from '../../core/image-set.js';
import { FASHION_DIR, hasFashion, isolatedCache, tinyModel, tmpDir } from '../helpers.js';

const bin = path.resolve(import.meta.dirname, '../../bin/sslkit.js');
const FOREIGN = path.resolve(import.meta.dirname, '../fixtures/foreign/tiny-cnn.onnx');

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: r.status, headers: r.headers, body: (await r.json()) as Record<string, any> };
}

describe.runIf(hasFashion)('sslkit serve', () => {
  let model: string;
  let indexFile: string;
  let s: RunningServer;
  let pngs: Buffer[] = [];
  /** Test images in both indexes (limit 200 and 50: --limit samples the same per-class order), ascending. */
  let picked: number[] = [];
  let test: ImageSet;

  beforeAll(async () => {
    isolatedCache();
    model = await tinyModel();
    indexFile = path.join(tmpDir(), 'g.idx');
    await buildIndex(model, indexFile, { data: 'fashion-mnist', dataDir: FASHION_DIR, limit: 200, log: () => {} });
    // Real test images that the indexes hold, as PNG files' bytes.
    test = await loadDataset('fashion-mnist', 'test', { dataDir: FASHION_DIR });
    picked = Array.from(sampleIndices(test.labels, test.n, 50).subarray(0, 4));
    expect(Array.from(sampleIndices(test.labels, test.n, 200))).toEqual(expect.arrayContaining(picked));
    pngs = await Promise.all(
      picked.map((i) =>
        sharp(Buffer.from(test.pixels.subarray(i * 784, (i + 1) * 784)), { raw: { width: 28, height: 28, channels: 1 } })
          .png()
          .toBuffer(),
      ),
    );
    s = await startServer({
      model,
      index: indexFile,
      port: 0,
      device: 'cpu',
      maxPixels: 1_000_000,
      maxBodyBytes: 2_000_000,
      log: () => {},
    });
  }, 180_000);
  afterAll(() => s?.close());
  /** A copy of the served index, for a second service in this process (one writer per index file). */
  const copyOfIndex = () => {
    const file = path.join(tmpDir(), 'copy.idx');
    fs.copyFileSync(indexFile, file);
    return file;
  };

  it('POST /v1/embeddings: JSON base64 and data URL, multipart, raw image/png; float and base64 encodings; equal to OnnxEncoder', async () => {
    const b64 = pngs[0].toString('base64');
    const a = await post(`${s.url}/v1/embeddings`, {
      input: [b64, `data:image/png;base64,${pngs[1].toString('base64')}`],
      model: path.basename(model, '.onnx'),
    });
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ object: 'list', model: path.basename(model, '.onnx'), usage: { images: 2 } });
    expect(a.body.data.map((d: { index: number }) => d.index)).toEqual([0, 1]);
    const dim = a.body.data[0].embedding.length;
    // The same image through the loader directly.
    const enc = await OnnxEncoder.load(model, { log: () => {} });
    const direct = await enc.embed(preprocessImages(test, [picked[0]], enc.preprocessing), 1);
    await enc.release();
    a.body.data[0].embedding.forEach((v: number, i: number) => expect(v).toBeCloseTo(direct[i], 4));
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(pngs[0])], { type: 'image/png' }), 'a.png');
    const m = await fetch(`${s.url}/v1/embeddings`, { method: 'POST', body: form });
    expect(((await m.json()) as any).data[0].embedding).toEqual(a.body.data[0].embedding);
    const raw = await fetch(`${s.url}/v1/embeddings?encoding_format=base64`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: new Uint8Array(pngs[0]),
    });
    const enc64 = ((await raw.json()) as any).data[0].embedding as string;
    const fromB64 = new Float32Array(new Uint8Array(Buffer.from(enc64, 'base64')).buffer);
    expect(Array.from(fromB64)).toHaveLength(dim);
    fromB64.forEach((v, i) => expect(v).toBeCloseTo(a.body.data[0].embedding[i], 6));
  });

  it('search, cluster assignment, cluster listing and rebuild', async () => {
    const r = await post(`${s.url}/v1/search`, { image: pngs[0].toString('base64'), k: 5 });
    expect(r.status).toBe(200);
    expect(r.body.data).toHaveLength(5);
    expect(r.body.data[0]).toMatchObject({
      id: String(picked[0]),
      metadata: { source: `fashion-mnist:test:${picked[0]}`, label: test.classes[test.labels![picked[0]]] },
    });
    expect(r.body.data[0].score).toBeCloseTo(1, 4); // the image is in the index
    const emb = (await post(`${s.url}/v1/embeddings`, { input: pngs[2].toString('base64') })).body.data[0].embedding;
    expect((await post(`${s.url}/v1/search`, { embedding: emb, k: 1 })).body.data[0].id).toBe(String(picked[2]));
    const a = await post(`${s.url}/v1/clusters/assign`, { embedding: emb, members: 3 });
    expect(a.status).toBe(200);
    expect(a.body.members.length).toBeGreaterThan(0);
    const list = (await (await fetch(`${s.url}/v1/clusters`)).json()) as any;
    expect(list.k).toBe(10);
    expect(list.clusters.reduce((t: number, c: { size: number }) => t + c.size, 0)).toBe(200);
    expect(list.clusters.find((c: { id: number }) => c.id === a.body.cluster).size).toBeGreaterThan(0);
    expect((await post(`${s.url}/v1/clusters/rebuild`, { k: 4 })).body).toEqual({ k: 4 });
    expect(((await (await fetch(`${s.url}/v1/clusters`)).json()) as any).clusters).toHaveLength(4);
  });

  it('every bad request gets its JSON error code, and the service still answers correctly after', async () => {
    const jpg = await sharp({ create: { width: 40, height: 40, channels: 3, background: { r: 10, g: 200, b: 30 } } })
      .jpeg()
      .toBuffer();
    const gif = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 1, g: 2, b: 3 } } })
      .gif()
      .toBuffer();
    const bomb = await sharp({ create: { width: 2000, height: 2000, channels: 3, background: { r: 0, g: 0, b: 0 } } })
      .png()
      .toBuffer();
    const cases: [unknown, number, string, string?][] = [
      [{ input: '###' }, 400, 'invalid_base64', 'input'],
      [{ input: Buffer.from('hello world, not an image').toString('base64') }, 400, 'not_an_image', 'input'],
      [{ input: jpg.subarray(0, jpg.length >> 1).toString('base64') }, 400, 'truncated_image', 'input'],
      [{ input: bomb.toString('base64') }, 400, 'too_many_pixels', 'input'],
      [{ input: 'https://example.com/cat.jpg' }, 400, 'urls_not_allowed', 'input'],
      [{ input: gif.toString('base64') }, 400, 'unsupported_image_type', 'input'],
      [{ input: [] }, 400, 'invalid_request', 'input'],
      [{}, 400, 'invalid_request', 'input'],
    ];
    for (const [body, status, code, field] of cases) {
      const r = await post(`${s.url}/v1/embeddings`, body);
      expect([r.status, r.body.error.code, r.body.error.field], JSON.stringify(body).slice(0, 60)).toEqual([status, code, field]);
    }
    const text = await fetch(`${s.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    expect([text.status, ((await text.json()) as any).error.code]).toEqual([415, 'unsupported_content_type']);
    const big = await fetch(`${s.url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: 'A'.repeat(3_000_000) }),
    });
    expect([big.status, ((await big.json()) as any).error.code]).toEqual([413, 'body_too_large']);
    const badJson = await fetch(`${s.url}/v1/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"k": ' });
    expect(((await badJson.json()) as any).error.code).toBe('invalid_json');
    expect((await post(`${s.url}/v1/search`, { embedding: [1, 2, 3], k: 3 })).body.error).toMatchObject({
      code: 'wrong_dimension',
      field: 'embedding',
    });
    expect((await post(`${s.url}/v1/search`, { embedding: [1], k: 0 })).body.error).toMatchObject({ code: 'out_of_range', field: 'k' });
    expect((await post(`${s.url}/v1/search`, { k: 3 })).body.error.code).toBe('invalid_request');
    const del = await fetch(`${s.url}/v1/index/items/nope`, { method: 'DELETE' });
    expect([del.status, ((await del.json()) as any).error.code]).toEqual([404, 'unknown_id']);
    // Still healthy and still right.
    expect((await post(`${s.url}/v1/search`, { image: pngs[3].toString('base64'), k: 1 })).body.data[0].id).toBe(String(picked[3]));
  });

  it('concurrent writes lose nothing; deletes work; /metrics, /readyz, /v1/models, /openapi.json', async () => {
    const before = await s.ctx.store!.count();
    const emb = (await post(`${s.url}/v1/embeddings`, { input: pngs[1].toString('base64') })).body.data[0].embedding as number[];
    const writes = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        post(`${s.url}/v1/index/items`, { items: [{ id: `new-${i}`, embedding: emb.map((v) => v + i * 1e-3), metadata: { n: i } }] }),
      ),
    );
    expect(writes.every((w) => w.status === 201)).toBe(true);
    expect(await s.ctx.store!.count()).toBe(before + 24);
    const img = await post(`${s.url}/v1/index/items`, { items: [{ id: 'from-image', image: pngs[0].toString('base64') }] });
    expect(img.body.ids).toEqual(['from-image']);
    expect((await fetch(`${s.url}/v1/index/items/new-3`, { method: 'DELETE' })).status).toBe(200);
    expect(await s.ctx.store!.has('new-3')).toBe(false);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/sslkit_http_requests_total\{route="\/v1\/search",method="POST",status="200"\} \d+/);
    expect(metrics).toMatch(/sslkit_batch_size_count \d+/);
    expect(metrics).toMatch(/sslkit_execution_provider\{provider="cpu"\} 1/);
    expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
    const models = (await (await fetch(`${s.url}/v1/models`)).json()) as any;
    expect(models.data[0]).toMatchObject({ execution_provider: 'cpu', input: { name: 'pixel_values', channels: 1, height: 28 } });
    const api = (await (await fetch(`${s.url}/openapi.json`)).json()) as any;
    expect(Object.keys(api.paths)).toEqual(
      expect.arrayContaining(['/v1/embeddings', '/v1/search', '/v1/clusters/assign', '/v1/index/items']),
    );
    expect(api.paths['/v1/search'].post.requestBody.content['application/json'].schema.properties.k.maximum).toBe(1000);
  });

  it('an acknowledged write survives kill -9; the index comes back intact', async () => {
    const idx = path.join(tmpDir(), 'k.idx');
    fs.copyFileSync(indexFile, idx);
    const start = () =>
      new Promise<{ url: string; child: ReturnType<typeof spawn> }>((resolve, reject) => {
        const child = spawn(process.execPath, [bin, 'serve', '--model', model, '--index', idx, '--port', '0', '--device', 'cpu']);
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
          const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(out);
          if (m) resolve({ url: m[1], child });
        });
        child.on('exit', (c) => reject(new Error(`server exited ${c}`)));
      });
    const a = await start();
    const emb = Array.from({ length: s.ctx.store!.dim }, (_, i) => Math.cos(i));
    const w = await post(`${a.url}/v1/index/items`, { items: [{ id: 'durable', embedding: emb, metadata: { note: 'kept' } }] });
    expect(w.status).toBe(201);
    a.child.kill('SIGKILL');
    await new Promise((r) => a.child.once('close', r));
    const b = await start();
    const r = await post(`${b.url}/v1/search`, { embedding: emb, k: 1 });
    expect(r.body.data[0]).toMatchObject({ id: 'durable', metadata: { note: 'kept' } });
    expect(r.body.data[0].score).toBeCloseTo(1, 5);
    expect(
      ((await (await fetch(`${b.url}/v1/clusters`)).json()) as any).clusters.reduce((t: number, c: { size: number }) => t + c.size, 0),
    ).toBe(201);
    b.child.kill('SIGTERM');
    await new Promise((r) => b.child.once('close', r));
  });

  it('API key: required everywhere but health, or for writes only; 429 with Retry-After when the queue is full', async () => {
    const k = await startServer({ model, index: copyOfIndex(), port: 0, device: 'cpu', apiKey: 'sekret', log: () => {} });
    try {
      expect((await fetch(`${k.url}/healthz`)).status).toBe(200);
      const no = await post(`${k.url}/v1/search`, { embedding: [1], k: 1 });
      expect([no.status, no.body.error.code]).toEqual([401, 'unauthorized']);
      expect((await post(`${k.url}/v1/search`, { embedding: [1], k: 1 }, { authorization: 'Bearer wrong' })).status).toBe(401);
      const ok = await post(`${k.url}/v1/embeddings`, { input: pngs[0].toString('base64') }, { authorization: 'Bearer sekret' });
      expect(ok.status).toBe(200);
    } finally {
      await k.close();
    }
    const w = await startServer({
      model,
      index: copyOfIndex(),
      port: 0,
      device: 'cpu',
      apiKey: 'sekret',
      apiKeyScope: 'writes',
      maxQueue: 1,
      maxDelayMs: 300,
      log: () => {},
    });
    try {
      expect((await post(`${w.url}/v1/embeddings`, { input: pngs[0].toString('base64') })).status).toBe(200);
      expect((await post(`${w.url}/v1/index/items`, { items: [{ id: 'x', embedding: [1] }] })).status).toBe(401);
      const burst = await Promise.all([0, 1, 2].map(() => post(`${w.url}/v1/embeddings`, { input: pngs[1].toString('base64') })));
      const limited = burst.filter((r) => r.status === 429);
      expect(limited.length).toBeGreaterThan(0);
      expect(limited[0].headers.get('retry-after')).toBe('1');
      expect(limited[0].body.error.code).toBe('queue_full');
      expect(burst.some((r) => r.status === 200)).toBe(true);
    } finally {
      await w.close();
    }
  });

  it('a request that waits past --timeout-ms gets 503 timeout; CORS headers only with --cors', async () => {
    // An idle model waits 300 ms to fill a batch: longer than the 50 ms the request may take.
    const t = await startServer({ model, port: 0, device: 'cpu', maxDelayMs: 300, timeoutMs: 50, cors: true, log: () => {} });
    try {
      const slow = await post(`${t.url}/v1/embeddings`, { input: [pngs[0].toString('base64')] });
      expect([slow.status, slow.body.error.code]).toEqual([503, 'timeout']);
      expect(slow.body.error.message).toMatch(/no result within 50 ms/);
      const pre = await fetch(`${t.url}/v1/embeddings`, { method: 'OPTIONS', headers: { origin: 'http://example.test' } });
      expect(pre.status).toBe(204);
      expect(pre.headers.get('access-control-allow-origin')).toBe('*');
      expect(pre.headers.get('access-control-allow-methods')).toContain('POST');
      expect((await fetch(`${t.url}/healthz`)).headers.get('access-control-allow-origin')).toBe('*');
    } finally {
      await t.close();
    }
    // The shared server has CORS off, and its answers still come in time.
    expect(
      (await fetch(`${s.url}/healthz`, { headers: { origin: 'http://example.test' } })).headers.get('access-control-allow-origin'),
    ).toBeNull();
    expect((await post(`${s.url}/v1/embeddings`, { input: [pngs[0].toString('base64')] })).status).toBe(200);
  });

  it('dynamic batching merges concurrent requests into fewer model runs', async () => {
    const b = await startServer({ model, port: 0, device: 'cpu', maxDelayMs: 100, maxBatch: 16, log: () => {} });
    try {
      const rs = await Promise.all(pngs.concat(pngs).map((p) => post(`${b.url}/v1/embeddings`, { input: p.toString('base64') })));
      expect(rs.every((r) => r.status === 200)).toBe(true);
      const metrics = await (await fetch(`${b.url}/metrics`)).text();
      const runs = Number(/sslkit_batch_size_count (\d+)/.exec(metrics)![1]);
      const images = Number(/sslkit_batch_size_sum (\d+)/.exec(metrics)![1]);
      expect(images).toBe(8);
      expect(runs).toBeLessThan(8);
      // Each request got its own image's embedding back: equal images, equal vectors.
      expect(rs[0].body.data[0].embedding).toEqual(rs[4].body.data[0].embedding);
      expect(rs[0].body.data[0].embedding).not.toEqual(rs[1].body.data[0].embedding);
    } finally {
      await b.close();
    }
  });

  it('serves a foreign torch.onnx encoder too, with an index built by it', async () => {
    const foreignIndex = path.join(tmpDir(), 'f.idx');
    await buildIndex(FOREIGN, foreignIndex, { data: 'fashion-mnist', dataDir: FASHION_DIR, limit: 50, clusters: 3, log: () => {} });
    const withIndex = await startServer({ model: FOREIGN, index: foreignIndex, port: 0, device: 'cpu', log: () => {} });
    try {
      const r = await post(`${withIndex.url}/v1/search`, { image: pngs[0].toString('base64'), k: 3 });
      expect(r.body.data[0]).toMatchObject({ id: String(picked[0]) });
      // sharp's resize (28 → 32 px) and the index builder's bilinear resize differ slightly.
      expect(r.body.data[0].score).toBeGreaterThan(0.99);
      expect((await post(`${withIndex.url}/v1/clusters/assign`, { image: pngs[1].toString('base64') })).body.cluster).toBeLessThan(3);
    } finally {
      await withIndex.close();
    }
    const f = await startServer({ model: FOREIGN, port: 0, device: 'cpu', log: () => {} });
    try {
      const r = await post(`${f.url}/v1/embeddings`, { input: [pngs[0].toString('base64'), pngs[1].toString('base64')] });
      expect(r.status).toBe(200);
      expect(r.body.data[0].embedding).toHaveLength(48);
      expect((await post(`${f.url}/v1/search`, { embedding: [1], k: 1 })).body.error.code).toBe('no_index');
      expect(((await (await fetch(`${f.url}/v1/models`)).json()) as any).data[0].assumed_preprocessing).toEqual([
        'mean',
        'std',
        'pixelScale',
        'resize',
      ]);
    } finally {
      await f.close();
    }
  });

  it('a model thread that dies turns readyz to 503 and requests to 500 errors; the service still answers', async () => {
    const d = await startServer({ model, port: 0, device: 'cpu', log: () => {} });
    try {
      expect((await fetch(`${d.url}/readyz`)).status).toBe(200);
      // What an out-of-memory kill of the model thread would leave.
      await (d.ctx.encoder as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
      const ready = await fetch(`${d.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ ready: false, model: false });
      const r = await post(`${d.url}/v1/embeddings`, { input: pngs[0].toString('base64') });
      expect(r.status).toBe(500);
      expect(r.body.error.code).toBe('internal_error');
      expect((await fetch(`${d.url}/healthz`)).status).toBe(200);
    } finally {
      await d.close();
    }
  });

  it('takes --preprocessing for a foreign model, and refuses an index made with other preprocessing', async () => {
    const pre = path.join(tmpDir(), 'pre.json');
    fs.writeFileSync(pre, JSON.stringify({ mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }));
    const idx = path.join(tmpDir(), 'p.idx');
    await buildIndex(FOREIGN, idx, {
      data: 'fashion-mnist',
      dataDir: FASHION_DIR,
      limit: 50,
      clusters: 3,
      preprocessing: pre,
      log: () => {},
    });
    await expect(startServer({ model: FOREIGN, index: idx, port: 0, device: 'cpu', log: () => {} })).rejects.toThrow(
      /p\.idx was built with preprocessing .*"mean":\[0\.5,0\.5,0\.5\].*the server would use .*"mean":\[0\.485.*pass the same --preprocessing/,
    );
    const s2 = await startServer({ model: FOREIGN, index: idx, preprocessing: pre, port: 0, device: 'cpu', log: () => {} });
    try {
      const r = await post(`${s2.url}/v1/search`, { image: pngs[0].toString('base64'), k: 1 });
      expect(r.body.data[0]).toMatchObject({ id: String(picked[0]) });
      expect(((await (await fetch(`${s2.url}/v1/models`)).json()) as any).data[0].input.mean).toEqual([0.5, 0.5, 0.5]);
    } finally {
      await s2.close();
    }
  });
});
