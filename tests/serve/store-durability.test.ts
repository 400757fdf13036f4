/**
 * The index store on real files (issue 18): a torn last log record is cut off so the next
 * acknowledged write survives; the log is checkpointed by size and replayed record by record; a
 * crash between a snapshot and the log's truncation replays nothing twice (cluster ids stay those
 * of the new clustering); stale temporaries are removed at open; an unframed log from an earlier
 * version is still replayed; non-finite and zero vectors are refused.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { saveIndex } from '../../serve/index-file.js';
import { FileIndex } from '../../serve/file-store.js';
import { Rng } from '../../core/random.js';
import { normalizeRows } from '../../core/vectors.js';
import { tmpDir } from '../helpers.js';

const DIM = 8;

function vectors(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(n * DIM);
  for (let i = 0; i < x.length; i++) x[i] = rng.next() - 0.5;
  return normalizeRows(x, DIM);
}

/** A fresh index of `n` items with 2 clusters (all in cluster 0, as a first clustering). */
function makeIndex(n = 20): string {
  const file = path.join(tmpDir(), 'g.idx');
  const v = vectors(n, 1);
  saveIndex(file, {
    dim: DIM,
    metric: 'cosine',
    model: { file: 'm.onnx', bytes: 0, embeddingDim: DIM, metadata: {} },
    items: Array.from({ length: n }, (_, i) => ({ id: `base${i}` })),
    vectors: v,
    clusters: { k: 2, centroids: Float32Array.from(v.subarray(0, 2 * DIM)), assign: new Int32Array(n) },
  });
  return file;
}

const entry = (id: string, seed: number) => ({ item: { id }, vector: vectors(1, seed) });

