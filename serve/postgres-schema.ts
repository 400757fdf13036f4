/**
 * The PostgreSQL index's location and schema. A URL names the database and, with `?table=NAME`,
 * the index (default `sslkit_index`); its tables are NAME (items), NAME_clusters (centroids),
 * NAME_assign (each item's cluster), NAME_meta (the identity: dimension, model, preprocessing;
 * the current clustering) and NAME_shards (indexing jobs that finished). `sslkit_schema` holds each index's schema version; each migration runs in
 * one transaction, under an advisory lock so that replicas and indexing jobs starting together
 * migrate once.
 */
import type pg from 'pg';
import { UserError } from '../core/errors.js';
import type { IndexData } from './index-file.js';

export interface PostgresLocation {
  /** For the driver: the URL without sslkit's own parameters. */
  connectionString: string;
  table: string;
  /** The URL with its password masked: the only form that is logged or shown. */
  redacted: string;
}

const TABLE_NAME = /^[a-z_][a-z0-9_]{0,39}$/;

export function parsePostgresUrl(url: string): PostgresLocation {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`not a valid PostgreSQL URL (expected postgres://user:password@host:port/database?table=NAME)`);
  }
  const table = u.searchParams.get('table') ?? 'sslkit_index';
  const masked = new URL(u);
  if (masked.password) masked.password = '***';
  if (!TABLE_NAME.test(table))
    throw new UserError(
      `${masked}: table=${table} is not a usable name: lower-case letters, digits and _, at most 40, not starting with a digit`,
    );
  u.searchParams.delete('table');
  return { connectionString: u.toString(), table, redacted: masked.toString() };
}

/** Quoted names of an index's tables (the name is validated, so quoting is enough). */
export function tablesOf(table: string) {
  return {
    items: `"${table}"`,
    clusters: `"${table}_clusters"`,
    assign: `"${table}_assign"`,
    meta: `"${table}_meta"`,
    shards: `"${table}_shards"`,
    seq: `"${table}_seq_seq"`,
    /** The HNSW index, made once the table reaches the search threshold (postgres-store.ts). */
    hnsw: `"${table}_hnsw"`,
  };
}

/** Every relation an index creates (tablesOf's, the tables' primary keys, the assignment index), unquoted. */
function relationsOf(table: string): string[] {
  const t = tablesOf(table);
  const unquoted = (name: string) => name.slice(1, -1);
  const tables = [t.items, t.clusters, t.assign, t.meta, t.shards].map(unquoted);
  return [...tables, ...tables.map((n) => `${n}_pkey`), unquoted(t.seq), unquoted(t.hnsw), `${table}_assign_cluster`];
}

export interface Identity {
  dim: number;
  model: IndexData['model'];
}

type Migration = (c: pg.PoolClient, table: string, create: Identity) => Promise<void>;

/** Migration i brings an index from schema version i to i + 1. */
const MIGRATIONS: Migration[] = [
  async (c, table, { dim, model }) => {
    const t = tablesOf(table);
    await c.query(`CREATE TABLE ${t.meta} (
      singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
      dim int NOT NULL,
      model jsonb NOT NULL,
      k int NOT NULL DEFAULT 0,
      clustering bigint NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL DEFAULT now())`);
    // seq changes on every write: a rebuild keeps k-means' assignment only for rows it read unchanged.
    await c.query(`CREATE TABLE ${t.items} (
      id text PRIMARY KEY,
      embedding vector(${dim}) NOT NULL,
      metadata jsonb NOT NULL DEFAULT '{}',
      seq bigserial NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now())`);
    // Cluster assignments live apart from the items: a rebuild rewrites them all without touching
    // (and re-indexing) a single item row.
    await c.query(`CREATE TABLE ${t.assign} (id text PRIMARY KEY, cluster int NOT NULL)`);
    await c.query(`CREATE INDEX "${table}_assign_cluster" ON ${t.assign} (cluster)`);
    await c.query(`CREATE TABLE ${t.clusters} (id int PRIMARY KEY, centroid vector(${dim}) NOT NULL)`);
    await c.query(`CREATE TABLE ${t.shards} (
      shard int NOT NULL,
      of_shards int NOT NULL,
      items int NOT NULL,
      finished_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (shard, of_shards))`);
    await c.query(`INSERT INTO ${t.meta} (dim, model) VALUES ($1, $2)`, [dim, JSON.stringify(model)]);
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings `table` to the current schema (creating it with `create`'s identity when it does not
 * exist) and returns its identity.
 */
export async function migrate(
  pool: pg.Pool,
  loc: PostgresLocation,
  create: Identity | undefined,
  log: (l: string) => void,
): Promise<Identity> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query(`SELECT pg_advisory_xact_lock(hashtext('sslkit:schema'))`);
    try {
      await c.query('CREATE EXTENSION IF NOT EXISTS vector');
    } catch (e) {
      throw new UserError(
        `${loc.redacted}: the pgvector extension is not available (${(e as Error).message}); install pgvector on the server, or have its owner run CREATE EXTENSION vector`,
      );
    }
    await c.query(`CREATE TABLE IF NOT EXISTS sslkit_schema (
      index_table text PRIMARY KEY,
      version int NOT NULL,
      migrated_at timestamptz NOT NULL DEFAULT now())`);
    const row = (await c.query('SELECT version FROM sslkit_schema WHERE index_table = $1', [loc.table])).rows[0] as
      { version: number } | undefined;
    const version = row?.version ?? 0;
    if (version > SCHEMA_VERSION)
      throw new UserError(
        `${loc.redacted}: index '${loc.table}' has schema version ${version}, this sslkit knows up to ${SCHEMA_VERSION}: upgrade sslkit`,
      );
    if (version === 0 && !create)
      throw new UserError(
        `${loc.redacted}: no index '${loc.table}' in this database; create it with 'sslkit index MODEL --data D --out URL'`,
      );
    if (version === 0) {
      // A new index must not land on tables of something else (another index's NAME_meta, sslkit_schema, …).
      const taken = (
        await c.query(
          `SELECT c.relname FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
             AND c.relname = ANY($1) ORDER BY c.relname`,
          [relationsOf(loc.table)],
        )
      ).rows.map((r) => r.relname as string);
      if (taken.length)
        throw new UserError(
          `${loc.redacted}: table=${loc.table} cannot be a new index here: it needs the names ${relationsOf(loc.table).slice(0, 5).join(', ')}, and ${taken.join(', ')} already exist${taken.length === 1 ? 's' : ''} in this database (another index's tables, or not sslkit's); choose another table name`,
        );
    }
    for (let v = version; v < SCHEMA_VERSION; v++) await MIGRATIONS[v](c, loc.table, create!);
    if (version < SCHEMA_VERSION) {
      await c.query(
        `INSERT INTO sslkit_schema (index_table, version) VALUES ($1, $2)
         ON CONFLICT (index_table) DO UPDATE SET version = excluded.version, migrated_at = now()`,
        [loc.table, SCHEMA_VERSION],
      );
      log(
        `${loc.redacted}: index '${loc.table}' ${version === 0 ? 'created' : `migrated from schema version ${version}`} (schema version ${SCHEMA_VERSION})`,
      );
    }
    const meta = (await c.query(`SELECT dim, model FROM ${tablesOf(loc.table).meta}`)).rows[0] as Identity;
    await c.query('COMMIT');
    return meta;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}
