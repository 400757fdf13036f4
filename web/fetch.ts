/** fetch() with download progress, and errors that say which file failed and why. */
import type { Progress } from './types.js';

/**
 * Several downloads with one progress report over all of them. Sizes come from the caller where
 * it knows them: a compressed response's content-length counts compressed bytes, while the
 * stream yields decoded ones.
 */
export function fetchAll(files: { url: string; what: string; bytes?: number }[], onProgress?: Progress): Promise<Uint8Array>[] {
  const loaded = files.map(() => 0);
  const totals = files.map((f) => f.bytes ?? 0);
  const report = () =>
    onProgress?.(
      loaded.reduce((a, b) => a + b, 0),
      totals.every((t) => t > 0) ? totals.reduce((a, b) => a + b, 0) : 0,
    );
  return files.map((f, i) =>
    fetchBytes(f.url, f.what, (l, t) => {
      loaded[i] = l;
      if (!f.bytes) totals[i] = t;
      report();
    }),
  );
}

export async function fetchBytes(url: string, what: string, onProgress?: Progress): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`${what}: could not fetch ${url} (${(e as Error).message})`, { cause: e });
  }
  if (!res.ok) throw new Error(`${what}: ${url} answered ${res.status} ${res.statusText}`);
  // A compressed response's content-length is not the size of what the stream yields.
  const total = res.headers.get('content-encoding') ? 0 : Number(res.headers.get('content-length')) || 0;
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress?.(loaded, total);
  }
  const out = new Uint8Array(loaded);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
