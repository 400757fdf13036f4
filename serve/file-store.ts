/**
 * The file store, the embedded default: `FileIndex` is the index in memory over its snapshot file
 * plus a write-ahead log beside it (`INDEX.wal`, see wal.ts); `FileStore` is that index behind
 * the service's `IndexStore` interface, holding the file's write lock (index-lock.ts). A
 * write is appended to the log as one framed record and fsync'd before it is acknowledged, so it
 * survives `kill -9`; opening replays the log over the snapshot, skipping what the snapshot
 * already holds (its LSN). Snapshots are written on cluster rebuilds, on shutdown and whenever
 * the log outgrows `walMaxBytes`, so the log stays bounded. Opening removes temporaries that a
 * crashed writer left behind.
 */
import fs from 'node:fs';
import path from 'node:path';
import { kmeansInWorker } from '../core/kmeans.js';
import { normalizeRows } from '../core/vectors.js';
import { loadIndex, saveIndex, type IndexData, type IndexItem } from './index-file.js';
import { isOutOfSpace, writeFileAtomic } from '../core/fs.js';
import { ExactSearch, type Neighbour } from './exact-search.js';
import { AnnIndex } from './ann.js';
import { ApiError } from './errors.js';
import { isRunning, lockIndex, type IndexLock } from './index-lock.js';
import { replayWal, WalWriter, type ReplayResult, type WalOp } from './wal.js';

import { clusterCount, DEFAULT_ANN_THRESHOLD, emptyIndex, rebuildInProgress, unknownId } from './index-policy.js';
import { checkVector, type ClusterSummary, type Hit, type IndexEntry, type IndexStore } from './store.js';

/** What a failed write of the index's files answers: 507 when the storage is full, else 503; nothing was stored. */
function storageError(file: string, e: unknown, what: string): ApiError {
  const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
  return isOutOfSpace(e)
    ? new ApiError(
        507,
        'insufficient_storage',
        `${what}: no room to write ${path.basename(file)} (${code}); nothing was changed, try again when there is space`,
      )
    : new ApiError(503, 'index_write_failed', `${what}: ${path.basename(file)} could not be written (${code}); nothing was changed`);
}

/** Retry a failed snapshot no sooner than this (each try writes the whole index). */
const SNAPSHOT_RETRY_MS = 30_000;

export interface StoreOptions {
  /** Index size from which searches go through HNSW (approximate). */
  annThreshold?: number;
  /** Log size that triggers a snapshot (and an empty log). */
  walMaxBytes?: number;
  log?: (line: string) => void;
}

/** `INDEX.<pid>.<time>.tmp` and `INDEX.hnsw.<pid>.tmp` of writers that no longer run. */
function removeStaleTemporaries(file: string, log: (l: string) => void): void {
  const dir = path.dirname(file);
  const base = path.basename(file);
  for (const name of fs.readdirSync(dir)) {
    if (!name.startsWith(`${base}.`) || !name.endsWith('.tmp')) continue;
    const pid = Number(/\.(\d+)(?:\.\d+)?\.tmp$/.exec(name)?.[1]);
    if (!pid || (pid !== process.pid && isRunning(pid))) continue;
    fs.rmSync(path.join(dir, name), { force: true });
    log(`${path.join(dir, name)}: removed a temporary file left by an interrupted write`);
  }
}

/** An index file in memory: exact and HNSW search, writes through the log, snapshots. */
export class FileIndex {
  private vectors: Float32Array;
  private items: IndexItem[];
  private assign: Int32Array;
  private rows = new Map<string, number>();
  private wal: WalWriter | null = null;
  /** The LSN of the last record written or replayed; the snapshot records it. */
  private lsn: number;
  private walMaxBytes: number;
  /** Ids written while a cluster rebuild runs (their k-means assignment may be stale). */
  private touched: Set<string> | null = null;
  private rebuilding = false;
  /** When a snapshot last failed (the log keeps every write meanwhile). */
  private snapshotFailedAt = -Infinity;
  readonly log: (line: string) => void;
  /** What opening found in the log. */
  replay: ReplayResult = { lastLsn: 0, truncatedBytes: 0, legacy: false };
  /** HNSW over the items once the index is large; keys are stable across swap-deletes. */
  private ann: AnnIndex | null = null;
  private keyOf = new Map<string, bigint>();
  private idOf = new Map<bigint, string>();
  private nextKey = 0n;

