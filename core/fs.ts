/**
 * Files: the one atomic writer every store uses (a crash mid-write leaves the previous file
 * intact), and the user cache folder (decoded data sets, conv-gradient plans, downloads).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Writes atomically: a temporary file in the same folder, then rename. */
export function writeFileAtomic(file: string, chunks: (Uint8Array | string)[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    for (const c of chunks) fs.writeSync(fd, typeof c === 'string' ? Buffer.from(c) : c);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** `$SSLKIT_CACHE`, else `$XDG_CACHE_HOME/sslkit`, else `~/.cache/sslkit`. */
export function cacheDir(): string {
  if (process.env.SSLKIT_CACHE) return process.env.SSLKIT_CACHE;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'sslkit');
}
