// Offline support. At install: the app shell from precache.json (the built files, versioned by
// their hashed names, less onnxruntime's WebAssembly runtimes: the page keeps the one it chose
// with a 'keep' message) and, where this host serves them, the default model and gallery. Hashed
// assets are answered from the cache first (they never change); everything else goes to the
// network first, so a retrained model or a new gallery shows up, with the cache as the fallback.
// API calls (/v1/...) are never cached.
const PREFIX = 'sslkit-demo-';
let current = null;

async function cacheName() {
  if (current) return current;
  const names = (await caches.keys()).filter((n) => n.startsWith(PREFIX));
  current = names[names.length - 1] ?? `${PREFIX}unversioned`;
  return current;
}

async function precache() {
  const list = await (await fetch('precache.json', { cache: 'no-cache' })).json();
  current = `${PREFIX}${list.version}`;
  const cache = await caches.open(current);
  await cache.addAll(list.files.filter((f) => !/ort-wasm[^/]*\.wasm$/.test(f)));
  // The default model and gallery (sslkit serve --gallery, or sslkit demo's static site).
  try {
    const manifestUrl = 'demo/gallery/manifest.json';
    const res = await fetch(manifestUrl, { cache: 'no-cache' });
    if (!res.ok) return;
    const m = await res.clone().json();
    await cache.put(manifestUrl, res);
    const files = [m.embeddings, m.clusters?.file, ...(m.thumbs?.sheets ?? [])].filter(Boolean).map((f) => `demo/gallery/${f}`);
    await cache.addAll(['demo/model.onnx', ...files]);
  } catch {
    // another layout: these are cached as the page loads them
  }
}

self.addEventListener('install', (e) => e.waitUntil(precache().then(() => self.skipWaiting())));
self.addEventListener('activate', (e) =>
  e.waitUntil(
    (async () => {
      const keep = await cacheName();
      for (const n of await caches.keys()) if (n.startsWith(PREFIX) && n !== keep) await caches.delete(n);
      await self.clients.claim();
    })(),
  ),
);
// The page's 'keep' message: files to hold for offline use, answered { ok } on the given port.
self.addEventListener('message', (e) => {
  if (e.data?.type !== 'keep') return;
  const reply = (ok) => e.ports[0]?.postMessage({ ok });
  e.waitUntil(
    (async () => {
      const cache = await caches.open(await cacheName());
      for (const url of e.data.urls) if (!(await cache.match(url))) await cache.add(url);
    })().then(
      () => reply(true),
      () => reply(false),
    ),
  );
});
self.addEventListener('fetch', (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== 'GET' || url.origin !== location.origin || url.pathname.includes('/v1/')) return;
  const immutable = url.pathname.includes('/assets/');
  e.respondWith(
    (async () => {
      const cache = await caches.open(await cacheName());
      if (immutable) {
        const hit = await cache.match(e.request);
        if (hit) return hit;
      }
      try {
        const res = await fetch(e.request);
        if (res.ok) await cache.put(e.request, res.clone());
        return res;
      } catch {
        return (await cache.match(e.request, { ignoreSearch: true })) ?? Response.error();
      }
    })(),
  );
});