  private constructor(
    readonly file: string,
    private base: IndexData,
    o: StoreOptions,
  ) {
    this.items = base.items.slice();
    this.vectors = Float32Array.from(base.vectors);
    this.assign = Int32Array.from(base.clusters.assign);
    this.items.forEach((it, i) => this.rows.set(it.id, i));
    this.lsn = base.lsn ?? 0;
    this.walMaxBytes = o.walMaxBytes ?? 64 * 2 ** 20;
    this.log = o.log ?? (() => {});
  }

  /** True when the HNSW graph came from its saved file rather than a rebuild. */
  annLoaded = false;

  /** Opens an index; above `annThreshold` items searches go through HNSW (approximate). */
  static open(file: string, o: StoreOptions = {}): FileIndex {
    const log = o.log ?? (() => {});
    removeStaleTemporaries(file, log);
    const s = new FileIndex(file, loadIndex(file), o);
    if (s.items.length >= (o.annThreshold ?? DEFAULT_ANN_THRESHOLD)) s.enableAnn();
    const held = s.lsn;
    s.replay = replayWal(`${file}.wal`, (r) => {
      if (r.lsn !== 0 && r.lsn <= held) return; // already in the snapshot
      for (const op of r.ops) s.apply(op);
      s.lsn = Math.max(s.lsn, r.lsn);
    });
    if (s.replay.truncatedBytes)
      log(`${file}.wal: cut off ${s.replay.truncatedBytes} bytes of a torn or damaged last record (a write that was never acknowledged)`);
    s.wal = new WalWriter(`${file}.wal`);
    // An unframed log from an earlier version is folded into a snapshot, then replaced.
    if (s.replay.legacy) s.snapshot();
    return s;
  }

  get dim(): number {
    return this.base.dim;
  }
  get count(): number {
    return this.items.length;
  }
  get model(): IndexData['model'] {
    return this.base.model;
  }
  get clusters(): IndexData['clusters'] {
    return { ...this.base.clusters, assign: this.assign.subarray(0, this.items.length) };
  }

  /** A consistent view for search (copies nothing). */
  view(): IndexData {
    return { ...this.base, items: this.items, vectors: this.vectors.subarray(0, this.items.length * this.dim), clusters: this.clusters };
  }

  search(): ExactSearch {
    return new ExactSearch(this.view());
  }

  /**
   * The HNSW graph is saved beside the snapshot (`INDEX.hnsw` + `INDEX.hnsw.json` with the keys);
   * it is reused when it belongs to this very snapshot (same size and time), else rebuilt.
   */
  private annFiles() {
    return { graph: `${this.file}.hnsw`, keys: `${this.file}.hnsw.json` };
  }

  private enableAnn(): void {
    const f = this.annFiles();
    try {
      const side = JSON.parse(fs.readFileSync(f.keys, 'utf8')) as { size: number; mtimeMs: number; nextKey: string; keys: string[] };
      const st = fs.statSync(this.file);
      if (side.size === st.size && side.mtimeMs === st.mtimeMs && side.keys.length === this.items.length) {
        this.ann = new AnnIndex(this.dim);
        this.ann.load(f.graph);
        side.keys.forEach((k, i) => {
          this.keyOf.set(this.items[i].id, BigInt(k));
          this.idOf.set(BigInt(k), this.items[i].id);
        });
        this.nextKey = BigInt(side.nextKey);
        this.annLoaded = true;
        return;
      }
    } catch {
      // No saved graph, or not this snapshot's: rebuild below.
    }
    this.ann = new AnnIndex(this.dim);
    const keys = new BigUint64Array(this.items.length);
    this.items.forEach((it, i) => {
      keys[i] = this.nextKey;
      this.keyOf.set(it.id, this.nextKey);
      this.idOf.set(this.nextKey++, it.id);
    });
    this.ann.add(keys, this.vectors.subarray(0, this.items.length * this.dim));
  }

