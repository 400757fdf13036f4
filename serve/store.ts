/**
 * The live index: the snapshot file plus a write-ahead log beside it (`INDEX.wal`). A write is
 * appended to the log and fsync'd before it is acknowledged, so it survives `kill -9`; opening
 * replays the log over the snapshot. Replay is idempotent (an add replaces the same id, a delete
 * of a missing id is a no-op), so a crash between writing a snapshot and truncating the log is
 * harmless. Snapshots are written on cluster rebuilds and on shutdown.
 */
import fs from 'node:fs';
import { kmeans } from '../core/kmeans.js';
import { normalizeRows } from '../core/vectors.js';
import { loadIndex, saveIndex, type IndexData, type IndexItem } from './index-file.js';
import { writeFileAtomic } from '../core/fs.js';
import { ExactSearch, type Neighbour } from './exact-search.js';
import { AnnIndex } from './ann.js';
import { ApiError } from './errors.js';

type WalOp = { op: 'add'; item: IndexItem; vector: string; cluster: number } | { op: 'delete'; id: string };

export class IndexStore {
  private vectors: Float32Array;
  private items: IndexItem[];
  private assign: Int32Array;
  private rows = new Map<string, number>();
  private walFd: number;
  /** HNSW over the items once the index is large; keys are stable across swap-deletes. */
  private ann: AnnIndex | null = null;
  private keyOf = new Map<string, bigint>();
  private idOf = new Map<bigint, string>();
  private nextKey = 0n;

  private constructor(
    readonly file: string,
    private base: IndexData,
  ) {
    this.items = base.items.slice();
    this.vectors = Float32Array.from(base.vectors);
    this.assign = Int32Array.from(base.clusters.assign);
    this.items.forEach((it, i) => this.rows.set(it.id, i));
    this.walFd = -1;
  }

  /** True when the HNSW graph came from its saved file rather than a rebuild. */
  annLoaded = false;

  /** Opens an index; above `annThreshold` items searches go through HNSW (approximate). */
  static open(file: string, o: { annThreshold?: number } = {}): IndexStore {
    const s = new IndexStore(file, loadIndex(file));
    if (s.items.length >= (o.annThreshold ?? 20_000)) s.enableAnn();
    const wal = `${file}.wal`;
    if (fs.existsSync(wal)) {
      const lines = fs.readFileSync(wal, 'utf8').split('\n');
      // A torn last line (crash mid-append, never acknowledged) is dropped.
      for (const line of lines) {
        if (!line.trim()) continue;
        let op: WalOp;
        try {
          op = JSON.parse(line) as WalOp;
        } catch {
          continue;
        }
        s.apply(op);
      }
    }
    s.walFd = fs.openSync(wal, 'a');
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

  /** A 400 naming `field` unless `vector` has the index's dimension. */
  checkDim(vector: ArrayLike<number>, field = 'embedding'): void {
    if (vector.length !== this.dim)
      throw new ApiError(400, 'wrong_dimension', `${field} has ${vector.length} values, the index holds ${this.dim}`, field);
  }

  /** The k nearest items: HNSW when enabled, else exact. */
  nearest(query: Float32Array, k: number): Neighbour[] {
    this.checkDim(query);
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

  private log(ops: WalOp[]): void {
    fs.writeSync(this.walFd, ops.map((o) => `${JSON.stringify(o)}\n`).join(''));
    fs.fsyncSync(this.walFd);
  }

  /** Adds (or replaces) items; durable when it returns. */
  add(entries: { item: IndexItem; vector: Float32Array }[]): void {
    const search = this.search();
    const ops: WalOp[] = entries.map(({ item, vector }) => {
      this.checkDim(vector);
      const unit = normalizeRows(Float32Array.from(vector), this.dim);
      return { op: 'add', item, vector: Buffer.from(unit.buffer).toString('base64'), cluster: search.assign(unit).cluster };
    });
    this.log(ops);
    for (const op of ops) this.apply(op);
  }

  delete(id: string): void {
    if (!this.rows.has(id)) throw new ApiError(404, 'unknown_id', `no item with id '${id}'`, 'id');
    const op: WalOp = { op: 'delete', id };
    this.log([op]);
    this.apply(op);
  }

  has(id: string): boolean {
    return this.rows.has(id);
  }

  /** k-means over the current items, then a snapshot. */
  rebuildClusters(k?: number): IndexData['clusters'] {
    const n = this.items.length;
    if (n === 0) throw new ApiError(409, 'empty_index', 'the index is empty');
    const kk = Math.min(n, k ?? this.base.clusters.k);
    const km = kmeans(this.vectors.subarray(0, n * this.dim), this.dim, kk, { seed: 0 });
    this.base = { ...this.base, clusters: { k: kk, centroids: km.centroids, assign: km.assign } };
    this.assign = Int32Array.from(km.assign);
    this.snapshot();
    return this.clusters;
  }

  /** Writes the snapshot atomically, then empties the log (replay is idempotent if we crash between). */
  snapshot(): void {
    saveIndex(this.file, {
      ...this.view(),
      vectors: Float32Array.from(this.vectors.subarray(0, this.count * this.dim)),
      clusters: { ...this.clusters, assign: Int32Array.from(this.clusters.assign) },
    });
    fs.ftruncateSync(this.walFd, 0);
    fs.fsyncSync(this.walFd);
    if (this.ann) {
      const f = this.annFiles();
      const tmp = `${f.graph}.${process.pid}.tmp`;
      this.ann.save(tmp);
      fs.renameSync(tmp, f.graph);
      const st = fs.statSync(this.file);
      const keys = this.items.map((it) => String(this.keyOf.get(it.id)));
      writeFileAtomic(f.keys, [JSON.stringify({ size: st.size, mtimeMs: st.mtimeMs, nextKey: String(this.nextKey), keys })]);
    }
  }

  close(): void {
    if (this.walFd >= 0) fs.closeSync(this.walFd);
    this.walFd = -1;
  }
}
