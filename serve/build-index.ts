/**
 * `sslkit index MODEL --data D --out INDEX|postgres://…`: embeds a dataset or image folder with
 * any ONNX encoder, stores unit vectors with ids and metadata (an index file, or a PostgreSQL
 * table that several `--shard` jobs may fill), and clusters the gallery with k-means (K by
 * option; default the class count, else √N); optionally writes the browser gallery too.
 */
import fs from 'node:fs';
import { loadDataset, type Split } from '../data/datasets.js';
import { sampleIndices, subset, type ImageSet } from '../core/image-set.js';
import { kmeans } from '../core/kmeans.js';
import { centreRows, meanRow, normalizeRows } from '../core/vectors.js';
import { OnnxEncoder, type OnnxEncoderOptions } from '../core/runtime/onnx-encoder.js';
import { backgroundOf, type Preprocessing } from '../core/gallery-format.js';
import { preprocessImages } from '../core/preprocess.js';
import { saveIndex, type IndexData, type IndexItem } from './index-file.js';
import { exportGallery } from './gallery.js';
import { ExactSearch } from './exact-search.js';
import { FileIndex } from './file-store.js';
import { lockIndex } from './index-lock.js';
import { clusterCount, DEFAULT_ANN_THRESHOLD } from './index-policy.js';
import { PostgresStore } from './postgres-store.js';
import { modelIdentity, checkIdentity } from './identity.js';
import { UserError } from '../core/errors.js';

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
  /** This job's share of the images (PostgreSQL index): shard `index` of `of`, from 0. */
  shard?: { index: number; of: number };
  /** Centre the vectors on the indexed images' mean embedding (IndexData['model'].centre). */
  centre?: boolean;
  onProgress?: (done: number, total: number) => void;
}

/** The data set's images to index (all, or a `--limit` sample), their ids, and `shard`'s share of them. */
async function selectImages(o: BuildIndexOptions, p: Preprocessing) {
  // A plain folder (no train/ and test/) is indexed whole: nothing is held out of a gallery.
  // Transparent images are composited on the model's background, as the service does with queries.
  // A folder decodes straight to a cover-cropping model's input size: photos never load at full size.
  const atModelSize = o.data.startsWith('folder:') && p.resize === 'cover-center-crop' && p.height === p.width;
  const all = await loadDataset(o.data, o.split ?? 'test', {
    dataDir: o.dataDir,
    testFraction: 0,
    log: o.log,
    background: backgroundOf(p),
    ...(atModelSize ? { size: p.height, channels: p.channels as 1 | 3 } : {}),
  });
  // --limit: a seeded, class-stratified sample; items keep their data set position as id.
  let positions = o.limit && o.limit < all.n ? sampleIndices(all.labels, all.n, o.limit) : Int32Array.from({ length: all.n }, (_, i) => i);
  // A shard takes every N-th image of the selection: N jobs split it whatever its order.
  if (o.shard) positions = positions.filter((_, j) => j % o.shard!.of === o.shard!.index);
  const set = positions.length === all.n ? all : subset(all, positions);
  const items: IndexItem[] = Array.from({ length: set.n }, (_, i) => ({
    id: String(positions[i]),
    source: set.sources?.[i] ?? `${o.data}:${o.split ?? 'test'}:${positions[i]}`,
    ...(set.labels && set.labels[i] >= 0 ? { label: set.classes[set.labels[i]] } : {}),
  }));
  return { set, items, classes: all.classes.length };
}

/** Unit-norm embeddings of every image of `set`, in batches. */
async function embedAll(enc: OnnxEncoder, set: ImageSet, o: BuildIndexOptions) {
  const dim = enc.dim;
  const vectors = new Float32Array(set.n * dim);
  const batch = o.batch ?? 256;
  for (let s = 0; s < set.n; s += batch) {
    const idx = Int32Array.from({ length: Math.min(batch, set.n - s) }, (_, i) => s + i);
    const v = normalizeRows(await enc.embed(preprocessImages(set, idx, enc.preprocessing), idx.length), dim);
    vectors.set(v, s * dim);
    o.onProgress?.(s + idx.length, set.n);
  }
  return vectors;
}

const defaultClusters = (o: BuildIndexOptions, classes: number, n: number) => clusterCount(n, { requested: o.clusters, classes });

export async function buildIndex(modelFile: string, out: string, o: BuildIndexOptions): Promise<IndexData> {
  if (o.shard) throw new UserError('--shard fills a PostgreSQL index (--out postgres://…); an index file is written by one job');
  // Refused at once while a service writes this file, not after the embedding.
  const lock = lockIndex(out, o.log);
  try {
    return await buildIndexFile(modelFile, out, o);
  } finally {
    lock.release();
  }
}

