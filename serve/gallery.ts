/**
 * The browser gallery written by `sslkit index --gallery DIR`: what the web demo needs to search
 * and cluster client-side, as static files any host can serve:
 *   manifest.json   ids, labels, clusters, representative members, the model's preprocessing and
 *                   output handling, and a 2-D PCA basis for the map
 *   embeddings.f32  count × dim unit vectors (little-endian float32), the index's own vectors
 *   centroids.f32   k × dim cluster centroids
 *   thumbs-N.png    sprite sheets of thumbnails, 32 × 32 to a sheet, in item order
 * Written to a temporary folder and renamed into place, so a reader never sees half a gallery.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { ImageSet } from '../core/image-set.js';
import { pca } from '../core/pca.js';
import { dotAll } from '../core/vectors.js';
import type { OnnxEncoder } from '../core/runtime/onnx-encoder.js';
import type { IndexData } from './index-file.js';
import type { GalleryManifest } from '../core/gallery-format.js';

export const GALLERY_VERSION = 1;
const SHEET_COLS = 32;

export interface GalleryModel {
  file: string;
  encoder: Pick<OnnxEncoder, 'input' | 'output' | 'fixedBatch' | 'outputKind' | 'pooling' | 'preprocessing' | 'assumed' | 'dim'> & {
    info: { metadata: Record<string, string> };
  };
}

/** Writes the gallery of `index`, whose items are the images of `set` in order. */
export async function exportGallery(dir: string, index: IndexData, set: ImageSet, model: GalleryModel): Promise<GalleryManifest> {
  const { dim } = index;
  const n = index.items.length;
  if (set.n !== n) throw new Error(`gallery: ${n} index items but ${set.n} images`);
  const tmp = `${dir.replace(/\/+$/, '')}.${process.pid}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });

  const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  fs.writeFileSync(path.join(tmp, 'embeddings.f32'), bytes(index.vectors));
  fs.writeFileSync(path.join(tmp, 'centroids.f32'), bytes(index.clusters.centroids));

  // Representative members: the items closest to each centroid.
  const { k, centroids, assign } = index.clusters;
  const sizes = new Array<number>(k).fill(0);
  for (const a of assign) sizes[a]++;
  const members: number[][] = [];
  const scores = new Float32Array(n);
  for (let c = 0; c < k; c++) {
    dotAll(centroids, c * dim, index.vectors, dim, scores);
    const mine = [];
    for (let i = 0; i < n; i++) if (assign[i] === c) mine.push(i);
    mine.sort((a, b) => scores[b] - scores[a]);
    members.push(mine.slice(0, 8));
  }

  // Thumbnails: the dataset's own pixels, at most 48 px, 32 × 32 to a sheet.
  const size = Math.min(48, set.h, set.w);
  const ch = set.c === 1 ? 1 : 3;
  const perSheet = SHEET_COLS * SHEET_COLS;
  const sheets: string[] = [];
  for (let s = 0; s * perSheet < n; s++) {
    const count = Math.min(perSheet, n - s * perSheet);
    const rows = Math.ceil(count / SHEET_COLS);
    const sheet = Buffer.alloc(SHEET_COLS * size * rows * size * ch);
    for (let j = 0; j < count; j++) {
      const thumb = await thumbnail(set, s * perSheet + j, size, ch);
      const ox = (j % SHEET_COLS) * size;
      const oy = Math.floor(j / SHEET_COLS) * size;
      for (let y = 0; y < size; y++) thumb.copy(sheet, ((oy + y) * SHEET_COLS * size + ox) * ch, y * size * ch, (y + 1) * size * ch);
    }
    const name = `thumbs-${s}.png`;
    await sharp(sheet, { raw: { width: SHEET_COLS * size, height: rows * size, channels: ch as 1 | 3 } })
      .png({ compressionLevel: 9 })
      .toFile(path.join(tmp, name));
    sheets.push(name);
  }

  const p = pca(index.vectors, dim, 2);
  const e = model.encoder;
  const manifest: GalleryManifest = {
    format: 'sslkit-gallery',
    version: GALLERY_VERSION,
    count: n,
    dim,
    metric: 'cosine',
    data: index.data,
    model: {
      file: path.basename(model.file),
      bytes: fs.statSync(model.file).size,
      input: e.input,
      output: e.output,
      fixedBatch: e.fixedBatch,
      outputKind: e.outputKind,
      pooling: e.pooling,
      preprocessing: e.preprocessing,
      assumed: e.assumed,
      metadata: e.info.metadata,
    },
    ...(index.model.centre ? { centre: index.model.centre } : {}),
    classes: set.classes,
    ids: index.items.map((it) => it.id),
    labels: Array.from({ length: n }, (_, i) => (set.labels ? set.labels[i] : -1)),
    clusters: { k, assign: Array.from(assign), sizes, members, file: 'centroids.f32' },
    embeddings: 'embeddings.f32',
    thumbs: { size, cols: SHEET_COLS, perSheet, channels: ch, sheets },
    pca: {
      mean: Array.from(p.mean),
      components: [0, 1].map((c) => Array.from(p.components.subarray(c * dim, (c + 1) * dim))),
      variance: p.variance,
    },
  };
  fs.writeFileSync(path.join(tmp, 'manifest.json'), JSON.stringify(manifest));
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  return manifest;
}

/** One image of the set as size × size × ch bytes (HWC). */
async function thumbnail(set: ImageSet, i: number, size: number, ch: number): Promise<Buffer> {
  const hw = set.h * set.w;
  const src = set.pixels.subarray(i * set.c * hw, (i + 1) * set.c * hw);
  const hwc = Buffer.alloc(hw * ch);
  for (let q = 0; q < hw; q++) for (let k = 0; k < ch; k++) hwc[q * ch + k] = src[k * hw + q];
  if (set.h === size && set.w === size) return hwc;
  return sharp(hwc, { raw: { width: set.w, height: set.h, channels: ch as 1 | 3 } })
    .resize(size, size, { fit: 'cover' })
    .raw()
    .toBuffer();
}
