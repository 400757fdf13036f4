/**
 * The file store when the disk or a second process works against it (issue 36, items 2, 3, 9),
 * each with real `sslkit serve` processes over real HTTP:
 * - a full disk (a file-size limit set on the running service with prlimit: writes past it get
 *   a short write, then EFBIG, as on a full file system) refuses writes with 507 and a log line,
 *   cuts the log back, and loses no acknowledged write through `kill -9` after space returns;
 * - a second service on the same file is refused naming the first; after `kill -9` of the first
 *   its stale lock is taken over; `sslkit index` over a served file is refused;
 * - a snapshot that cannot be written: a rebuild answers 507 and changes nothing, and SIGTERM
 *   logs, exits 0 and keeps every write in the log for the next start.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIndex } from '../../serve/build-index.js';
import { loadIndex } from '../../serve/index-file.js';
import { FileStore } from '../../serve/file-store.js';
import { FASHION_DIR, hasFashion, httpJson, isolatedCache, serveProcess, tinyModel, tmpDir } from '../helpers.js';

const hasPrlimit = (() => {
  try {
    execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.runIf(hasFashion)('the file store under faults', () => {
  let model: string;
  let dim: number;
  let base: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    isolatedCache();
    model = await tinyModel();
    base = path.join(tmpDir(), 'base.idx');
    await buildIndex(model, base, { data: 'fashion-mnist', dataDir: FASHION_DIR, limit: 50, log: () => {} });
    dim = loadIndex(base).dim;
  }, 180_000);
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
  });

  /** A fresh copy of the small index. */
  const freshIndex = () => {
    const file = path.join(tmpDir(), 'g.idx');
    fs.copyFileSync(base, file);
    return file;
  };
  const vec = (i: number) => Array.from({ length: dim }, (_, j) => Math.cos(i * 3.7 + j * 1.3));
  const start = async (index: string) => {
    const s = await serveProcess(['--model', model, '--index', index]);
    children.push(s.child);
    return s;
  };
  /** True when a search for id i's vector finds it first. */
  const found = async (url: string, i: number) =>
    (await httpJson(`${url}/v1/search`, { embedding: vec(i), k: 1 })).body.data[0].id === `w${i}`;

  it.runIf(hasPrlimit)('a full disk: writes get 507 and a log line, the log is cut back, and no acknowledged write is lost', async () => {
    const index = freshIndex();
    const s = await start(index);
    // From now on the service can write files of at most 120 kB: the log fills up after a few writes.
    execFileSync('prlimit', ['--pid', String(s.child.pid), '--fsize=120000:unlimited']);
    const note = 'n'.repeat(12_000);
    const acked: number[] = [];
    const refused: { status: number; code: string }[] = [];
    for (let i = 0; i < 16; i++) {
      const r = await httpJson(`${s.url}/v1/index/items`, { items: [{ id: `w${i}`, embedding: vec(i), metadata: { note } }] });
      if (r.status === 201) acked.push(i);
      else refused.push({ status: r.status, code: r.body.error.code });
    }
    expect(acked.length).toBeGreaterThan(3);
    expect(refused.length).toBeGreaterThan(3);
    expect(refused.every((r) => r.status === 507 && r.code === 'insufficient_storage')).toBe(true);
    // Acknowledged writes came first; every refused one after the disk filled.
    expect(acked).toEqual(acked.map((_, j) => j));
    expect(s.output()).toMatch(/g\.idx\.wal: a write was refused and not stored: .*EFBIG/);
    // The log holds exactly the acknowledged records: no fragment of the refused ones.
    const wal = fs.statSync(`${index}.wal`).size;
    expect(wal).toBeLessThanOrEqual(120_000);
    // Space again: later writes are appended after the last whole record, not after a fragment.
    execFileSync('prlimit', ['--pid', String(s.child.pid), '--fsize=unlimited:unlimited']);
    for (let i = 100; i < 110; i++) {
      const r = await httpJson(`${s.url}/v1/index/items`, { items: [{ id: `w${i}`, embedding: vec(i), metadata: { note } }] });
      expect(r.status).toBe(201);
      acked.push(i);
    }
    s.child.kill('SIGKILL');
    await s.exited;
    const again = await start(index);
    try {
      expect(again.output()).not.toMatch(/cut off/);
      expect((await httpJson(`${again.url}/readyz`)).body.index).toBe(50 + acked.length);
      for (const i of acked) expect(await found(again.url, i), `w${i}`).toBe(true);
    } finally {
      again.child.kill('SIGTERM');
      expect(await again.exited).toBe(0);
    }
  });

  it('a second service on the same file is refused naming the first; a dead one’s lock is taken over; sslkit index waits its turn', async () => {
    const index = freshIndex();
    const first = await start(index);
    const err = await start(index).then(
      () => null,
      (e: { output: string; code: number }) => e,
    );
    expect(err?.code).not.toBe(0);
    expect(err?.output).toMatch(
      new RegExp(
        `g\\.idx: it is open for writing by pid ${first.child.pid} on .* since .*One process writes an index file; several replicas need a PostgreSQL index`,
      ),
    );
    // The first went on serving its writes undisturbed.
    expect((await httpJson(`${first.url}/v1/index/items`, { items: [{ id: 'w1', embedding: vec(1) }] })).status).toBe(201);
    // Replacing the file under it is refused too, before any image is embedded.
    await expect(buildIndex(model, index, { data: 'fashion-mnist', dataDir: FASHION_DIR, limit: 10, log: () => {} })).rejects.toThrow(
      /it is open for writing by pid/,
    );
    first.child.kill('SIGKILL');
    await first.exited;
    const second = await start(index);
    try {
      expect(second.output()).toMatch(new RegExp(`took over the lock of a writer that is gone \\(pid ${first.child.pid}`));
      expect(await found(second.url, 1)).toBe(true);
    } finally {
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    }
    // A clean shutdown leaves no lock behind.
    expect(fs.existsSync(`${index}.lock`)).toBe(false);
  });

  it('one lock per file, whatever the spelling of its path', async () => {
    const index = freshIndex();
    const a = FileStore.open(index);
    try {
      expect(() => FileStore.open(path.relative(process.cwd(), index))).toThrow(/this process already has it open/);
      expect(() => FileStore.open(`${path.dirname(index)}/./${path.basename(index)}`)).toThrow(/this process already has it open/);
    } finally {
      await a.close();
    }
    // Closed: the file can be opened again.
    await FileStore.open(index).close();
  });

  it.runIf(hasPrlimit)(
    'a snapshot that cannot be written: the rebuild answers 507 and changes nothing; SIGTERM logs, exits 0 and loses nothing',
    async () => {
      const index = freshIndex();
      const s = await start(index);
      const clustersBefore = (await httpJson(`${s.url}/v1/clusters`)).body;
      // The snapshot (the whole index) no longer fits; a log record still does.
      const snapshotBytes = fs.statSync(index).size;
      execFileSync('prlimit', ['--pid', String(s.child.pid), `--fsize=${Math.floor(snapshotBytes / 2)}:unlimited`]);
      for (let i = 0; i < 5; i++)
        expect((await httpJson(`${s.url}/v1/index/items`, { items: [{ id: `w${i}`, embedding: vec(i) }] })).status).toBe(201);
      const rebuilt = await httpJson(`${s.url}/v1/clusters/rebuild`, { k: 3 });
      expect([rebuilt.status, rebuilt.body.error.code]).toEqual([507, 'insufficient_storage']);
      expect(s.output()).toMatch(/the cluster rebuild was dropped, its snapshot could not be written/);
      const clustersAfter = (await httpJson(`${s.url}/v1/clusters`)).body;
      expect(clustersAfter.k).toBe(clustersBefore.k);
      expect(clustersAfter.clusters.reduce((t: number, c: { size: number }) => t + c.size, 0)).toBe(55);
      // No temporary file of the failed snapshot is left.
      expect(fs.readdirSync(path.dirname(index)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      s.child.kill('SIGTERM');
      expect(await s.exited).toBe(0);
      expect(s.output()).toMatch(/the snapshot could not be written on shutdown .*nothing is lost: g\.idx\.wal holds every write/);
      const again = await start(index);
      try {
        expect((await httpJson(`${again.url}/readyz`)).body.index).toBe(55);
        for (let i = 0; i < 5; i++) expect(await found(again.url, i)).toBe(true);
      } finally {
        again.child.kill('SIGTERM');
        expect(await again.exited).toBe(0);
      }
    },
  );
});
