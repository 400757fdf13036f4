/**
 * The index's write-ahead log (`INDEX.wal`): framed records after an 8-byte header.
 *   "SSLWAL2\n" + records of [payload bytes u32 LE][CRC-32 of the payload u32 LE][payload: JSON]
 * Every record carries a log sequence number (LSN); the snapshot stores the last LSN it holds, so
 * records at or below it are skipped on replay and a crash between writing a snapshot and
 * truncating the log replays nothing twice. Replay reads record by record (never the whole log as
 * one string) and stops at the first record that is short or fails its checksum, a crash's torn
 * tail, which it cuts off so that the next write is not appended onto the fragment.
 * Logs from before the framing (one JSON op per line) are still replayed, once.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import { writeAll } from '../core/fs.js';
import type { IndexItem } from './index-file.js';

export type WalOp = { op: 'add'; item: IndexItem; vector: string; cluster: number } | { op: 'delete'; id: string };
export interface WalRecord {
  lsn: number;
  ops: WalOp[];
}

const HEADER = Buffer.from('SSLWAL2\n');
/** A record longer than this is damage, not data (a batch is at most a request body). */
const MAX_RECORD_BYTES = 1 << 30;

export interface ReplayResult {
  /** The highest LSN in the log (0 when none). */
  lastLsn: number;
  /** Bytes cut off the end: a torn or damaged tail. */
  truncatedBytes: number;
  /** The log was in the unframed format of earlier versions. */
  legacy: boolean;
}

export function frame(record: WalRecord): Buffer {
  const payload = Buffer.from(JSON.stringify(record));
  const head = Buffer.alloc(8);
  head.writeUInt32LE(payload.length, 0);
  head.writeUInt32LE(zlib.crc32(payload), 4);
  return Buffer.concat([head, payload]);
}

/** Calls `apply` for each intact record in order, repairs a torn tail, and says what it found. */
export function replayWal(file: string, apply: (r: WalRecord) => void): ReplayResult {
  const result: ReplayResult = { lastLsn: 0, truncatedBytes: 0, legacy: false };
  if (!fs.existsSync(file)) return result;
  const fd = fs.openSync(file, 'r+');
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return result;
    const magic = Buffer.alloc(HEADER.length);
    fs.readSync(fd, magic, 0, magic.length, 0);
    if (!magic.equals(HEADER)) {
      result.legacy = true;
      replayLegacy(fd, size, apply);
      return result;
    }
    let at = HEADER.length;
    const head = Buffer.alloc(8);
    while (at < size) {
      if (at + 8 > size || fs.readSync(fd, head, 0, 8, at) !== 8) break;
      const len = head.readUInt32LE(0);
      if (len > MAX_RECORD_BYTES || at + 8 + len > size) break;
      const payload = Buffer.alloc(len);
      fs.readSync(fd, payload, 0, len, at + 8);
      if (zlib.crc32(payload) !== head.readUInt32LE(4)) break;
      let record: WalRecord;
      try {
        record = JSON.parse(payload.toString('utf8')) as WalRecord;
      } catch {
        break;
      }
      apply(record);
      result.lastLsn = Math.max(result.lastLsn, record.lsn);
      at += 8 + len;
    }
    if (at < size) {
      fs.ftruncateSync(fd, at);
      fs.fsyncSync(fd);
      result.truncatedBytes = size - at;
    }
    return result;
  } finally {
    fs.closeSync(fd);
  }
}

/** One JSON op per line, read in chunks; a torn last line is dropped. */
function replayLegacy(fd: number, size: number, apply: (r: WalRecord) => void): void {
  const chunk = Buffer.alloc(1 << 20);
  let rest = Buffer.alloc(0);
  for (let at = 0; at < size;) {
    const n = fs.readSync(fd, chunk, 0, chunk.length, at);
    if (n <= 0) break;
    at += n;
    let buf = Buffer.concat([rest, chunk.subarray(0, n)]);
    for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10)) {
      const line = buf.subarray(0, nl).toString('utf8');
      buf = buf.subarray(nl + 1);
      try {
        // Unnumbered: applied whatever the snapshot holds (replay is idempotent for these).
        if (line.trim()) apply({ lsn: 0, ops: [JSON.parse(line) as WalOp] });
      } catch {
        // a torn line
      }
    }
    rest = Buffer.from(buf);
  }
}

/**
 * Appends framed records, each fsync'd before append() returns. An append that fails (a full
 * disk, a short write, a failed fsync) cuts the log back to where it was before it throws, so
 * that no later record is ever written after a fragment (replay stops at the first bad record,
 * and would drop every acknowledged write behind it). While the log cannot be cut back, every
 * append is refused.
 */
export class WalWriter {
  private fd: number;
  private bytes: number;
  /** The log may end in a fragment of a failed append: cut it off before the next one. */
  private dirty = false;

  constructor(readonly file: string) {
    this.fd = fs.openSync(file, 'a');
    this.bytes = fs.fstatSync(this.fd).size;
    if (this.bytes === 0) this.reset();
  }

  /** Bytes in the log, header included. */
  get size(): number {
    return this.bytes;
  }

  append(record: WalRecord): void {
    if (this.dirty) this.cutBack();
    // A reset that could not write the header left an empty log: the header goes first.
    const b = this.bytes === 0 ? Buffer.concat([HEADER, frame(record)]) : frame(record);
    try {
      writeAll(this.fd, b); // O_APPEND: each write lands at the end, after what the last one wrote
      fs.fsyncSync(this.fd);
    } catch (e) {
      this.dirty = true;
      try {
        this.cutBack();
      } catch {
        // Still dirty: the next append tries again before it writes.
      }
      throw e;
    }
    this.bytes += b.length;
  }

  /** Truncates the log to its last whole record. */
  private cutBack(): void {
    fs.ftruncateSync(this.fd, this.bytes);
    fs.fsyncSync(this.fd);
    this.dirty = false;
  }

  /** Empties the log to its header (after a snapshot that holds everything in it). */
  reset(): void {
    fs.ftruncateSync(this.fd, 0);
    this.bytes = 0;
    this.dirty = true; // until the header is written whole
    writeAll(this.fd, HEADER);
    fs.fsyncSync(this.fd);
    this.bytes = HEADER.length;
    this.dirty = false;
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
