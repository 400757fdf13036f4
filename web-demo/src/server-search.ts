/** The "query the server" path: the sslkit service's /v1/search, its hits as the page's neighbours. */
import type { Gallery, Neighbour } from '../../web/gallery.js';

/** A Blob as a data URL (what /v1/search takes as `image`). */
export function dataUrl(blob: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result as string);
    r.onerror = () => reject(r.error);
    r.readAsDataURL(blob);
  });
}

/** The k nearest gallery items by the service at `apiBase`; a failure says what the server answered. */
export async function serverSearch(apiBase: string, g: Gallery, image: string, k: number): Promise<Neighbour[]> {
  const res = await fetch(`${apiBase}/v1/search`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ image, k }),
  });
  const body = await res.json().catch(() => null);
  if (!res.ok || !body) throw new Error(`server search failed: ${body?.error?.message ?? `HTTP ${res.status}, not the sslkit API`}`);
  const row = new Map(g.manifest.ids.map((id, i) => [id, i]));
  return (body.data as { id: string; score: number }[]).map((n) => {
    const i = row.get(n.id) ?? -1;
    return { index: i, id: n.id, score: n.score, label: i >= 0 ? g.label(i) : null };
  });
}
