/**
 * A throw-away PostgreSQL 15 cluster with pgvector for tests: initdb and pg_ctl run as the
 * `postgres` user (PostgreSQL refuses root) on a free loopback port, in a temporary folder that
 * `remove()` deletes. `.ci/run` installs Debian's postgresql and builds the vendored pgvector.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execFile, execFileSync } from 'node:child_process';
import pg from 'pg';
import { tmpDir } from './helpers.js';

const BIN = '/usr/lib/postgresql/15/bin';
export const hasPostgres = fs.existsSync(path.join(BIN, 'initdb')) && fs.existsSync('/usr/share/postgresql/15/extension/vector.control');

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

export interface TestPostgres {
  port: number;
  /** A URL for `table` in the cluster's `postgres` database. */
  url(table: string): string;
  /** One statement on a connection of its own (as the superuser), its rows. */
  query(sql: string, params?: unknown[]): Promise<Record<string, any>[]>;
  /** pg_ctl stop: `fast` (the default) ends sessions cleanly, `immediate` like a crash. */
  stop(mode?: 'fast' | 'immediate'): void;
  /** The same without blocking this process (its clients go on meanwhile). */
  stopAsync(mode?: 'fast' | 'immediate'): Promise<void>;
  startAsync(): Promise<void>;
  start(): void;
  remove(): void;
}

export async function startPostgres(): Promise<TestPostgres> {
  const dir = tmpDir('sslkit-pg-');
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
  fs.chownSync(dir, uid, gid);
  const data = path.join(dir, 'data');
  const as = (cmd: string, args: string[]) =>
    execFileSync('runuser', ['-u', 'postgres', '--', path.join(BIN, cmd), ...args], { stdio: 'pipe' });
  as('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const port = await freePort();
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=100`;
  const start = () => as('pg_ctl', ['-D', data, '-o', opts, '-l', path.join(dir, 'log'), '-w', 'start']);
  const stop = (mode: 'fast' | 'immediate' = 'fast') => as('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
  const asAsync = (cmd: string, args: string[]) =>
    new Promise<void>((resolve, reject) =>
      execFile('runuser', ['-u', 'postgres', '--', path.join(BIN, cmd), ...args], (e) => (e ? reject(e) : resolve())),
    );
  start();
  return {
    stopAsync: (mode = 'fast') => asAsync('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']),
    startAsync: () => asAsync('pg_ctl', ['-D', data, '-o', opts, '-l', path.join(dir, 'log'), '-w', 'start']),
    port,
    url: (table) => `postgres://postgres@127.0.0.1:${port}/postgres?table=${table}`,
    query: async (sql, params) => {
      const c = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
      await c.connect();
      try {
        return (await c.query(sql, params)).rows;
      } finally {
        await c.end();
      }
    },
    start,
    stop,
    remove: () => {
      try {
        as('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already stopped
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
