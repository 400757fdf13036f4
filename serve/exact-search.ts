/**
 * Exact nearest neighbours by cosine similarity over an index's unit vectors, with a top-k heap,
 * and nearest-centroid cluster assignment.
 */
import { dotAll, normalizeRows, topK } from '../core/vectors.js';
import type { IndexData } from './index-file.js';

export interface Neighbour {
  id: string;
  /** Row in the index's arrays. */
  row: number;
  score: number;
  item: IndexData['items'][number];
}

export class ExactSearch {
  private readonly scores: Float32Array;

  constructor(readonly index: IndexData) {
    this.scores = new Float32Array(index.items.length);
  }

  private unit(q: Float32Array): Float32Array {
    if (q.length !== this.index.dim) throw new RangeError(`embedding has ${q.length} values, the index holds ${this.index.dim}-d vectors`);
    return normalizeRows(Float32Array.from(q), this.index.dim);
  }

  search(query: Float32Array, k: number): Neighbour[] {
    const q = this.unit(query);
    dotAll(q, 0, this.index.vectors, this.index.dim, this.scores);
    const nn = topK(this.scores, k);
    return Array.from(nn.index, (i, j) => ({ id: this.index.items[i].id, row: i, score: nn.score[j], item: this.index.items[i] }));
  }

  /** The nearest cluster centroid and its cosine similarity. */
  assign(query: Float32Array): { cluster: number; score: number } {
    const q = this.unit(query);
    const { k, centroids } = this.index.clusters;
    const s = dotAll(q, 0, centroids, this.index.dim, new Float32Array(k));
    let best = 0;
    for (let c = 1; c < k; c++) if (s[c] > s[best]) best = c;
    return { cluster: best, score: s[best] };
  }
}
