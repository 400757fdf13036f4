/**
 * The index's rules, whichever engine holds it (the file store, PostgreSQL) and whoever builds it
 * (`sslkit index`, the service): when search turns approximate, how many clusters a clustering
 * gets, and the errors both engines answer with.
 */
import { ApiError } from './errors.js';

/** Item count from which searches go through HNSW (approximate), unless --ann-threshold says otherwise. */
export const DEFAULT_ANN_THRESHOLD = 20_000;

/** pgvector's hnsw.ef_search when a search request gives none (pgvector's own default). */
export const DEFAULT_EF_SEARCH = 40;

/** The most clusters a rebuild may ask for: k-means costs items × k × dim per iteration. */
export const MAX_CLUSTERS = 1024;

/**
 * Clusters for n items: the number asked for, else the current clustering's, else the data set's
 * class count, else √n; never more than n or MAX_CLUSTERS.
 */
export function clusterCount(n: number, o: { requested?: number; current?: number; classes?: number } = {}): number {
  const k = o.requested ?? (o.current || o.classes || Math.max(1, Math.round(Math.sqrt(n))));
  return Math.max(1, Math.min(n, k, MAX_CLUSTERS));
}

export const unknownId = (id: string) => new ApiError(404, 'unknown_id', `no item with id '${id}'`, 'id');
export const emptyIndex = () => new ApiError(409, 'empty_index', 'the index is empty');
export const rebuildInProgress = () =>
  new ApiError(409, 'rebuild_in_progress', 'a cluster rebuild is already running; try again when it ends');
export const noClusters = () => new ApiError(409, 'no_clusters', 'the index has no clusters yet: POST /v1/clusters/rebuild makes them');
export const indexUnavailable = (e: unknown) =>
  new ApiError(503, 'index_unavailable', `the index database is unreachable (${(e as Error).message}); try again shortly`);
