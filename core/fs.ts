/**
 * Files: the one atomic writer every store uses (a crash mid-write leaves the previous file
 * intact), and the user cache folder (decoded data sets, conv-gradient plans, downloads).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Writes every byte of `buf` at the file's position: write(2) may write fewer bytes than asked
 * (a disk that fills up, a file-size limit) and only the next call reports the error.
 */
export function writeAll(fd: number, buf: Uint8Array): void {
  for (let done = 0; done < buf.length;) {
    const n = fs.writeSync(fd, buf, done, buf.length - done);
    if (n <= 0) throw Object.assign(new Error(`write returned ${n} with ${buf.length - done} bytes to go`), { code: 'EIO' });
    done += n;
  }
}

/** ENOSPC, EDQUOT and EFBIG: the storage is full (or the file at its size limit), not broken. */
export const isOutOfSpace = (e: unknown): boolean => ['ENOSPC', 'EDQUOT', 'EFBIG'].includes((e as NodeJS.ErrnoException).code ?? '');

/**
 * Writes atomically: a temporary file in the same folder, synced, then renamed over `file`, then
 * the folder synced so the rename itself survives a power cut. On any failure the temporary file
 * is removed and `file` is as it was.
 */
export function writeFileAtomic(file: string, chunks: (Uint8Array | string)[]): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    try {
      for (const c of chunks) writeAll(fd, typeof c === 'string' ? Buffer.from(c) : c);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  syncDir(dir);
}

/** fsync of a folder (its entries); some file systems refuse it, which changes nothing here. */
function syncDir(dir: string): void {
  let fd = -1;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // not supported here
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

/** The SHA-256 of a file's bytes, in hex. */
export function fileSha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** `$SSLKIT_CACHE`, else `$XDG_CACHE_HOME/sslkit`, else `~/.cache/sslkit`. */
export function cacheDir(): string {
  if (process.env.SSLKIT_CACHE) return process.env.SSLKIT_CACHE;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'sslkit');
}
