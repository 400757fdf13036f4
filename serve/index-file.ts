/**
 * The on-disk index: vectors (L2-normalised float32), ids and per-item metadata, and k-means
 * clusters of the gallery, in one versioned file written atomically:
 *   "SSLINDEX\n" + a JSON header line + vectors [count, dim] + centroids [k, dim] + assignments [count]
 */
import type { Preprocessing } from '../core/runtime/onnx-encoder.js';
import fs from 'node:fs';
import { UserError } from '../core/errors.js';
import { writeFileAtomic } from '../core/fs.js';

const MAGIC = 'SSLINDEX\n';
export const INDEX_VERSION = 1;

export interface IndexItem {
  id: string;
  /** Metadata given with the item (strings). */
  [key: string]: string | undefined;
  /** Dataset index or file path the vector came from. */
  source?: string;
  label?: string;
}

export interface IndexData {
  dim: number;
  metric: 'cosine';
  model: {
    file: string;
    bytes: number;
    /** SHA-256 of the model file (absent in indexes from before it was kept). */
    sha256?: string;
    embeddingDim: number;
    metadata: Record<string, string>;
    /** The preprocessing the vectors were made with (absent in indexes from before it was kept). */
    preprocessing?: Preprocessing;
    /**
     * `sslkit index --centre`: the mean of the indexed images' unit embeddings. Every vector the
     * index holds or is searched with is the model's unit embedding minus this, normalised again
     * (the service and the page do it to each image they embed).
     */
    centre?: number[];
  };
  data?: string;
  /** The last write-ahead-log record this snapshot holds (0 for none). */
  lsn?: number;
  items: IndexItem[];
  vectors: Float32Array;
  clusters: { k: number; centroids: Float32Array; assign: Int32Array };
}

export function saveIndex(file: string, x: IndexData): void {
  const header = {
    format: 'sslkit-index',
    version: INDEX_VERSION,
    dim: x.dim,
    metric: x.metric,
    count: x.items.length,
    model: x.model,
    data: x.data,
    lsn: x.lsn ?? 0,
    k: x.clusters.k,
    items: x.items,
  };
  const bytes = (a: Float32Array | Int32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  writeFileAtomic(file, [MAGIC, `${JSON.stringify(header)}\n`, bytes(x.vectors), bytes(x.clusters.centroids), bytes(x.clusters.assign)]);
}

export function loadIndex(file: string): IndexData {
  if (!fs.existsSync(file)) throw new UserError(`${file}: no such index`);
  const buf = fs.readFileSync(file);
  if (buf.subarray(0, MAGIC.length).toString() !== MAGIC) throw new UserError(`${file}: not an sslkit index (bad magic)`);
  const nl = buf.indexOf(10, MAGIC.length);
  let h: {
    version: number;
    dim: number;
    metric: 'cosine';
    count: number;
    k: number;
    model: IndexData['model'];
    data?: string;
    lsn?: number;
    items: IndexItem[];
  };
  try {
    h = JSON.parse(buf.subarray(MAGIC.length, nl).toString());
  } catch (e) {
    throw new UserError(`${file}: index header is not valid JSON (truncated?)`, { cause: e });
  }
  if (h.version !== INDEX_VERSION)
    throw new UserError(`${file}: index format version ${h.version}, this sslkit reads version ${INDEX_VERSION}`);
  const start = nl + 1;
  const nv = h.count * h.dim;
  const nc = h.k * h.dim;
  const expected = start + 4 * (nv + nc + h.count);
  if (buf.length !== expected)
    throw new UserError(`${file}: index is ${buf.length} bytes, its header says ${expected} (truncated or damaged)`);
  const f32 = (off: number, n: number) => {
    const a = new Float32Array(n);
    new Uint8Array(a.buffer).set(buf.subarray(off, off + 4 * n));
    return a;
  };
  const assign = new Int32Array(h.count);
  new Uint8Array(assign.buffer).set(buf.subarray(start + 4 * (nv + nc), expected));
  return {
    dim: h.dim,
    metric: h.metric,
    model: h.model,
    data: h.data,
    lsn: h.lsn ?? 0,
    items: h.items,
    vectors: f32(start, nv),
    clusters: { k: h.k, centroids: f32(start + 4 * nv, nc), assign },
  };
}
