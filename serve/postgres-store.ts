/**
 * The index in PostgreSQL with pgvector, for several service replicas (and indexing jobs) sharing
 * one index. Nothing is cached between requests but the item count, so every replica answers
 * from the database: a write is acknowledged after its transaction commits and is then visible
 * to all; a cluster rebuild is one transaction that every later request sees.
 *
 * Search is exact (a sequential scan) below `annThreshold` items and through the HNSW index
 * (vector_cosine_ops) above it, with `hnsw.ef_search` per service or per request. The HNSW index
 * is built once the table reaches the threshold (by `sslkit index` at its end, or by a replica
 * after a write, in the background and CONCURRENTLY, so writes go on): building it over loaded
 * rows is many times faster than keeping it up to date row by row. Writes take a
 * shared advisory lock and a rebuild's final transaction an exclusive one, so no write can assign
 * an item to centroids that a rebuild is replacing.
 */
import pg from 'pg';
import { kmeansInWorker } from '../core/kmeans.js';
import { normalizeRows } from '../core/vectors.js';
import { UserError } from '../core/errors.js';
import { ApiError } from './errors.js';
import type { IndexData, IndexItem } from './index-file.js';
import { migrate, parsePostgresUrl, tablesOf, type Identity, type PostgresLocation } from './postgres-schema.js';
import {
  clusterCount,
  DEFAULT_ANN_THRESHOLD,
  DEFAULT_EF_SEARCH,
  emptyIndex,
  indexUnavailable,
  noClusters,
  rebuildInProgress,
  unknownId,
} from './index-policy.js';
import { checkVector, type ClusterSummary, type Hit, type IndexEntry, type IndexStore, type SearchOptions } from './store.js';

export interface PostgresStoreOptions {
  /** Item count from which searches go through HNSW (approximate). */
  annThreshold?: number;
  /** pgvector's hnsw.ef_search when a request gives none (pgvector's default is 40). */
  efSearch?: number;
  /** The identity of a table to create when there is none (from the model being indexed or served). */
  create?: Identity;
  /** Build the HNSW index in the background once a count finds the table at the threshold (a service does; `sslkit index` builds it at its end). */
  autoAnnIndex?: boolean;
  /** Connections in the pool. */
  poolSize?: number;
  /** Longest a statement may run before it is cancelled. */
  statementTimeoutMs?: number;
  log?: (line: string) => void;
  /** Each database call: its name, its time, and the error code when it failed. */
  onQuery?: (op: string, seconds: number, error?: string) => void;
}

/** Errors that mean "the database is not there right now", as opposed to a wrong query. */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);

function isUnavailable(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  if (err.code && (UNAVAILABLE_CODES.has(err.code) || err.code.startsWith('08'))) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connection is closed/i.test(
    err.message ?? '',
  );
}

/** Deadlock and serialization failures: the transaction did nothing and may simply run again. */
const RETRYABLE_CODES = new Set(['40P01', '40001']);
const MAX_TX_ATTEMPTS = 5;

/**
 * A pooled connection with an 'error' listener for as long as it is checked out: the server
 * dropping it between two queries (a restart, `pg_terminate_backend`) is then noted, not an
 * unhandled 'error' event that ends the process. `release()` discards a connection that failed.
 */
async function checkout(pool: pg.Pool): Promise<{ client: pg.PoolClient; release(err?: Error): void }> {
  const client = await pool.connect();
  let lost: Error | undefined;
  const onError = (e: Error) => (lost = e);
  client.on('error', onError);
  return {
    client,
    release(err?: Error) {
      client.off('error', onError);
      client.release(err ?? lost);
    },
  };
}

const errorCode = (e: unknown) => (e as { code?: string }).code ?? (e instanceof ApiError ? e.code : 'error');

/** The text form pgvector reads; a float32's shortest decimal parses back to the same float32. */
const toSql = (v: Float32Array): string => `[${Array.from(v).join(',')}]`;
const fromSql = (s: string): number[] => JSON.parse(s) as number[];

