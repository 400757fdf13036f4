/**
 * What the service asks of an index, whichever engine holds it: the file store (file-store.ts,
 * the embedded default) or PostgreSQL with pgvector (postgres-store.ts, for replicas that share
 * one index). Every call is async so that both fit; the routes see only this interface.
 */
import type { IndexData, IndexItem } from './index-file.js';
import { ApiError } from './errors.js';

export { MAX_CLUSTERS } from './index-policy.js';

export interface Hit {
  id: string;
  /** Cosine similarity to the query. */
  score: number;
  item: IndexItem;
}

export interface ClusterSummary {
  k: number;
  clusters: { id: number; size: number; representatives: string[] }[];
}

export interface SearchOptions {
  /** HNSW candidate-list size for this search (pgvector's hnsw.ef_search); more is slower and nearer exact. */
  efSearch?: number;
}

export interface IndexEntry {
  item: IndexItem;
  vector: Float32Array;
  /** Names the entry's vector in errors. */
  field?: string;
}

export interface IndexStore {
  readonly kind: 'file' | 'postgres';
  /** Where the index lives, safe to log (a URL's password is masked). */
  readonly location: string;
  readonly dim: number;
  /** The model and preprocessing the vectors were made with. */
  readonly model: IndexData['model'];
  count(): Promise<number>;
  /** Clusters in the current clustering (0 before the first). */
  clusterCount(): Promise<number>;
  /** A 400 unless `vector` has the index's dimension, is finite in float32 and is not all zeros. */
  checkVector(vector: ArrayLike<number>, field?: string): void;
  nearest(query: Float32Array, k: number, o?: SearchOptions): Promise<Hit[]>;
  /** The nearest cluster centroid and its cosine similarity. */
  assign(query: Float32Array): Promise<{ cluster: number; score: number }>;
  /** Up to `n` ids of `cluster`'s items, nearest to the query first. */
  members(query: Float32Array, cluster: number, n: number): Promise<string[]>;
  clusterSummary(): Promise<ClusterSummary>;
  /** Adds or replaces items as one all-or-nothing write; durable when it resolves. */
  add(entries: IndexEntry[]): Promise<void>;
  /** Removes an item; a 404 when there is none with that id. */
  delete(id: string): Promise<void>;
  has(id: string): Promise<boolean>;
  /** k-means off the request thread; the new clustering is what every later request sees. */
  rebuildClusters(k?: number): Promise<{ k: number }>;
  /** True while the index answers (the file store always does). */
  reachable(): Promise<boolean>;
  /** Persists what is pending and lets go of files or connections. */
  close(): Promise<void>;
}

/** True for a PostgreSQL URL rather than a file path. */
export const isPostgresUrl = (location: string): boolean => /^postgres(ql)?:\/\//i.test(location);

/** A 400 naming `field` unless `vector` has `dim` values, all finite in float32 (1e39 is Infinity there), not all zero. */
export function checkVector(vector: ArrayLike<number>, dim: number, field = 'embedding'): void {
  if (vector.length !== dim)
    throw new ApiError(400, 'wrong_dimension', `${field} has ${vector.length} values, the index holds ${dim}`, field);
  let norm = 0;
  for (let i = 0; i < vector.length; i++) {
    const v = Math.fround(vector[i]);
    if (!Number.isFinite(v)) throw new ApiError(400, 'non_finite', `${field}[${i}] is ${vector[i]}, not a finite float32 value`, field);
    norm += v * v;
  }
  if (!(norm > 0)) throw new ApiError(400, 'zero_vector', `${field} is all zeros: it has no direction to compare`, field);
}

/** Bounds on one item's metadata: what a search returns for every hit near it. */
export interface MetadataLimits {
  /** Its JSON, in UTF-8 bytes (default 16 KiB). */
  maxBytes: number;
  /** Its keys (default 64). */
  maxKeys: number;
}
export const DEFAULT_METADATA_LIMITS: MetadataLimits = { maxBytes: 16 * 1024, maxKeys: 64 };

/** A lone UTF-16 surrogate: not text, and PostgreSQL (UTF-8) cannot store it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A 400 naming `field` unless `s` is text that every engine stores as given: no NUL, no lone surrogate. */
export function checkText(s: string, field: string): void {
  if (s.includes('\u0000'))
    throw new ApiError(400, 'invalid_text', `${field} holds a NUL character (U+0000), which an index cannot store`, field);
  if (LONE_SURROGATE.test(s))
    throw new ApiError(400, 'invalid_text', `${field} holds an unpaired UTF-16 surrogate: not valid Unicode text`, field);
}

/**
 * The one rule for an item both engines store: its id and metadata are text (checkText) and the
 * metadata stays within `limits` (413 for its size, 400 for its keys). `field` is the item's path
 * in the request (`items.3`).
 */
export function checkItem(item: IndexItem, field: string, limits: MetadataLimits = DEFAULT_METADATA_LIMITS): void {
  checkText(item.id, `${field}.id`);
  const entries = Object.entries(item).filter((e): e is [string, string] => e[0] !== 'id' && e[1] !== undefined);
  if (entries.length > limits.maxKeys)
    throw new ApiError(
      400,
      'too_many_metadata_keys',
      `${field}.metadata has ${entries.length} keys; at most ${limits.maxKeys}`,
      `${field}.metadata`,
    );
  for (const [k, v] of entries) {
    checkText(k, `${field}.metadata`);
    checkText(v, `${field}.metadata.${k}`);
  }
  const bytes = Buffer.byteLength(JSON.stringify(Object.fromEntries(entries)));
  if (bytes > limits.maxBytes)
    throw new ApiError(
      413,
      'metadata_too_large',
      `${field}.metadata is ${bytes} bytes as JSON; at most ${limits.maxBytes} (--max-metadata-bytes)`,
      `${field}.metadata`,
    );
}