async function buildIndexFile(modelFile: string, out: string, o: BuildIndexOptions): Promise<IndexData> {
  const enc = await OnnxEncoder.load(modelFile, o);
  const { set, items, classes } = await selectImages(o, enc.preprocessing);
  let vectors: Float32Array;
  try {
    vectors = await embedAll(enc, set, o);
  } finally {
    await enc.release();
  }
  const dim = enc.dim;
  const model = modelIdentity(modelFile, enc);
  if (o.centre) {
    const mean = meanRow(vectors, dim);
    centreRows(vectors, dim, mean);
    model.centre = Array.from(mean);
  }
  const k = defaultClusters(o, classes, set.n);
  const km = kmeans(vectors, dim, k, { seed: 0 });
  const index: IndexData = {
    dim,
    metric: 'cosine',
    model,
    data: o.data,
    items,
    vectors,
    clusters: { k, centroids: km.centroids, assign: km.assign },
  };
  saveIndex(out, index);
  // What a service of the index this file replaces left beside it belongs to that index.
  for (const old of [`${out}.wal`, `${out}.hnsw`, `${out}.hnsw.json`]) fs.rmSync(old, { force: true });
  if (index.items.length >= (o.annThreshold ?? DEFAULT_ANN_THRESHOLD)) {
    // Opening builds the graph; the snapshot saves it with the index, so `sslkit serve` loads it instead.
    const store = FileIndex.open(out, { annThreshold: o.annThreshold });
    store.snapshot();
    store.close();
  }
  if (o.gallery) await exportGallery(o.gallery, index, set, { file: modelFile, encoder: enc });
  return index;
}

export interface PostgresIndexSummary {
  location: string;
  dim: number;
  /** Items this job wrote (its shard's share). */
  written: number;
  /** Items in the table when it finished. */
  total: number;
  /** The clustering, when this job made it (the only or the last shard to finish). */
  clusters: { k: number } | null;
}

/**
 * `sslkit index … --out postgres://…[?table=NAME] [--shard I/N]`: upserts this job's share of the
 * images by id, a transaction per batch, so a re-run (or a crashed job run again) is idempotent;
 * the last of the N jobs to finish clusters the whole table.
 */
export async function buildPostgresIndex(modelFile: string, url: string, o: BuildIndexOptions): Promise<PostgresIndexSummary> {
  if (o.gallery && o.shard) throw new UserError('--gallery needs every image in one job: run it without --shard');
  const enc = await OnnxEncoder.load(modelFile, o);
  const { set, items, classes } = await selectImages(o, enc.preprocessing);
  let store: PostgresStore | null = null;
  try {
    // Hashed once: the identity a new table is made with is the one an existing table is checked against.
    const identity = modelIdentity(modelFile, enc);
    const dim = enc.dim;
    // A centred table's centre comes from the job that creates it (its share is sample enough);
    // later jobs centre on the table's, so every row is in one space.
    const vectors = await embedAll(enc, set, o);
    if (o.centre) identity.centre = Array.from(meanRow(vectors, dim));
    store = await PostgresStore.open(url, { create: { dim, model: identity }, annThreshold: o.annThreshold, log: o.log });
    checkIdentity(store.location, store.dim, store.model, identity);
    if (o.centre && !store.model.centre)
      throw new UserError(`${store.location} was made without --centre: its vectors are not centred; index into a new table`);
    if (store.model.centre) {
      if (!o.centre) o.log?.(`${store.location} is centred (made with --centre): this job's vectors are centred on its mean too`);
      centreRows(vectors, dim, store.model.centre);
    }
    const batch = o.batch ?? 256;
    for (let from = 0; from < set.n; from += batch) {
      const n = Math.min(batch, set.n - from);
      await store.add(
        Array.from({ length: n }, (_, i) => ({ item: items[from + i], vector: vectors.subarray((from + i) * dim, (from + i + 1) * dim) })),
      );
    }
    const shard = o.shard ?? { index: 0, of: 1 };
    let clusters: PostgresIndexSummary['clusters'] = null;
    if (await store.finishShard(shard.index, shard.of, set.n)) {
      const n = await store.count();
      clusters = await store.rebuildClusters(defaultClusters(o, classes, n));
      // Large enough for approximate search: the HNSW index is built now, over the loaded rows.
      if (n >= (o.annThreshold ?? DEFAULT_ANN_THRESHOLD)) await store.buildAnnIndex();
    }
    if (o.gallery) {
      // The page shows the table's clusters: each image goes to its nearest centroid of the table.
      const centroids = await store.centroids();
      const index: IndexData = {
        dim,
        metric: 'cosine',
        model: store.model,
        data: o.data,
        items,
        vectors,
        clusters: { k: centroids.k, centroids: centroids.centroids, assign: new Int32Array(set.n) },
      };
      const search = new ExactSearch(index);
      for (let i = 0; i < set.n; i++) index.clusters.assign[i] = search.assign(vectors.subarray(i * dim, (i + 1) * dim)).cluster;
      await exportGallery(o.gallery, index, set, { file: modelFile, encoder: enc });
    }
    return { location: store.location, dim, written: set.n, total: await store.count(), clusters };
  } finally {
    await store?.close();
    await enc.release();
  }
}