export class PostgresStore implements IndexStore {
  readonly kind = 'postgres';
  private readonly t: ReturnType<typeof tablesOf>;
  private readonly annThreshold: number;
  private readonly efSearch: number;
  private readonly onQuery: NonNullable<PostgresStoreOptions['onQuery']>;
  /** Item count and whether the HNSW index is usable, as of `at` (refreshed at most once a second). */
  private state = { n: 0, ann: false, at: -Infinity };
  /** The HNSW build this process runs, and its server process (cancelled on close). */
  private building: { done: Promise<void>; pid?: number } | null = null;
  private readonly log: (line: string) => void;
  private readonly autoAnnIndex: boolean;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly loc: PostgresLocation,
    private readonly identity: Identity,
    o: PostgresStoreOptions,
  ) {
    this.t = tablesOf(loc.table);
    this.annThreshold = o.annThreshold ?? DEFAULT_ANN_THRESHOLD;
    this.efSearch = o.efSearch ?? DEFAULT_EF_SEARCH;
    this.onQuery = o.onQuery ?? (() => {});
    this.log = o.log ?? (() => {});
    this.autoAnnIndex = o.autoAnnIndex ?? false;
  }

  /** Connects, creates or migrates the index's tables, and reads its identity. */
  static async open(url: string, o: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const log = o.log ?? (() => {});
    const loc = parsePostgresUrl(url);
    const pool = new pg.Pool({
      connectionString: loc.connectionString,
      max: o.poolSize ?? 10,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      statement_timeout: o.statementTimeoutMs ?? 30_000,
      application_name: 'sslkit',
    });
    // An idle connection that the server drops (a restart) is an event, not a crash; the pool replaces it.
    let warned = 0;
    pool.on('error', (e) => {
      if (Date.now() - warned > 10_000) log(`${loc.redacted}: lost a pooled connection (${e.message}); reconnecting on demand`);
      warned = Date.now();
    });
    try {
      const identity = await migrate(pool, loc, o.create, log);
      return new PostgresStore(pool, loc, identity, o);
    } catch (e) {
      await pool.end().catch(() => {});
      if (isUnavailable(e) || (e as { code?: string }).code === '28P01' || (e as { code?: string }).code === '3D000')
        throw new UserError(`${loc.redacted}: cannot open the index database: ${(e as Error).message}`, { cause: e });
      throw e;
    }
  }

  get location(): string {
    return this.loc.redacted;
  }
  get dim(): number {
    return this.identity.dim;
  }
  get model(): IndexData['model'] {
    return this.identity.model;
  }

  /**
   * One database call on a pooled connection, in a transaction when `tx`: timed, and turned into
   * a 503 when the database is unreachable (the request can be retried), else passed on.
   */
  private async run<T>(op: string, fn: (c: pg.PoolClient) => Promise<T>, tx = false): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.runOnce(op, fn, tx);
      } catch (e) {
        const code = (e as { code?: string }).code ?? '';
        if (!tx || !RETRYABLE_CODES.has(code) || attempt >= MAX_TX_ATTEMPTS) {
          if (RETRYABLE_CODES.has(code))
            throw new ApiError(
              503,
              'index_busy',
              `the index database kept refusing the write (${(e as Error).message}); try again`,
              undefined,
              {
                'Retry-After': '1',
              },
            );
          throw e;
        }
        // Rolled back whole: wait a little (jittered, growing) and run the transaction again.
        await new Promise((r) => setTimeout(r, 5 * 2 ** attempt * (0.5 + Math.random())));
      }
    }
  }

  private async runOnce<T>(op: string, fn: (c: pg.PoolClient) => Promise<T>, tx: boolean): Promise<T> {
    const t0 = performance.now();
    let conn: Awaited<ReturnType<typeof checkout>> | undefined;
    let broken: Error | undefined;
    try {
      conn = await checkout(this.pool);
      const client = conn.client;
      if (tx) await client.query('BEGIN');
      const r = await fn(client);
      if (tx) await client.query('COMMIT');
      this.onQuery(op, (performance.now() - t0) / 1000);
      return r;
    } catch (e) {
      this.onQuery(op, (performance.now() - t0) / 1000, errorCode(e));
      if (isUnavailable(e)) {
        broken = e as Error;
        throw indexUnavailable(e);
      }
      if (tx && conn) await conn.client.query('ROLLBACK').catch((r: Error) => (broken = r));
      if ((e as { code?: string }).code === '57014')
        throw new ApiError(503, 'index_timeout', `the index database did not answer in time (${(e as Error).message})`);
      throw e;
    } finally {
      conn?.release(broken);
    }
  }

  async count(): Promise<number> {
    return (await this.refresh()).n;
  }

  private async refresh(): Promise<{ n: number; ann: boolean }> {
    const row = await this.run(
      'count',
      async (c) =>
        (
          await c.query(
            `SELECT (SELECT count(*)::int FROM ${this.t.items}) AS n,
               coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)), false) AS ann`,
            [this.t.hnsw],
          )
        ).rows[0] as { n: number; ann: boolean },
    );
    this.state = { ...row, at: performance.now() };
    if (this.autoAnnIndex && row.n >= this.annThreshold && !row.ann && !this.building) void this.buildAnnIndex().catch(() => {});
    return row;
  }

  /** Count and index state as of at most a second ago: enough to choose exact or HNSW search. */
  private async recentState(): Promise<{ n: number; ann: boolean }> {
    return performance.now() - this.state.at < 1000 ? this.state : this.refresh();
  }

  /**
   * Builds the HNSW index unless it is there and valid: CONCURRENTLY (writes go on), under an
   * advisory lock so that one replica builds it, replacing an invalid one that an interrupted
   * build left. Resolves when this process's build ends (at once if another process builds).
   */
  buildAnnIndex(): Promise<void> {
    if (this.building) return this.building.done;
    const key = `sslkit:${this.loc.table}:hnsw`;
    const job: { done: Promise<void>; pid?: number } = { done: Promise.resolve() };
    job.done = (async () => {
      const conn = await checkout(this.pool);
      const c = conn.client;
      let broken: Error | undefined;
      try {
        if (!(await c.query('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [key])).rows[0].ok) return;
        job.pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
        const idx = (await c.query('SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)', [this.t.hnsw])).rows[0];
        if (idx?.indisvalid) return;
        const t0 = performance.now();
        // A build over many rows outlasts any statement timeout; pgvector builds fastest when the graph fits in memory.
        await c.query(`SET statement_timeout = 0; SET maintenance_work_mem = '512MB'`);
        if (idx) await c.query(`DROP INDEX CONCURRENTLY IF EXISTS ${this.t.hnsw}`);
        await c.query(`CREATE INDEX CONCURRENTLY IF NOT EXISTS ${this.t.hnsw} ON ${this.t.items} USING hnsw (embedding vector_cosine_ops)`);
        this.log(
          `${this.loc.redacted}: built the HNSW index in ${((performance.now() - t0) / 1000).toFixed(1)} s; searches are approximate from now on`,
        );
        this.state.at = -Infinity;
      } catch (e) {
        broken = e as Error; // the session's settings and lock go with the connection
        this.log(`${this.loc.redacted}: the HNSW index was not built (${(e as Error).message}); searches stay exact`);
        throw e;
      } finally {
        conn.release(broken ?? new Error('session settings changed'));
        this.building = null;
      }
    })();
    this.building = job;
    return job.done;
  }

  async clusterCount(): Promise<number> {
    return this.run('clusters', async (c) => (await c.query(`SELECT k FROM ${this.t.meta}`)).rows[0].k as number);
  }

  checkVector(vector: ArrayLike<number>, field = 'embedding'): void {
    checkVector(vector, this.dim, field);
  }

  private unit(query: ArrayLike<number>, field?: string): string {
    this.checkVector(query, field);
    return toSql(normalizeRows(Float32Array.from(query), this.dim));
  }

  /**
   * Sets the search mode for the transaction: HNSW with its ef_search, or exact (no index scan);
   * true for HNSW. HNSW scans go on past dead tuples (pgvector 0.8's iterative scan, in exact
   * distance order), else a table with many updates or deletes returns fewer than k hits.
   */
  private async searchMode(c: pg.PoolClient, k: number, ef?: number): Promise<boolean> {
    const st = await this.recentState();
    if (st.n >= this.annThreshold && st.ann) {
      // The planner would still scan a small table whole: above the threshold the index is the point.
      await c.query(
        `SET LOCAL enable_seqscan = off; SET LOCAL hnsw.ef_search = ${Math.min(1000, Math.max(k, ef ?? this.efSearch))}; SET LOCAL hnsw.iterative_scan = strict_order`,
      );
      return true;
    }
    await c.query('SET LOCAL enable_indexscan = off');
    return false;
  }

  async nearest(query: Float32Array, k: number, o: SearchOptions = {}): Promise<Hit[]> {
    const q = this.unit(query);
    return this.run(
      'search',
      async (c) => {
        const approximate = await this.searchMode(c, k, o.efSearch);
        const sql = `SELECT id, metadata, 1 - (embedding <=> $1) AS score FROM ${this.t.items} ORDER BY embedding <=> $1 LIMIT $2`;
        let r = await c.query(sql, [q, k]);
        if (approximate && r.rows.length < k) {
          // Fewer than k: the iterative scan spent its tuple budget on dead rows, or the table has fewer
          // than k rows (only when k is above --ann-threshold). The exact search settles which.
          await c.query('SET LOCAL enable_seqscan = on; SET LOCAL enable_indexscan = off');
          r = await c.query(sql, [q, k]);
        }
        return r.rows.map((row) => ({
          id: row.id as string,
          score: row.score as number,
          item: { ...row.metadata, id: row.id } as IndexItem,
        }));
      },
      true,
    );
  }

  async assign(query: Float32Array): Promise<{ cluster: number; score: number }> {
    const q = this.unit(query);
    const row = await this.run(
      'assign',
      async (c) =>
        (await c.query(`SELECT id, 1 - (centroid <=> $1) AS score FROM ${this.t.clusters} ORDER BY centroid <=> $1 LIMIT 1`, [q])).rows[0],
    );
    if (!row) throw noClusters();
    return { cluster: row.id as number, score: row.score as number };
  }

  async members(query: Float32Array, cluster: number, n: number): Promise<string[]> {
    if (n === 0) return [];
    const q = this.unit(query);
    return this.run(
      'members',
      async (c) => {
        await c.query('SET LOCAL enable_indexscan = off');
        const r = await c.query(
          `SELECT i.id FROM ${this.t.items} i JOIN ${this.t.assign} a ON a.id = i.id
           WHERE a.cluster = $2 ORDER BY i.embedding <=> $1 LIMIT $3`,
          [q, cluster, n],
        );
        return r.rows.map((row) => row.id as string);
      },
      true,
    );
  }

  async clusterSummary(): Promise<ClusterSummary> {
    const rows = await this.run(
      'clusters',
      async (c) => {
        await this.searchMode(c, 5);
        const r = await c.query(
          `SELECT c.id, (SELECT count(*)::int FROM ${this.t.assign} a WHERE a.cluster = c.id) AS size,
             ARRAY(SELECT i.id FROM ${this.t.items} i ORDER BY i.embedding <=> c.centroid LIMIT 5) AS representatives
           FROM ${this.t.clusters} c ORDER BY c.id`,
        );
        return r.rows as ClusterSummary['clusters'];
      },
      true,
    );
    return { k: rows.length, clusters: rows };
  }

  async add(entries: IndexEntry[]): Promise<void> {
    // One row per id, the last given winning (as in the file store); one statement, one transaction.
    const byId = new Map<string, { e: string; m: string }>();
    for (const { item, vector, field } of entries) {
      const { id, ...metadata } = item;
      byId.delete(id);
      byId.set(id, { e: this.unit(vector, field), m: JSON.stringify(metadata) });
    }
    // Row locks in one order (ids sorted as PostgreSQL's "C" collation sorts them) so that concurrent
    // batches over the same ids wait for each other instead of deadlocking.
    const ids = [...byId.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const rows = ids.map((id) => byId.get(id)!);
    await this.run(
      'write',
      async (c) => {
        await c.query(`SELECT pg_advisory_xact_lock_shared(hashtext($1))`, [`sslkit:${this.loc.table}:clusters`]);
        // The items, and each one's nearest centroid (none before the first clustering).
        await c.query(
          `WITH u AS (SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS u(id, e, m)),
           written AS (
             INSERT INTO ${this.t.items} (id, embedding, metadata) SELECT id, e::vector, m FROM u ORDER BY id COLLATE "C"
             ON CONFLICT (id) DO UPDATE SET embedding = excluded.embedding, metadata = excluded.metadata,
               seq = nextval('${this.t.seq}'), updated_at = now())
           INSERT INTO ${this.t.assign} (id, cluster)
           SELECT u.id, c.id FROM u CROSS JOIN LATERAL
             (SELECT id FROM ${this.t.clusters} ORDER BY centroid <=> u.e::vector LIMIT 1) c
           ORDER BY u.id COLLATE "C"
           ON CONFLICT (id) DO UPDATE SET cluster = excluded.cluster`,
          [ids, rows.map((r) => r.e), rows.map((r) => r.m)],
        );
      },
      true,
    );
  }

  async delete(id: string): Promise<void> {
    const n = await this.run(
      'delete',
      async (c) => {
        await c.query(`SELECT pg_advisory_xact_lock_shared(hashtext($1))`, [`sslkit:${this.loc.table}:clusters`]);
        // The item row first, then its assignment: the order in which writes lock them.
        const n = (await c.query(`DELETE FROM ${this.t.items} WHERE id = $1`, [id])).rowCount;
        await c.query(`DELETE FROM ${this.t.assign} WHERE id = $1`, [id]);
        return n;
      },
      true,
    );
    if (!n) throw unknownId(id);
  }

  async has(id: string): Promise<boolean> {
    return this.run('read', async (c) => (await c.query(`SELECT 1 FROM ${this.t.items} WHERE id = $1`, [id])).rowCount === 1);
  }

  /**
   * k-means over every item (read in id order, so the result depends only on the table) in a
   * worker thread, then one transaction: the centroids, k-means' assignment for the rows it read
   * unchanged, nearest-centroid for rows written meanwhile. One rebuild at a time per index,
   * across replicas (a session advisory lock held on its own connection).
   */
  async rebuildClusters(k?: number): Promise<{ k: number }> {
    const key = `sslkit:${this.loc.table}:rebuild`;
    let conn: Awaited<ReturnType<typeof checkout>>;
    try {
      conn = await checkout(this.pool);
    } catch (e) {
      throw isUnavailable(e) ? indexUnavailable(e) : e;
    }
    const holder = conn.client;
    let broken: Error | undefined;
    try {
      if (!(await holder.query('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [key])).rows[0].ok) throw rebuildInProgress();
      try {
        const rows = await this.run(
          'rebuild_read',
          async (c) =>
            // pgvector's binary form (vector_send): half the bytes of the text form, and no number parsing.
            (await c.query(`SELECT id, seq::text, vector_send(embedding) AS e FROM ${this.t.items} ORDER BY id COLLATE "C"`)).rows as {
              id: string;
              seq: string;
              e: Buffer;
            }[],
        );
        const n = rows.length;
        if (n === 0) throw emptyIndex();
        const current = await this.clusterCount();
        const kk = clusterCount(n, { requested: k, current });
        const x = new Float32Array(n * this.dim);
        rows.forEach((r, i) => {
          // int16 dimension, int16 unused, then big-endian float32 values.
          for (let j = 0; j < this.dim; j++) x[i * this.dim + j] = r.e.readFloatBE(4 + 4 * j);
        });
        const km = await kmeansInWorker(x, this.dim, kk, { seed: 0 });
        await this.writeClustering(
          kk,
          km.centroids,
          rows.map((r) => r.id),
          rows.map((r) => r.seq),
          km.assign,
        );
        return { k: kk };
      } finally {
        // If the connection is gone, so is the session lock: the connection is then discarded.
        await holder.query('SELECT pg_advisory_unlock(hashtext($1))', [key]).catch((e: Error) => (broken = e));
      }
    } catch (e) {
      if (isUnavailable(e)) broken = e as Error;
      throw isUnavailable(e) ? indexUnavailable(e) : e;
    } finally {
      conn.release(broken);
    }
  }

  private async writeClustering(k: number, centroids: Float32Array, ids: string[], seqs: string[], assign: Int32Array): Promise<void> {
    const t = this.t;
    await this.run(
      'rebuild_write',
      async (c) => {
        await c.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`sslkit:${this.loc.table}:clusters`]);
        await c.query(`UPDATE ${t.meta} SET k = $1, clustering = clustering + 1`, [k]);
        await c.query(`DELETE FROM ${t.clusters}`);
        await c.query(`INSERT INTO ${t.clusters} (id, centroid) SELECT u.id, u.c::vector FROM unnest($1::int[], $2::text[]) AS u(id, c)`, [
          Array.from({ length: k }, (_, i) => i),
          Array.from({ length: k }, (_, i) => toSql(centroids.subarray(i * this.dim, (i + 1) * this.dim))),
        ]);
        await c.query(`DELETE FROM ${t.assign}`);
        await c.query(
          `INSERT INTO ${t.assign} (id, cluster)
           SELECT u.id, u.c FROM unnest($1::text[], $2::bigint[], $3::int[]) AS u(id, seq, c)
           JOIN ${t.items} i ON i.id = u.id AND i.seq = u.seq`,
          [ids, seqs, Array.from(assign)],
        );
        // Rows added or changed since k-means read them: their nearest centroid.
        await c.query(
          `INSERT INTO ${t.assign} (id, cluster)
           SELECT i.id, (SELECT c.id FROM ${t.clusters} c ORDER BY c.centroid <=> i.embedding LIMIT 1)
           FROM ${t.items} i WHERE NOT EXISTS (SELECT 1 FROM ${t.assign} a WHERE a.id = i.id)`,
        );
      },
      true,
    );
  }

  /**
   * Notes that indexing shard `shard` of `of` has finished; true when every shard of `of` has,
   * so that exactly one job (the last to finish) goes on to cluster the whole table.
   */
  async finishShard(shard: number, of: number, items: number): Promise<boolean> {
    return this.run(
      'shard',
      async (c) => {
        await c.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`sslkit:${this.loc.table}:shards`]);
        await c.query(
          `INSERT INTO ${this.t.shards} (shard, of_shards, items) VALUES ($1, $2, $3)
           ON CONFLICT (shard, of_shards) DO UPDATE SET items = excluded.items, finished_at = now()`,
          [shard, of, items],
        );
        return (await c.query(`SELECT count(*)::int AS n FROM ${this.t.shards} WHERE of_shards = $1`, [of])).rows[0].n === of;
      },
      true,
    );
  }

  /** The current clustering's centroids (k = 0 before the first). */
  async centroids(): Promise<{ k: number; centroids: Float32Array }> {
    const rows = await this.run(
      'clusters',
      async (c) => (await c.query(`SELECT centroid::text AS c FROM ${this.t.clusters} ORDER BY id`)).rows,
    );
    const centroids = new Float32Array(rows.length * this.dim);
    rows.forEach((r, i) => centroids.set(fromSql(r.c as string), i * this.dim));
    return { k: rows.length, centroids };
  }

  async reachable(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const ping = this.run('ping', (c) => c.query('SELECT 1')).then(
      () => true,
      () => false,
    );
    const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 2_000)));
    try {
      return await Promise.race([ping, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    // An index build in progress is cancelled (it leaves an invalid index that the next build replaces).
    const build = this.building;
    if (build?.pid) await this.pool.query('SELECT pg_cancel_backend($1)', [build.pid]).catch(() => {});
    await build?.done.catch(() => {});
    await this.pool.end();
  }
}
