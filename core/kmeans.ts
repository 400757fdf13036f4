/**
 * Spherical k-means on L2-normalised rows (cosine similarity), k-means++ seeding, Lloyd
 * iterations until assignments stop changing. Shared by indexing (gallery clusters), evaluation
 * (clustering NMI) and the clustering methods.
 */
import { Rng } from './random.js';
import { normalizeRows } from './vectors.js';
import { siblingModule, startWorker } from './worker.js';

export interface KMeansResult {
  /** [k, d] unit-norm centroids. */
  centroids: Float32Array;
  /** Cluster of each row. */
  assign: Int32Array;
  /** Rows per cluster. */
  sizes: Int32Array;
  iterations: number;
}

export function kmeans(x: Float32Array, d: number, k: number, o: { iters?: number; seed?: number } = {}): KMeansResult {
  const n = x.length / d;
  if (!(k >= 1 && k <= n)) throw new RangeError(`kmeans: k must be in 1..${n} (the number of rows), got ${k}`);
  const rng = new Rng(o.seed ?? 0);
  const centroids = new Float32Array(k * d);
  // k-means++: each next seed drawn with probability ∝ its distance² (2 − 2cos) to the nearest seed.
  const dist = new Float64Array(n).fill(Infinity);
  let pick = rng.int(n);
  for (let c = 0; c < k; c++) {
    centroids.set(x.subarray(pick * d, (pick + 1) * d), c * d);
    let total = 0;
    for (let i = 0; i < n; i++) {
      let dot = 0;
      for (let t = 0; t < d; t++) dot += x[i * d + t] * centroids[c * d + t];
      dist[i] = Math.min(dist[i], Math.max(0, 2 - 2 * dot));
      total += dist[i];
    }
    if (total === 0) pick = rng.int(n);
    else {
      let r = rng.next() * total;
      pick = 0;
      while (pick < n - 1 && (r -= dist[pick]) > 0) pick++;
    }
  }
  const assign = new Int32Array(n).fill(-1);
  const sizes = new Int32Array(k);
  let it = 0;
  for (; it < (o.iters ?? 50); it++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      let best = 0;
      let bestDot = -Infinity;
      for (let c = 0; c < k; c++) {
        let dot = 0;
        for (let t = 0; t < d; t++) dot += x[i * d + t] * centroids[c * d + t];
        if (dot > bestDot) [bestDot, best] = [dot, c];
      }
      if (assign[i] !== best) changed++;
      assign[i] = best;
    }
    centroids.fill(0);
    sizes.fill(0);
    for (let i = 0; i < n; i++) {
      sizes[assign[i]]++;
      for (let t = 0; t < d; t++) centroids[assign[i] * d + t] += x[i * d + t];
    }
    // An emptied cluster restarts at a random row.
    for (let c = 0; c < k; c++)
      if (sizes[c] === 0) {
        const r = rng.int(n);
        centroids.set(x.subarray(r * d, r * d + d), c * d);
      }
    normalizeRows(centroids, d);
    if (changed === 0) break;
  }
  return { centroids, assign, sizes, iterations: it + 1 };
}

/** kmeans() in a worker thread, so that a service's event loop goes on answering while it runs. */
export function kmeansInWorker(x: Float32Array, d: number, k: number, o: { iters?: number; seed?: number } = {}): Promise<KMeansResult> {
  const w = startWorker(siblingModule(import.meta.url, 'kmeans-worker'), { x, d, k, options: o });
  return new Promise<KMeansResult>((resolve, reject) => {
    w.once('message', (m: { result?: KMeansResult; error?: string }) => (m.result ? resolve(m.result) : reject(new Error(m.error))));
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`k-means worker exited with code ${code}`)));
  });
}