describe('index store durability', () => {
  it('a torn last record is cut off at open, and the next acknowledged write survives a restart', () => {
    const file = makeIndex();
    let s = FileIndex.open(file);
    s.add([entry('a', 10)]);
    s.close(); // no snapshot: as after kill -9
    // A crash mid-append: half of a record's frame and payload.
    const wal = `${file}.wal`;
    const intact = fs.statSync(wal).size;
    fs.appendFileSync(wal, Buffer.concat([Buffer.from([200, 0, 0, 0, 1, 2, 3, 4]), Buffer.from('{"lsn":2,"ops":[{"op":"add"')]));
    const lines: string[] = [];
    s = FileIndex.open(file, { log: (l) => lines.push(l) });
    expect(s.replay.truncatedBytes).toBe(8 + 27);
    expect(lines.join('\n')).toMatch(/cut off 35 bytes of a torn or damaged last record/);
    expect(fs.statSync(wal).size).toBe(intact);
    expect(s.has('a')).toBe(true);
    s.add([entry('b', 11)]);
    s.close();
    s = FileIndex.open(file);
    expect([s.has('a'), s.has('b'), s.count]).toEqual([true, true, 22]);
    s.close();
  });

  it('a record whose checksum fails ends replay there', () => {
    const file = makeIndex();
    let s = FileIndex.open(file);
    s.add([entry('a', 10)]);
    s.add([entry('b', 11)]);
    s.close();
    const wal = `${file}.wal`;
    const bytes = fs.readFileSync(wal);
    bytes[bytes.length - 5] ^= 0xff; // inside the second record's payload
    fs.writeFileSync(wal, bytes);
    s = FileIndex.open(file);
    expect([s.has('a'), s.has('b')]).toEqual([true, false]);
    s.close();
  });

  it('the log is checkpointed by size: it stays bounded, and everything is there after a restart', () => {
    const file = makeIndex();
    let s = FileIndex.open(file, { walMaxBytes: 4096 });
    for (let i = 0; i < 200; i++) {
      s.add([entry(`x${i}`, 100 + i)]);
      expect(fs.statSync(`${file}.wal`).size).toBeLessThanOrEqual(4096);
    }
    s.delete('x7');
    s.close();
    s = FileIndex.open(file);
    expect(s.count).toBe(20 + 199);
    expect([s.has('x0'), s.has('x7'), s.has('x199')]).toEqual([true, false, true]);
    s.close();
  });

  it('a crash between the snapshot and the log truncation replays nothing twice: clusters stay the new ones', async () => {
    const file = makeIndex();
    let s = FileIndex.open(file);
    s.add([entry('a', 10), entry('b', 11)]);
    s.add([entry('c', 12)]);
    const logBefore = fs.readFileSync(`${file}.wal`);
    await s.rebuildClusters(4);
    const after = Array.from(s.clusters.assign);
    const ids = s.view().items.map((it) => it.id);
    s.close();
    // As if the process died after writing the snapshot but before emptying the log.
    fs.writeFileSync(`${file}.wal`, logBefore);
    s = FileIndex.open(file);
    expect(s.view().items.map((it) => it.id)).toEqual(ids);
    expect(Array.from(s.clusters.assign)).toEqual(after);
    expect(s.clusters.k).toBe(4);
    s.close();
  });

  it('writes made while a rebuild runs are kept and assigned to the new centroids', async () => {
    const file = makeIndex(400);
    const s = FileIndex.open(file);
    const rebuild = s.rebuildClusters(3);
    s.add([entry('during', 77)]);
    s.delete('base3');
    await expect(s.rebuildClusters(3)).rejects.toMatchObject({ status: 409, code: 'rebuild_in_progress' });
    const c = await rebuild;
    expect(c.k).toBe(3);
    const search = s.search();
    const row = s.view().items.findIndex((it) => it.id === 'during');
    expect(s.clusters.assign[row]).toBe(search.assign(vectors(1, 77)).cluster);
    expect(s.count).toBe(400);
    expect(s.has('base3')).toBe(false);
    s.close();
  });

  it('stale temporaries of a dead writer are removed at open; an unframed log of an earlier version is replayed once', () => {
    const file = makeIndex();
    const dead = 2 ** 22 + 12345; // above Linux's default pid_max
    const stale = [`${file}.${dead}.1700000000000.tmp`, `${file}.hnsw.${dead}.tmp`];
    for (const f of stale) fs.writeFileSync(f, 'partial');
    const unrelated = path.join(path.dirname(file), 'other.1.tmp');
    fs.writeFileSync(unrelated, 'x');
    // The old format: one JSON op per line, vectors as base64.
    const v = Buffer.from(vectors(1, 5).buffer).toString('base64');
    fs.writeFileSync(`${file}.wal`, `${JSON.stringify({ op: 'add', item: { id: 'old' }, vector: v, cluster: 1 })}\n{"op":"del`);
    const s = FileIndex.open(file);
    for (const f of stale) expect(fs.existsSync(f)).toBe(false);
    expect(fs.existsSync(unrelated)).toBe(true);
    expect(s.replay.legacy).toBe(true);
    expect(s.has('old')).toBe(true);
    s.close();
    expect(fs.readFileSync(`${file}.wal`).subarray(0, 8).toString()).toBe('SSLWAL2\n');
    const again = FileIndex.open(file);
    expect([again.has('old'), again.count]).toEqual([true, 21]);
    again.close();
  });

  it('refuses non-finite and all-zero vectors before logging them', () => {
    const file = makeIndex();
    const s = FileIndex.open(file);
    const inf = new Float32Array(DIM).fill(0.1);
    inf[3] = Infinity;
    expect(() => s.add([{ item: { id: 'inf' }, vector: inf }])).toThrow(/\[3\] is Infinity, not a finite float32 value/);
    expect(() => s.checkVector(Array(DIM).fill(1e39))).toThrow(/not a finite float32 value/);
    expect(() => s.add([{ item: { id: 'zero' }, vector: new Float32Array(DIM) }])).toThrow(/all zeros/);
    expect(s.has('inf') || s.has('zero')).toBe(false);
    s.close();
  });
});
