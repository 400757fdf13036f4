/**
 * `sslkit index` and exact search: an exported sslkit model and the foreign torch.onnx fixture
 * index real Fashion-MNIST images; every vector finds itself first; clusters are consistent;
 * the file round-trips and damaged files are refused. Plus k-means on separable data.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { kmeans } from '../../core/kmeans.js';
import { normalizeRows } from '../../core/vectors.js';
import { Rng } from '../../core/random.js';
import { buildIndex } from '../../serve/build-index.js';
import { loadIndex } from '../../serve/index-file.js';
import { ExactSearch } from '../../serve/exact-search.js';
import { FileIndex } from '../../serve/file-store.js';
import { FASHION_DIR, hasFashion, httpJson, isolatedCache, tinyModel, tmpDir } from '../helpers.js';
import { startServer } from '../../serve/server.js';
import sharp from 'sharp';
import { loadDataset } from '../../data/datasets.js';
import { sampleIndices } from '../../core/image-set.js';

describe('k-means', () => {
  it('recovers well-separated clusters exactly and keeps unit centroids', () => {
    const rng = new Rng(1);
    const d = 8;
    const centres = [0, 1, 2].map((c) => Float32Array.from({ length: d }, (_, t) => (t % 3 === c ? 1 : 0)));
    const n = 90;
    const x = new Float32Array(n * d);
    for (let i = 0; i < n; i++) for (let t = 0; t < d; t++) x[i * d + t] = centres[i % 3][t] + 0.05 * rng.normal();
    normalizeRows(x, d);
    const r = kmeans(x, d, 3, { seed: 4 });
    expect(Array.from(r.sizes).sort()).toEqual([30, 30, 30]);
    for (let i = 3; i < n; i++) expect(r.assign[i]).toBe(r.assign[i % 3]);
    for (let c = 0; c < 3; c++) expect(Math.hypot(...r.centroids.subarray(c * d, (c + 1) * d))).toBeCloseTo(1, 5);
    expect(() => kmeans(x, d, 0)).toThrow(/k must be in 1\.\.90/);
  });
});

describe.runIf(hasFashion)('sslkit index', () => {
  let model: string;
  beforeAll(async () => {
    isolatedCache();
    model = await tinyModel();
  }, 120_000);

  it('indexes with an exported model: every vector finds itself first, clusters are nearest-centroid', async () => {
    const out = path.join(tmpDir(), 'g.idx');
    const built = await buildIndex(model, out, { data: 'fashion-mnist', dataDir: FASHION_DIR, limit: 300, log: () => {} });
    const idx = loadIndex(out);
    expect(idx.items).toHaveLength(300);
    expect(idx.vectors).toEqual(built.vectors);
    expect(idx.clusters.k).toBe(10);
    // --limit samples by class; each item keeps its test-set position as id and source.
    const test = await loadDataset('fashion-mnist', 'test', { dataDir: FASHION_DIR });
    const positions = Array.from(sampleIndices(test.labels, test.n, 300));
    expect(idx.items.map((it) => it.id)).toEqual(positions.map(String));
    expect(idx.items[0]).toMatchObject({ source: `fashion-mnist:test:${positions[0]}`, label: test.classes[test.labels![positions[0]]] });
    expect(new Set(idx.items.map((it) => it.label)).size).toBe(10);
    expect(idx.model.metadata.method).toBe('simclr');
    const search = new ExactSearch(idx);
    let sameLabel = 0;
    for (let i = 0; i < 300; i += 7) {
      const v = idx.vectors.subarray(i * idx.dim, (i + 1) * idx.dim);
      const nn = search.search(v, 5);
      expect(nn[0].id).toBe(idx.items[i].id);
      expect(nn[0].score).toBeCloseTo(1, 5);
      for (let j = 1; j < 5; j++) expect(nn[j].score).toBeLessThanOrEqual(nn[j - 1].score);
      if (nn[1].item.label === idx.items[i].label) sameLabel++;
      expect(search.assign(v).cluster).toBe(idx.clusters.assign[i]);
    }
    // Nearest other image shares the label far above chance (10%), even for a barely trained encoder.
    expect(sameLabel / 43).toBeGreaterThan(0.4);
    expect(() => search.search(new Float32Array(3), 5)).toThrow(/embedding has 3 values, the index holds 32-d vectors/);
  });

  it('saves the HNSW graph with the index above the threshold, so the service reopens it without a rebuild', async () => {
    const out = path.join(tmpDir(), 'g.idx');
    await buildIndex(model, out, { data: 'fashion-mnist', dataDir: FASHION_DIR, limit: 500, annThreshold: 400, log: () => {} });
    expect(fs.existsSync(`${out}.hnsw`)).toBe(true);
    const store = FileIndex.open(out, { annThreshold: 400 });
    expect(store.annLoaded).toBe(true);
    expect(store.nearest(loadIndex(out).vectors.subarray(0, 32), 1)[0].id).toBe(loadIndex(out).items[0].id);
    store.close();
    // Below the threshold: exact search only, no graph files.
    const small = path.join(tmpDir(), 's.idx');
    await buildIndex(model, small, { data: 'fashion-mnist', dataDir: FASHION_DIR, limit: 100, annThreshold: 400, log: () => {} });
    expect(fs.existsSync(`${small}.hnsw`)).toBe(false);
  });

  it('--centre: vectors centred on the images’ mean, and the service centres every image it embeds the same way', async () => {
    const dir = tmpDir();
    const opts = { data: 'fashion-mnist', dataDir: FASHION_DIR, limit: 200, log: () => {} };
    const plain = await buildIndex(model, path.join(dir, 'plain.idx'), opts);
    const centred = await buildIndex(model, path.join(dir, 'centred.idx'), { ...opts, centre: true });
    const d = plain.dim;
    // The centre is the mean of the plain unit vectors; each centred vector is (v − centre) / ‖v − centre‖.
    const mean = Array.from({ length: d }, (_, j) => plain.vectors.reduce((s, v, i) => (i % d === j ? s + v : s), 0) / 200);
    centred.model.centre!.forEach((c, j) => expect(c).toBeCloseTo(mean[j], 5));
    for (const i of [0, 57, 199]) {
      const want = plain.vectors.slice(i * d, (i + 1) * d).map((v, j) => v - mean[j]);
      const n = Math.hypot(...want);
      want.forEach((v, j) => expect(centred.vectors[i * d + j]).toBeCloseTo(v / n, 5));
    }
    expect(loadIndex(path.join(dir, 'centred.idx')).model.centre).toEqual(centred.model.centre);
    // Scores spread out: the 10th neighbour's score, median over queries, falls far below the plain index's.
    const tenth = (idx: typeof plain) => {
      const s = new ExactSearch(idx);
      const scores = [0, 20, 40, 60, 80, 100, 120, 140, 160, 180].map(
        (i) => s.search(idx.vectors.subarray(i * d, (i + 1) * d), 10)[9].score,
      );
      return scores.sort((a, b) => a - b)[5];
    };
    expect(tenth(plain)).toBeGreaterThan(0.9);
    expect(tenth(centred)).toBeLessThan(tenth(plain) - 0.2);

    // The service: /v1/embeddings gives the centred unit vector (the index's own for the same image),
    // a search with the image finds it first with score 1, and /v1/models says the index is centred.
    const test = await loadDataset('fashion-mnist', 'test', { dataDir: FASHION_DIR });
    const pos = Number(centred.items[57].id);
    const png = await sharp(Buffer.from(test.pixels.subarray(pos * 784, (pos + 1) * 784)), { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toBuffer();
    const s = await startServer({ model, index: path.join(dir, 'centred.idx'), port: 0, device: 'cpu', log: () => {} });
    try {
      const e = await httpJson(`${s.url}/v1/embeddings`, { input: [png.toString('base64')] });
      (e.body.data[0].embedding as number[]).forEach((v, j) => expect(v).toBeCloseTo(centred.vectors[57 * d + j], 4));
      const hits = await httpJson(`${s.url}/v1/search`, { image: png.toString('base64'), k: 3 });
      expect(hits.body.data[0]).toMatchObject({ id: String(pos) });
      expect(hits.body.data[0].score).toBeCloseTo(1, 4);
      expect((await httpJson(`${s.url}/v1/models`)).body.data[0].index).toMatchObject({ centred: true, items: 200 });
    } finally {
      await s.close();
    }
  });

  it('indexes with the foreign torch.onnx encoder (3×32×32 from 1×28×28 images)', async () => {
    const out = path.join(tmpDir(), 'f.idx');
    const idx = await buildIndex(path.resolve(import.meta.dirname, '../fixtures/foreign/tiny-cnn.onnx'), out, {
      data: 'fashion-mnist',
      dataDir: FASHION_DIR,
      limit: 100,
      clusters: 4,
      log: () => {},
    });
    expect([idx.dim, idx.clusters.k]).toEqual([48, 4]);
    expect(new ExactSearch(loadIndex(out)).search(idx.vectors.subarray(48 * 5, 48 * 6), 1)[0].id).toBe(idx.items[5].id);
  });

  it('damaged or foreign files are refused with the reason', async () => {
    const dir = tmpDir();
    const out = path.join(dir, 'g.idx');
    await buildIndex(model, out, { data: 'fashion-mnist', dataDir: FASHION_DIR, limit: 20, clusters: 2, log: () => {} });
    const bytes = fs.readFileSync(out);
    fs.writeFileSync(path.join(dir, 'cut.idx'), bytes.subarray(0, bytes.length - 10));
    expect(() => loadIndex(path.join(dir, 'cut.idx'))).toThrow(/cut.idx: index is \d+ bytes, its header says \d+ \(truncated or damaged\)/);
    fs.writeFileSync(path.join(dir, 'v2.idx'), bytes.toString('latin1').replace('"version":1', '"version":7'), 'latin1');
    expect(() => loadIndex(path.join(dir, 'v2.idx'))).toThrow(/index format version 7, this sslkit reads version 1/);
    expect(() => loadIndex(model)).toThrow(/not an sslkit index/);
  });
});
