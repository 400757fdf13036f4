/**
 * The first principal components of a set of row vectors by power iteration with deflation:
 * each iteration is X^T (X v), so the cost is O(n·dim) per step and no dim×dim covariance is
 * ever formed (fine for 100k × 2048). Used for the gallery map and `sslkit eval`'s picture.
 */
import { Rng } from './random.js';

export interface Pca {
  dim: number;
  mean: Float32Array;
  /** components × dim, unit rows, by decreasing variance. */
  components: Float32Array;
  /** Variance along each component. */
  variance: number[];
}

export function pca(x: Float32Array, dim: number, components = 2, iterations = 100, seed = 0): Pca {
  const n = x.length / dim;
  const mean = new Float32Array(dim);
  for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) mean[d] += x[i * dim + d] / n;
  const comps = new Float32Array(components * dim);
  const variance: number[] = [];
  const rng = new Rng(seed);
  const proj = new Float64Array(n);
  for (let c = 0; c < components; c++) {
    let v = Float64Array.from({ length: dim }, () => rng.normal());
    let lambda = 0;
    for (let it = 0; it < iterations; it++) {
      // Remove the components already found so the iteration converges to the next one.
      for (let p = 0; p < c; p++) {
        let dot = 0;
        for (let d = 0; d < dim; d++) dot += v[d] * comps[p * dim + d];
        for (let d = 0; d < dim; d++) v[d] -= dot * comps[p * dim + d];
      }
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let d = 0; d < dim; d++) s += (x[i * dim + d] - mean[d]) * v[d];
        proj[i] = s;
      }
      const w = new Float64Array(dim);
      for (let i = 0; i < n; i++) {
        const s = proj[i];
        if (s === 0) continue;
        for (let d = 0; d < dim; d++) w[d] += (x[i * dim + d] - mean[d]) * s;
      }
      let norm = 0;
      for (let d = 0; d < dim; d++) norm += w[d] * w[d];
      norm = Math.sqrt(norm);
      if (norm === 0) break;
      const next = w.map((a) => a / norm);
      let change = 0;
      for (let d = 0; d < dim; d++) change += Math.abs(next[d] - v[d]);
      v = next;
      lambda = norm / Math.max(1, n - 1);
      if (change < 1e-7 * dim) break;
    }
    for (let p = 0; p < c; p++) {
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += v[d] * comps[p * dim + d];
      for (let d = 0; d < dim; d++) v[d] -= dot * comps[p * dim + d];
    }
    // A fixed sign (largest entry positive) so the map does not flip between runs.
    let big = 0;
    for (let d = 0; d < dim; d++) if (Math.abs(v[d]) > Math.abs(v[big])) big = d;
    const sign = v[big] < 0 ? -1 : 1;
    for (let d = 0; d < dim; d++) comps[c * dim + d] = sign * v[d];
    variance.push(lambda);
  }
  return { dim, mean, components: comps, variance };
}

/** Rows of x projected onto the components: n × components. */
export function project(p: Pca, x: Float32Array): Float32Array {
  const n = x.length / p.dim;
  const k = p.components.length / p.dim;
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let d = 0; d < p.dim; d++) s += (x[i * p.dim + d] - p.mean[d]) * p.components[c * p.dim + d];
      out[i * k + c] = s;
    }
  return out;
}