  get approximate(): boolean {
    return this.ann !== null;
  }

  /** A 400 unless `vector` fits the index (dimension, finite, not zero). */
  checkVector(vector: ArrayLike<number>, field = 'embedding'): void {
    checkVector(vector, this.dim, field);
  }

  /** The k nearest items: HNSW when enabled, else exact. */
  nearest(query: Float32Array, k: number): Neighbour[] {
    this.checkVector(query);
    if (!this.ann) return this.search().search(query, k);
    const r = this.ann.search(normalizeRows(Float32Array.from(query), this.dim), k);
    return Array.from(r.keys, (key, j) => {
      const id = this.idOf.get(key)!;
      const row = this.rows.get(id)!;
      return { id, row, score: r.scores[j], item: this.items[row] };
    });
  }

  private annRemove(id: string): void {
    const key = this.keyOf.get(id);
    if (!this.ann || key === undefined) return;
    this.ann.remove(key);
    this.keyOf.delete(id);
    this.idOf.delete(key);
  }

  private apply(op: WalOp): void {
    this.touched?.add(op.op === 'delete' ? op.id : op.item.id);
    if (op.op === 'delete') {
      const row = this.rows.get(op.id);
      if (row === undefined) return;
      this.annRemove(op.id);
      // Swap the last row into the hole.
      const last = this.items.length - 1;
      if (row !== last) {
        this.items[row] = this.items[last];
        this.vectors.copyWithin(row * this.dim, last * this.dim, (last + 1) * this.dim);
        this.assign[row] = this.assign[last];
        this.rows.set(this.items[row].id, row);
      }
      this.items.pop();
      this.rows.delete(op.id);
      return;
    }
    const v = new Float32Array(new Uint8Array(Buffer.from(op.vector, 'base64')).buffer);
    let row = this.rows.get(op.item.id);
    if (row === undefined) {
      row = this.items.length;
      if ((row + 1) * this.dim > this.vectors.length) {
        const grown = new Float32Array(Math.max(this.dim * 16, this.vectors.length * 2));
        grown.set(this.vectors);
        this.vectors = grown;
        const a = new Int32Array(grown.length / this.dim);
        a.set(this.assign);
        this.assign = a;
      }
      this.items.push(op.item);
      this.rows.set(op.item.id, row);
    } else this.items[row] = op.item;
    this.vectors.set(v, row * this.dim);
    this.assign[row] = op.cluster;
    if (this.ann) {
      this.annRemove(op.item.id);
      this.keyOf.set(op.item.id, this.nextKey);
      this.idOf.set(this.nextKey, op.item.id);
      this.ann.add(BigUint64Array.of(this.nextKey++), v);
    }
  }

  /**
   * Logs the ops as one record (a batch is all or nothing), applies them, and snapshots a log grown
   * too long. A record that cannot be written whole changes nothing (the log is cut back) and
   * answers 507 or 503; a snapshot that cannot be written is only logged: the log still holds it all.
   */
  private commit(ops: WalOp[]): void {
    if (!this.wal) throw new ApiError(503, 'shutting_down', 'the index is closed');
    try {
      this.wal.append({ lsn: this.lsn + 1, ops });
    } catch (e) {
      this.log(`${this.wal.file}: a write was refused and not stored: ${(e as Error).message}`);
      throw storageError(this.wal.file, e, 'the write was not stored');
    }
    this.lsn++;
    for (const op of ops) this.apply(op);
    if (this.wal.size > this.walMaxBytes && Date.now() - this.snapshotFailedAt > SNAPSHOT_RETRY_MS) {
      try {
        this.snapshot();
      } catch (e) {
        this.snapshotFailedAt = Date.now();
        this.log(`${this.file}: the snapshot could not be written (${(e as Error).message}); the log keeps every write meanwhile`);
      }
    }
  }

