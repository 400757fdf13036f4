/**
 * `sslkit index MODEL --data D --out INDEX`: embeds a dataset or image folder with any ONNX
 * encoder, stores unit vectors with ids and metadata, and clusters the gallery with k-means
 * (K by option; default the class count, else √N); optionally writes the browser gallery too.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadDataset, type Split } from '../data/datasets.js';
import { sampleIndices, subset } from '../core/image-set.js';
import { kmeans } from '../core/kmeans.js';
import { normalizeRows } from '../core/vectors.js';
import { OnnxEncoder, type OnnxEncoderOptions } from '../core/runtime/onnx-encoder.js';
import { preprocessImages } from '../core/preprocess.js';
import { saveIndex, type IndexData } from './index-file.js';
import { exportGallery } from './gallery.js';
import { IndexStore } from './store.js';

export interface BuildIndexOptions extends OnnxEncoderOptions {
  data: string;
  split?: Split;
  dataDir?: string;
  limit?: number;
  clusters?: number;
  batch?: number;
  /** Also write the browser gallery (web demo) to this folder. */
  gallery?: string;
  /** From this many items the HNSW graph is built now and saved beside the index (serve reopens it in a second). */
  annThreshold?: number;
  onProgress?: (done: number, total: number) => void;
}

export async function buildIndex(modelFile: string, out: string, o: BuildIndexOptions): Promise<IndexData> {
  // A plain folder (no train/ and test/) is indexed whole: nothing is held out of a gallery.
  const all = await loadDataset(o.data, o.split ?? 'test', { dataDir: o.dataDir, testFraction: 0, log: o.log });
  // --limit: a seeded, class-stratified sample; items keep their data set position as id.
  const positions =
    o.limit && o.limit < all.n ? sampleIndices(all.labels, all.n, o.limit) : Int32Array.from({ length: all.n }, (_, i) => i);
  const set = positions.length === all.n ? all : subset(all, positions);
  const enc = await OnnxEncoder.load(modelFile, o);
  const dim = enc.dim;
  const vectors = new Float32Array(set.n * dim);
  const batch = o.batch ?? 256;
  try {
    for (let s = 0; s < set.n; s += batch) {
      const idx = Int32Array.from({ length: Math.min(batch, set.n - s) }, (_, i) => s + i);
      vectors.set(await enc.embed(preprocessImages(set, idx, enc.preprocessing), idx.length), s * dim);
      o.onProgress?.(s + idx.length, set.n);
    }
  } finally {
    await enc.release();
  }
  normalizeRows(vectors, dim);
  const k = Math.min(set.n, o.clusters ?? (set.classes.length || Math.max(1, Math.round(Math.sqrt(set.n)))));
  const km = kmeans(vectors, dim, k, { seed: 0 });
  const items = Array.from({ length: set.n }, (_, i) => ({
    id: String(positions[i]),
    source: set.sources?.[i] ?? `${o.data}:${o.split ?? 'test'}:${positions[i]}`,
    ...(set.labels && set.labels[i] >= 0 ? { label: set.classes[set.labels[i]] } : {}),
  }));
  const index: IndexData = {
    dim,
    metric: 'cosine',
    model: {
      file: path.resolve(modelFile),
      bytes: fs.statSync(modelFile).size,
      embeddingDim: dim,
      metadata: enc.info.metadata,
      preprocessing: enc.preprocessing,
    },
    data: o.data,
    items,
    vectors,
    clusters: { k, centroids: km.centroids, assign: km.assign },
  };
  saveIndex(out, index);
  if (index.items.length >= (o.annThreshold ?? 20_000)) {
    // Opening builds the graph; the snapshot saves it with the index, so `sslkit serve` loads it instead.
    const store = IndexStore.open(out, { annThreshold: o.annThreshold });
    store.snapshot();
    store.close();
  }
  if (o.gallery) await exportGallery(o.gallery, index, set, { file: modelFile, encoder: enc });
  return index;
}
