/**
 * Downloads a dataset's files. Each goes to `NAME.part` first (resumed with an HTTP Range request
 * when a part exists and the server supports it, restarted otherwise), is verified against its
 * checksum, and only then renamed to its final name: a half or corrupt file is never taken for a
 * good one.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../core/errors.js';
import type { RemoteFile } from './sources.js';

export interface FetchOptions {
  /** Replace the canonical host with this base (a local mirror; tests use 127.0.0.1). */
  baseUrl?: string;
  onProgress?: (file: string, received: number, total: number | null) => void;
  log?: (line: string) => void;
}

export async function verifyFile(file: string, check: RemoteFile['check']): Promise<boolean> {
  const hash = crypto.createHash(check.kind === 'md5' ? 'md5' : 'sha256');
  const src = fs.createReadStream(file);
  try {
    if (check.kind === 'sha256-content' && file.replace(/\.part$/, '').endsWith('.gz')) await pipeline(src, zlib.createGunzip(), hash);
    else await pipeline(src, hash);
  } catch {
    return false; // truncated or corrupt gzip stream
  }
  return hash.digest('hex') === check.value;
}

async function download(url: string, part: string, o: FetchOptions, name: string): Promise<void> {
  const have = fs.existsSync(part) ? fs.statSync(part).size : 0;
  const res = await fetch(url, { headers: have > 0 ? { Range: `bytes=${have}-` } : {} });
  if (res.status === 416) return; // the part is already whole
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} ${res.statusText}`);
  const append = res.status === 206 && have > 0;
  const len = Number(res.headers.get('content-length'));
  const total = Number.isFinite(len) && len > 0 ? len + (append ? have : 0) : null;
  const out = fs.createWriteStream(part, { flags: append ? 'a' : 'w' });
  let received = append ? have : 0;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.length;
      if (!out.write(value)) await new Promise<void>((r) => out.once('drain', () => r()));
      o.onProgress?.(name, received, total);
    }
  } finally {
    await new Promise<void>((r) => out.end(r));
  }
  if (total !== null && received < total) throw new Error(`connection closed after ${received} of ${total} bytes`);
}

/** Fetches one file into `dir`; returns its path. Already-verified files are kept. */
export async function fetchFile(f: RemoteFile, dir: string, o: FetchOptions = {}): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  const final = path.join(dir, f.name);
  if (fs.existsSync(final) && (await verifyFile(final, f.check))) return final;
  const part = `${final}.part`;
  const urls = o.baseUrl ? [`${o.baseUrl.replace(/\/$/, '')}/${f.name}`] : f.urls;
  const errors: string[] = [];
  for (const url of urls) {
    // Two tries per address: a resume of what is there, then (after a bad checksum) a clean start.
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await download(url, part, o, f.name);
      } catch (e) {
        errors.push(`${url}: ${(e as Error).message}`);
        break; // keep the part: a later run resumes it
      }
      if (await verifyFile(part, f.check)) {
        fs.renameSync(part, final);
        return final;
      }
      errors.push(`${url}: checksum mismatch (${f.check.kind}), discarded the download`);
      fs.rmSync(part, { force: true });
    }
  }
  throw new UserError(`could not fetch ${f.name}: ${errors.join('; ')}`);
}