  /** Adds (or replaces) items; durable when it returns. `field` names an entry's vector in errors. */
  add(entries: { item: IndexItem; vector: Float32Array; field?: string }[]): void {
    const search = this.search();
    const ops: WalOp[] = entries.map(({ item, vector, field }) => {
      this.checkVector(vector, field);
      const unit = normalizeRows(Float32Array.from(vector), this.dim);
      return { op: 'add', item, vector: Buffer.from(unit.buffer).toString('base64'), cluster: search.assign(unit).cluster };
    });
    this.commit(ops);
  }

  delete(id: string): void {
    if (!this.rows.has(id)) throw unknownId(id);
    this.commit([{ op: 'delete', id }]);
  }

  has(id: string): boolean {
    return this.rows.has(id);
  }

  /** Up to `n` ids of `cluster`'s items, nearest to the query first. */
  members(query: Float32Array, cluster: number, n: number): string[] {
    if (n === 0) return [];
    const assign = this.clusters.assign;
    return this.search()
      .search(query, Math.min(this.count, 50 * Math.max(1, n)))
      .filter((nb) => assign[nb.row] === cluster)
      .slice(0, n)
      .map((nb) => nb.id);
  }

  /** Each cluster's size and its five items nearest the centroid. */
  clusterSummary(): ClusterSummary {
    const { k, centroids, assign } = this.clusters;
    const sizes = new Int32Array(k);
    for (const a of assign) sizes[a]++;
    const search = this.search();
    return {
      k,
      clusters: Array.from({ length: k }, (_, c) => ({
        id: c,
        size: sizes[c],
        representatives: search.search(centroids.subarray(c * this.dim, (c + 1) * this.dim), 5).map((nb) => nb.id),
      })),
    };
  }

  /**
   * k-means over the current items in a worker thread (requests go on being served), then a
   * snapshot. Items written meanwhile are assigned to the new centroids by nearest centroid.
   */
  async rebuildClusters(k?: number): Promise<IndexData['clusters']> {
    const n = this.items.length;
    if (n === 0) throw emptyIndex();
    if (this.rebuilding) throw rebuildInProgress();
    const kk = clusterCount(n, { requested: k, current: this.base.clusters.k });
    const ids = this.items.map((it) => it.id);
    this.rebuilding = true;
    this.touched = new Set();
    try {
      const km = await kmeansInWorker(Float32Array.from(this.vectors.subarray(0, n * this.dim)), this.dim, kk, { seed: 0 });
      if (!this.wal) throw new ApiError(503, 'shutting_down', 'the index was closed during the rebuild');
      const rowAtStart = new Map(ids.map((id, i) => [id, i]));
      const before = { base: this.base, assign: Int32Array.from(this.assign) };
      this.base = { ...this.base, clusters: { k: kk, centroids: km.centroids, assign: km.assign } };
      const fresh = this.search();
      for (let row = 0; row < this.items.length; row++) {
        const id = this.items[row].id;
        const was = rowAtStart.get(id);
        this.assign[row] =
          was !== undefined && !this.touched.has(id)
            ? km.assign[was]
            : fresh.assign(this.vectors.subarray(row * this.dim, (row + 1) * this.dim)).cluster;
      }
      try {
        this.snapshot();
      } catch (e) {
        // A clustering that is not on disk is not taken: everything stays as before the rebuild.
        this.base = before.base;
        this.assign.set(before.assign.subarray(0, this.assign.length));
        this.log(`${this.file}: the cluster rebuild was dropped, its snapshot could not be written: ${(e as Error).message}`);
        throw storageError(this.file, e, 'the cluster rebuild was not kept');
      }
      return this.clusters;
    } finally {
      this.rebuilding = false;
      this.touched = null;
    }
  }

