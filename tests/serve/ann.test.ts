/** HNSW (usearch) against exact search: recall@10 on clustered data, and live adds and deletes. */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../core/random.js';
import { normalizeRows } from '../../core/vectors.js';
import { saveIndex } from '../../serve/index-file.js';
import { FileIndex } from '../../serve/file-store.js';
import { ExactSearch } from '../../serve/exact-search.js';
import { tmpDir } from '../helpers.js';

function clustered(n: number, d: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const centres = Array.from({ length: 50 }, () => Float32Array.from({ length: d }, () => rng.normal()));
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const c = centres[rng.int(50)];
    for (let t = 0; t < d; t++) x[i * d + t] = c[t] + 0.6 * rng.normal();
  }
  return normalizeRows(x, d);
}

describe('approximate search (HNSW)', () => {
  it('recall@10 against exact search is at least 0.95 on 20,000 clustered 64-d vectors; writes stay searchable', () => {
    const n = 20_000;
    const d = 64;
    const vectors = clustered(n, d, 3);
    const file = path.join(tmpDir(), 'big.idx');
    saveIndex(file, {
      dim: d,
      metric: 'cosine',
      model: { file: 'synthetic', bytes: 0, embeddingDim: d, metadata: {} },
      items: Array.from({ length: n }, (_, i) => ({ id: `v${i}` })),
      vectors,
      clusters: { k: 1, centroids: normalizeRows(Float32Array.from(vectors.subarray(0, d)), d), assign: new Int32Array(n) },
    });
    const store = FileIndex.open(file, { annThreshold: 1000 });
    expect(store.approximate).toBe(true);
    const exact = new ExactSearch(store.view());
    const rng = new Rng(9);
    let hits = 0;
    const queries = 200;
    for (let qi = 0; qi < queries; qi++) {
      const base = rng.int(n);
      const query = Float32Array.from(vectors.subarray(base * d, (base + 1) * d), (v) => v + 0.05 * rng.normal());
      const want = new Set(exact.search(query, 10).map((r) => r.id));
      hits += store.nearest(query, 10).filter((r) => want.has(r.id)).length;
    }
    const recall = hits / (10 * queries);
    console.log(`HNSW recall@10 = ${recall.toFixed(4)} (20k × 64, 200 queries)`);
    expect(recall).toBeGreaterThanOrEqual(0.95);
    // Live writes: an added vector is found first, a deleted one is gone.
    const fresh = normalizeRows(
      Float32Array.from({ length: d }, (_, t) => Math.sin(t * 7)),
      d,
    );
    store.add([{ item: { id: 'fresh' }, vector: fresh }]);
    expect(store.nearest(fresh, 1)[0]).toMatchObject({ id: 'fresh' });
    store.delete('fresh');
    expect(store.nearest(fresh, 5).map((r) => r.id)).not.toContain('fresh');
    store.delete('v5');
    // A snapshot saves the graph; reopening reuses it (no rebuild) and answers the same.
    const probe = Float32Array.from(vectors.subarray(11 * d, 12 * d));
    const before = store.nearest(probe, 10).map((r) => r.id);
    store.snapshot();
    store.close();
    const again = FileIndex.open(file, { annThreshold: 1000 });
    expect(again.annLoaded).toBe(true);
    expect(again.count).toBe(n - 1);
    expect(again.nearest(probe, 10).map((r) => r.id)).toEqual(before);
    again.close();
  });
});
