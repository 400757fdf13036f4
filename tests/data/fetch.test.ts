/**
 * The downloader against a real HTTP server on 127.0.0.1 serving the real Fashion-MNIST files:
 * a clean download, a corrupted one (rejected, nothing left behind), a truncated one (the part is
 * kept and the next run resumes it with a Range request) and an unreachable server.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchFile } from '../../data/fetch.js';
import { SOURCES } from '../../data/sources.js';
import { parseIdx } from '../../data/idx.js';
import { FASHION_DIR, hasFashion, tmpDir } from '../helpers.js';

describe.runIf(hasFashion)('sslkit data fetch', () => {
  let server: http.Server;
  let base: string;
  let mode: 'ok' | 'corrupt' | 'truncate' = 'ok';
  const rangeRequests: string[] = [];
  const labels = SOURCES['fashion-mnist'].files.find((f) => f.name === 't10k-labels-idx1-ubyte.gz')!;
  const images = SOURCES['fashion-mnist'].files.find((f) => f.name === 't10k-images-idx3-ubyte.gz')!;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const file = path.join(FASHION_DIR, path.basename(req.url ?? ''));
      if (!fs.existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      let body = fs.readFileSync(file);
      if (mode === 'corrupt') {
        body = Buffer.from(body);
        body[body.length >> 1] ^= 0xff;
      }
      const range = /bytes=(\d+)-/.exec(req.headers.range ?? '');
      if (range) {
        rangeRequests.push(req.headers.range!);
        const start = Number(range[1]);
        res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
        res.end(body.subarray(start));
        return;
      }
      res.writeHead(200, { 'content-length': body.length });
      if (mode === 'truncate') {
        // Send the first half, then drop the connection.
        res.write(body.subarray(0, body.length >> 1), () => res.destroy());
        return;
      }
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('downloads, verifies and stores the real file', async () => {
    mode = 'ok';
    const dir = tmpDir();
    const file = await fetchFile(labels, dir, { baseUrl: base });
    expect(file).toBe(path.join(dir, labels.name));
    expect(parseIdx(file, 1).dims).toEqual([10000]);
    expect(fs.readdirSync(dir)).toEqual([labels.name]);
  });

  it('rejects a corrupted download and leaves no file that could be taken for good', async () => {
    mode = 'corrupt';
    const dir = tmpDir();
    await expect(fetchFile(images, dir, { baseUrl: base })).rejects.toThrow(/checksum mismatch/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('keeps a truncated part and resumes it with a Range request on the next run', async () => {
    mode = 'truncate';
    const dir = tmpDir();
    await expect(fetchFile(images, dir, { baseUrl: base })).rejects.toThrow(/could not fetch t10k-images/);
    expect(fs.existsSync(path.join(dir, images.name))).toBe(false);
    const partSize = fs.statSync(path.join(dir, `${images.name}.part`)).size;
    expect(partSize).toBeGreaterThan(0);
    mode = 'ok';
    rangeRequests.length = 0;
    const file = await fetchFile(images, dir, { baseUrl: base });
    expect(rangeRequests).toEqual([`bytes=${partSize}-`]);
    expect(parseIdx(file, 3).dims).toEqual([10000, 28, 28]);
    expect(fs.readdirSync(dir)).toEqual([images.name]);
  });

  it('says which address failed when nothing answers', async () => {
    const dir = tmpDir();
    await expect(fetchFile(labels, dir, { baseUrl: 'http://127.0.0.1:9' })).rejects.toThrow(
      /could not fetch t10k-labels-idx1-ubyte.gz: http:\/\/127.0.0.1:9\//,
    );
  });
});
