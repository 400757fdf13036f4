/**
 * Approximate nearest neighbours (HNSW, through usearch) for large indexes: cosine metric,
 * integer keys. The store switches to it above a size threshold; below that, exact search is
 * both exact and fast enough.
 */
import { Index, MetricKind } from 'usearch';

export class AnnIndex {
  private readonly index: Index;

  constructor(
    readonly dim: number,
    o: { connectivity?: number; expansionSearch?: number } = {},
  ) {
    this.index = new Index(dim, MetricKind.Cos, undefined, o.connectivity ?? 16, 128, o.expansionSearch ?? 64);
  }

  get size(): number {
    return Number(this.index.size());
  }

  add(keys: BigUint64Array, vectors: Float32Array): void {
    if (keys.length) this.index.add(keys, vectors);
  }

  remove(key: bigint): void {
    this.index.remove(key);
  }

  save(file: string): void {
    this.index.save(file);
  }

  load(file: string): void {
    this.index.load(file);
  }

  /** Keys and cosine similarities of the k nearest, best first. */
  search(q: Float32Array, k: number): { keys: BigUint64Array; scores: Float32Array } {
    const r = this.index.search(q, Math.min(k, this.size), 0);
    return { keys: r.keys as BigUint64Array, scores: Float32Array.from(r.distances as Float32Array, (d) => 1 - d) };
  }
}
