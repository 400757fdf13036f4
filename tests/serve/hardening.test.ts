/**
 * What an outside attack on `sslkit serve` found (issue 18), each over real HTTP on 127.0.0.1:
 * no spelling of a write route skips the API key; work per request is bounded before decoding;
 * bad multipart, encodings and paths are 4xx errors; ids cannot be overridden by metadata;
 * cluster rebuilds run off the request thread; non-finite vectors are refused; a shutdown does not
 * wait for ever on a slow client; resize policies are compared; small protocol details.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import express from 'express';
import net from 'node:net';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIndex } from '../../serve/build-index.js';
import { startServer, type RunningServer } from '../../serve/server.js';
import { loadIndex, saveIndex } from '../../serve/index-file.js';
import { regularFilesIn } from '../../serve/static-assets.js';
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

  it('second round (issue 36): the auth scheme is case-insensitive; Expect: 100-continue over the limit is refused before the body', async () => {
    const item = (id: string) => ({ items: [{ id, embedding: Array(dim).fill(0.25) }] });
    for (const scheme of ['bearer', 'BEARER', 'Bearer  ']) {
      const r = await call(`${s.url}/v1/index/items`, {
        json: item(`auth-${scheme.trim()}`),
        headers: { authorization: `${scheme} sekret` },
      });
      expect([scheme, r.status]).toEqual([scheme, 201]);
    }
    expect((await call(`${s.url}/v1/index/items`, { json: item('basic'), headers: { authorization: 'Basic sekret' } })).status).toBe(401);
    // Headers only, then wait: the answer must come before the client sends its 10 MB.
    const exchange = (contentLength: number, body?: string) =>
      new Promise<string>((resolve, reject) => {
        const sock = net.connect(Number(new URL(s.url).port), '127.0.0.1');
        let got = '';
        sock.on('data', (d) => {
          got += d;
          if (body !== undefined && got.startsWith('HTTP/1.1 100')) {
            sock.write(body);
            body = undefined;
          }
          if (/\r\n\r\n[\s\S]*\}\s*$/.test(got.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, ''))) sock.end();
        });
        sock.on('close', () => resolve(got));
        sock.on('error', reject);
        sock.setTimeout(5_000, () => sock.destroy());
        sock.write(
          `POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${contentLength}\r\nExpect: 100-continue\r\n\r\n`,
        );
      });
    const refused = await exchange(10_000_000);
    expect(refused).toMatch(/^HTTP\/1\.1 413 /);
    expect(refused).toMatch(/"code":"body_too_large".*10000000 bytes exceeds the 100000-byte limit/);
    const body = JSON.stringify({ embedding: Array(dim).fill(0.5), k: 1 });
    const accepted = await exchange(Buffer.byteLength(body), body);
    expect(accepted).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
  });

  it('second round: an OpenAI-style request naming another model or fewer dimensions is refused in its error shape', async () => {
    const input = png.toString('base64');
    const name = path.basename(model, '.onnx');
    const other = await call(`${s.url}/v1/embeddings`, { json: { input, model: 'text-embedding-3-small' } });
    expect([other.status, other.body.error]).toEqual([
      404,
      {
        code: 'model_not_found',
        message: `the model 'text-embedding-3-small' does not exist here; this service serves '${name}'`,
        type: 'invalid_request_error',
        param: 'model',
        field: 'model',
      },
    ]);
    expect((await call(`${s.url}/v1/embeddings`, { json: { input, model: name, dimensions: dim } })).status).toBe(200);
    const shorter = await call(`${s.url}/v1/embeddings`, { json: { input, dimensions: dim - 1 } });
    expect([shorter.status, shorter.body.error.code, shorter.body.error.param]).toEqual([400, 'unsupported_dimensions', 'dimensions']);
    expect(shorter.body.error.message).toContain(`this model gives ${dim}-dimensional embeddings`);
  });

  it('second round: a valid 1 × 39,000,000 PNG is told apart from a non-image', async () => {
    // A real PNG: one grey column 39 million pixels tall (76 kB compressed), under --max-pixels.
    const chunk = (type: string, data: Buffer) => {
      const head = Buffer.alloc(4);
      head.writeUInt32BE(data.length);
      const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(zlib.crc32(typed));
      return Buffer.concat([head, typed, crc]);
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(1, 0);
    ihdr.writeUInt32BE(39_000_000, 4);
    ihdr[8] = 8; // 8-bit grey
    const tall = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', ihdr),
      chunk('IDAT', zlib.deflateSync(Buffer.alloc(39_000_000 * 2), { level: 9 })),
      chunk('IEND', Buffer.alloc(0)),
    ]);
    const r = await call(`${s.url}/v1/embeddings`, {
      method: 'POST',
      body: new Uint8Array(tall),
      headers: { 'content-type': 'image/png' },
    });
    expect([r.status, r.body.error.code]).toEqual([400, 'image_too_large']);
    expect(r.body.error.message).toMatch(
      /image is 1 × 39000000 pixels: too long a side or too extreme an aspect ratio to resize to the model's 28 × 28/,
    );
  });

  it('second round: the gallery folder serves its regular files only, never through a symbolic link out of it', async () => {
    const root = tmpDir();
    const outside = path.join(tmpDir(), 'secret.txt');
    fs.writeFileSync(outside, 'not for the web');
    fs.writeFileSync(path.join(root, 'manifest.json'), '{"ok":true}');
    fs.mkdirSync(path.join(root, 'thumbs'));
    fs.writeFileSync(path.join(root, 'thumbs', 'a.png'), png);
    fs.symlinkSync(outside, path.join(root, 'leak.txt'));
    fs.symlinkSync(path.dirname(outside), path.join(root, 'leakdir'));
    fs.symlinkSync(path.join(root, 'manifest.json'), path.join(root, 'alias.json'));
    const app = express();
    app.use('/g', regularFilesIn(root));
    app.use((_req, res) => void res.status(404).send('none'));
    const srv = app.listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const base = `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}/g`;
    try {
      const get = async (p: string) => {
        const res = await fetch(`${base}${p}`);
        return [p, res.status, await res.text()];
      };
      expect(await get('/manifest.json')).toEqual(['/manifest.json', 200, '{"ok":true}']);
      expect((await get('/thumbs/a.png'))[1]).toBe(200);
      expect(await get('/alias.json')).toEqual(['/alias.json', 200, '{"ok":true}']);
      for (const p of ['/leak.txt', '/leakdir/secret.txt', '/thumbs', '/..%2Fsecret.txt', '/%2e%2e/%2e%2e/etc/passwd', '/missing'])
        expect(await get(p)).toEqual([p, 404, 'none']);
    } finally {
      srv.close();
    }
  });
});
