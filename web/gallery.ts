/**
 * The gallery in the browser: manifest, unit embeddings, centroids, a PCA map, and exact cosine
 * top-k by a linear scan (10k × 128 takes about a millisecond; no index is needed at this size).
 */
import { centredUnit, normalizeRows, type GalleryManifest, type Progress } from './types.js';
import { fetchBytes } from './fetch.js';

export interface Neighbour {
  index: number;
  id: string;
  score: number;
  label: string | null;
}

function floats(bytes: Uint8Array): Float32Array {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
}

export class Gallery {
  /** n × 2 PCA coordinates of the gallery. */
  readonly coords: Float32Array;

  private constructor(
    readonly base: string,
    readonly manifest: GalleryManifest,
    readonly vectors: Float32Array,
    readonly centroids: Float32Array,
  ) {
    this.coords = new Float32Array(manifest.count * 2);
    for (let i = 0; i < manifest.count; i++)
      this.coords.set(this.project(vectors.subarray(i * manifest.dim, (i + 1) * manifest.dim)), 2 * i);
  }

  static async load(base: string, onProgress?: Progress): Promise<Gallery> {
    const text = new TextDecoder().decode(await fetchBytes(new URL('manifest.json', base).href, 'gallery'));
    let m: GalleryManifest;
    try {
      m = JSON.parse(text);
    } catch {
      throw new Error(`gallery: ${base}manifest.json is not JSON`);
    }
    if (m.format !== 'sslkit-gallery') throw new Error(`gallery: ${base}manifest.json is not an sslkit gallery (format ${m.format})`);
    if (m.version !== 1) throw new Error(`gallery: format version ${m.version}, this page reads version 1`);
    const vectors = floats(await fetchBytes(new URL(m.embeddings, base).href, 'gallery embeddings', onProgress));
    if (vectors.length !== m.count * m.dim)
      throw new Error(
        `gallery: embeddings hold ${vectors.length} floats, the manifest says ${m.count} × ${m.dim} (damaged or mismatched files)`,
      );
    const centroids = floats(await fetchBytes(new URL(m.clusters.file, base).href, 'gallery centroids'));
    if (centroids.length !== m.clusters.k * m.dim)
      throw new Error(`gallery: centroids hold ${centroids.length} floats, expected ${m.clusters.k} × ${m.dim}`);
    return new Gallery(base, m, vectors, centroids);
  }

  label(i: number): string | null {
    const c = this.manifest.labels[i];
    return c >= 0 ? this.manifest.classes[c] : null;
  }

  /** A model's embedding as a query of this gallery: unit length, centred when the gallery is (queryVector). */
  query(embedding: Float32Array): Float32Array {
    return queryVector(embedding, this.manifest.centre);
  }

  /** Exact top-k by cosine similarity; q must be unit length. */
  search(q: Float32Array, k: number): Neighbour[] {
    const { count, dim } = this.manifest;
    k = Math.min(k, count);
    const best: { i: number; s: number }[] = [];
    const v = this.vectors;
    for (let i = 0; i < count; i++) {
      let s = 0;
      const o = i * dim;
      for (let d = 0; d < dim; d++) s += q[d] * v[o + d];
      if (best.length < k) best.push({ i, s });
      else if (s > best[k - 1].s) best[k - 1] = { i, s };
      else continue;
      // Insertion into the sorted list; equal scores keep the lower index first.
      for (let j = best.length - 1; j > 0 && best[j - 1].s < best[j].s; j--) [best[j - 1], best[j]] = [best[j], best[j - 1]];
    }
    return best.map(({ i, s }) => ({ index: i, id: this.manifest.ids[i], score: s, label: this.label(i) }));
  }

  /** The nearest centroid (cosine). */
  assign(q: Float32Array): { cluster: number; score: number } {
    const { dim } = this.manifest;
    let best = { cluster: -1, score: -Infinity };
    for (let c = 0; c < this.manifest.clusters.k; c++) {
      let s = 0;
      for (let d = 0; d < dim; d++) s += q[d] * this.centroids[c * dim + d];
      if (s > best.score) best = { cluster: c, score: s };
    }
    return best;
  }

  project(v: Float32Array): [number, number] {
    const { mean, components } = this.manifest.pca;
    let x = 0;
    let y = 0;
    for (let d = 0; d < mean.length; d++) {
      x += (v[d] - mean[d]) * components[0][d];
      y += (v[d] - mean[d]) * components[1][d];
    }
    return [x, y];
  }

  /** Sprite-sheet position of item i's thumbnail. */
  thumb(i: number): { url: string; x: number; y: number; size: number } {
    const t = this.manifest.thumbs;
    const sheet = Math.floor(i / t.perSheet);
    const j = i % t.perSheet;
    return { url: new URL(t.sheets[sheet], this.base).href, x: (j % t.cols) * t.size, y: Math.floor(j / t.cols) * t.size, size: t.size };
  }
}

/**
 * A query's vector in the gallery's space: the unit embedding, and for a centred gallery (sslkit
 * index --centre) that minus the gallery's centre, normalised again, as the service does.
 */
export function queryVector(raw: Float32Array, centre: number[] | undefined): Float32Array {
  return centre ? centredUnit(raw, centre) : normalizeRows(Float32Array.from(raw), raw.length);
}