  /**
   * Writes the snapshot atomically with the LSN it holds, then empties the log; a crash between
   * the two replays nothing twice (records at or below the snapshot's LSN are skipped).
   */
  snapshot(): void {
    saveIndex(this.file, {
      ...this.view(),
      lsn: this.lsn,
      vectors: Float32Array.from(this.vectors.subarray(0, this.count * this.dim)),
      clusters: { ...this.clusters, assign: Int32Array.from(this.clusters.assign) },
    });
    this.snapshotFailedAt = -Infinity;
    try {
      this.wal?.reset();
    } catch (e) {
      // The snapshot holds every record (replay skips them by LSN); the next append starts the log afresh.
      this.log(`${this.file}.wal: not emptied after the snapshot (${(e as Error).message})`);
    }
    if (this.ann) {
      // Only a start-up speed-up: a graph that cannot be saved is rebuilt at the next start.
      const f = this.annFiles();
      const tmp = `${f.graph}.${process.pid}.tmp`;
      try {
        this.ann.save(tmp);
        fs.renameSync(tmp, f.graph);
        const st = fs.statSync(this.file);
        const keys = this.items.map((it) => String(this.keyOf.get(it.id)));
        writeFileAtomic(f.keys, [JSON.stringify({ size: st.size, mtimeMs: st.mtimeMs, nextKey: String(this.nextKey), keys })]);
      } catch (e) {
        fs.rmSync(tmp, { force: true });
        this.log(`${f.graph}: the HNSW graph was not saved (${(e as Error).message}); the next start rebuilds it`);
      }
    }
  }

  close(): void {
    this.wal?.close();
    this.wal = null;
  }
}

/** The file index behind the service's async interface (what PostgresStore is for PostgreSQL). */
export class FileStore implements IndexStore {
  readonly kind = 'file';

  constructor(
    readonly index: FileIndex,
    private readonly lock: IndexLock | null = null,
  ) {}

  /** Opens an index file for writing: refused while another process (or this one) has it open. */
  static open(file: string, o: StoreOptions = {}): FileStore {
    const lock = lockIndex(file, o.log);
    try {
      return new FileStore(FileIndex.open(file, o), lock);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  get location(): string {
    return this.index.file;
  }
  get dim(): number {
    return this.index.dim;
  }
  get model(): IndexData['model'] {
    return this.index.model;
  }
  async count(): Promise<number> {
    return this.index.count;
  }
  async clusterCount(): Promise<number> {
    return this.index.clusters.k;
  }
  checkVector(vector: ArrayLike<number>, field?: string): void {
    this.index.checkVector(vector, field);
  }
  // The HNSW graph's search expansion is fixed when it is built (usearch): efSearch is pgvector's knob.
  async nearest(query: Float32Array, k: number): Promise<Hit[]> {
    return this.index.nearest(query, k);
  }
  async assign(query: Float32Array): Promise<{ cluster: number; score: number }> {
    this.index.checkVector(query);
    return this.index.search().assign(query);
  }
  async members(query: Float32Array, cluster: number, n: number): Promise<string[]> {
    return this.index.members(query, cluster, n);
  }
  async clusterSummary(): Promise<ClusterSummary> {
    return this.index.clusterSummary();
  }
  async add(entries: IndexEntry[]): Promise<void> {
    this.index.add(entries);
  }
  async delete(id: string): Promise<void> {
    this.index.delete(id);
  }
  async has(id: string): Promise<boolean> {
    return this.index.has(id);
  }
  async rebuildClusters(k?: number): Promise<{ k: number }> {
    return { k: (await this.index.rebuildClusters(k)).k };
  }
  async reachable(): Promise<boolean> {
    return true;
  }
  /** Snapshots and closes; a snapshot that cannot be written is logged, the log keeps every write for the next start. */
  async close(): Promise<void> {
    try {
      this.index.snapshot();
    } catch (e) {
      this.index.log(
        `${this.index.file}: the snapshot could not be written on shutdown (${(e as Error).message}); nothing is lost: ${path.basename(this.index.file)}.wal holds every write and the next start replays it`,
      );
    } finally {
      this.index.close();
      this.lock?.release();
    }
  }
}
