/**
 * `sslkit serve`: the embedding, retrieval and clustering service on onnxruntime-node (express).
 * Loads the model (and index), batches concurrent requests, and on SIGTERM/SIGINT stops taking
 * connections, drains in-flight work and snapshots the index.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import express from 'express';
import { ModelThread } from './model-thread.js';
import { resolveProvider, type Device } from '../core/runtime/session.js';
import { Batcher } from './batcher.js';
import { DEFAULT_METADATA_LIMITS, type IndexStore } from './store.js';
import { openIndexStore } from './open-store.js';
import { DEFAULT_ANN_THRESHOLD, DEFAULT_EF_SEARCH } from './index-policy.js';
import { checkIdentity, modelIdentity } from './identity.js';
import { createMetrics } from './metrics.js';
import { apiKeyAuth } from './auth.js';
import { errorBody, errorHandler, ApiError } from './errors.js';
import { embeddingsRoute } from './routes/embeddings.js';
import { searchRoutes } from './routes/search.js';
import { indexItemRoutes } from './routes/index-items.js';
import { systemRoutes } from './routes/system.js';
import { regularFilesIn, staticAssets } from './static-assets.js';
import type { ServeContext } from './context.js';
import { UserError } from '../core/errors.js';

/** The gallery must exist and hold this model's embedding size. */
function checkGallery(dir: string, dim: number, model: string): void {
  const file = path.join(dir, 'manifest.json');
  if (!fs.existsSync(file))
    throw new UserError(`${dir}: no gallery here (manifest.json missing); write one with 'sslkit index MODEL --gallery ${dir}'`);
  let m: { format?: string; dim?: number };
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`${file}: not valid JSON`, { cause: e });
  }
  if (m.format !== 'sslkit-gallery') throw new UserError(`${file}: not an sslkit gallery`);
  if (m.dim !== dim)
    throw new UserError(`${dir} holds ${m.dim}-d embeddings but ${model} gives ${dim}-d ones: index the gallery with this model`);
}

export interface ServeOptions {
  model: string;
  /** An index file, or a PostgreSQL URL (postgres://user:password@host:port/db?table=NAME). */
  index?: string;
  port?: number;
  host?: string;
  device?: Device;
  threads?: number;
  maxBatch?: number;
  maxDelayMs?: number;
  maxQueue?: number;
  timeoutMs?: number;
  maxBodyBytes?: number;
  /** Images one request may carry (JSON array, multipart files, or items with images). */
  maxImages?: number;
  maxPixels?: number;
  /** Largest metadata of one index item, as JSON bytes (default 16 KiB). */
  maxMetadataBytes?: number;
  /** Most metadata keys of one index item (default 64). */
  maxMetadataKeys?: number;
  /** Longest wait, on shutdown, for requests in flight before their connections are cut. */
  drainMs?: number;
  /** Longest time a client may take to send one request (headers and body). */
  requestTimeoutMs?: number;
  apiKey?: string;
  apiKeyScope?: 'all' | 'writes';
  cors?: boolean;
  /** Preprocessing JSON for a model whose metadata lacks it (as given to `sslkit index`). */
  preprocessing?: string;
  /** For [N, T, D] outputs: the CLS token or the mean of all tokens. */
  pooling?: 'cls' | 'mean';
  /** Index size from which searches use HNSW (approximate). */
  annThreshold?: number;
  /** pgvector's hnsw.ef_search when a search request gives none. */
  efSearch?: number;
  /** Serve an index of the float model with its int8 quantization (or the other way round). */
  allowRequantized?: boolean;
  /**
   * A gallery from `sslkit index --gallery`: turns on the web demo, the page at / with this model
   * at /demo/model.onnx and the gallery at /demo/gallery/.
   */
  gallery?: string;
  /** The built page to serve at / with a gallery (`ensureDemoBuilt()` of web-demo/build.ts: building it is the caller's step, not the server's). */
  staticDir?: string;
  log?: (line: string) => void;
}

/** Every default of the service's options, declared once: startServer fills them in, `sslkit serve` shows them. */
export const SERVE_DEFAULTS = {
  port: 8080,
  host: '127.0.0.1',
  device: 'auto',
  threads: 0,
  maxBatch: 32,
  maxDelayMs: 0,
  maxQueue: 1024,
  timeoutMs: 30_000,
  maxBodyBytes: 20_000_000,
  maxImages: 64,
  maxPixels: 40_000_000,
  maxMetadataBytes: DEFAULT_METADATA_LIMITS.maxBytes,
  maxMetadataKeys: DEFAULT_METADATA_LIMITS.maxKeys,
  drainMs: 10_000,
  requestTimeoutMs: 60_000,
  apiKeyScope: 'all',
  pooling: 'cls',
  annThreshold: DEFAULT_ANN_THRESHOLD,
  efSearch: DEFAULT_EF_SEARCH,
} as const satisfies Partial<ServeOptions>;

type ResolvedServeOptions = ServeOptions & { -readonly [K in keyof typeof SERVE_DEFAULTS]: NonNullable<ServeOptions[K]> };

export interface RunningServer {
  url: string;
  server: http.Server;
  ctx: ServeContext;
  close(): Promise<void>;
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const o = { ...SERVE_DEFAULTS, ...given } as ResolvedServeOptions;
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const provider = await resolveProvider(o.device, log);
  // Spinning intra-op threads would take the cores that decode the next requests' images.
  const encoder = await ModelThread.start(o.model, {
    device: o.device,
    threads: o.threads,
    spinning: false,
    preprocessing: o.preprocessing,
    pooling: o.pooling,
    log,
  });
  const metrics = createMetrics();
  metrics.provider.set({ provider }, 1);
  const per = encoder.preprocessing.channels * encoder.preprocessing.height * encoder.preprocessing.width;
  const batcher = new Batcher({
    maxBatch: o.maxBatch,
    maxDelayMs: o.maxDelayMs,
    maxQueue: o.maxQueue,
    timeoutMs: o.timeoutMs,
    perImage: per,
    dim: encoder.dim,
    run: (images, n) => encoder.embed(images, n, o.maxBatch),
    onBatch: (n) => metrics.batchSize.observe(n),
    onQueue: (d) => metrics.queueDepth.set(d),
  });
  // Whatever is refused from here on releases the model thread and the index it opened.
  let store: IndexStore | null = null;
  const demoDir = o.staticDir;
  try {
    if (o.index) {
      const served = modelIdentity(o.model, encoder);
      store = await openIndexStore(o.index, {
        annThreshold: o.annThreshold,
        efSearch: o.efSearch,
        // A PostgreSQL index that does not exist yet starts empty, made for this model.
        create: { dim: encoder.dim, model: served },
        autoAnnIndex: true,
        log,
        onQuery: metrics.observeIndexQuery,
      });
      checkIdentity(store.location, store.dim, store.model, served, { allowRequantized: o.allowRequantized, log });
    }
    if (o.gallery) {
      if (!o.staticDir) throw new TypeError('startServer: a gallery needs staticDir, the built page (web-demo/build.ts)');
      checkGallery(o.gallery, encoder.dim, o.model);
    }
  } catch (e) {
    await store?.close();
    await encoder.release();
    throw e;
  }
  if (store) metrics.indexSize.set(await store.count());
  const auth = apiKeyAuth({ key: o.apiKey, scope: o.apiKeyScope });
  const ctx: ServeContext = {
    encoder,
    provider,
    batcher,
    store,
    metrics,
    maxPixels: o.maxPixels,
    maxImages: o.maxImages,
    maxBodyBytes: o.maxBodyBytes,
    metadataLimits: { maxBytes: o.maxMetadataBytes, maxKeys: o.maxMetadataKeys },
    guardWrites: auth.writes,
    modelName: path.basename(o.model, '.onnx'),
    centre: store?.model.centre ? Float32Array.from(store.model.centre) : null,
  };
  const state = { ready: false, closing: false };

  const app = express();
  app.disable('x-powered-by');
  // One path, one route: /V1/INDEX/ITEMS and /v1/clusters/rebuild/ are 404s, not aliases.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  // No ETag on API answers: hashing every embedding response costs CPU, and POST answers are not cached.
  app.set('etag', false);
  app.use(metrics.middleware);
  // Draining: answers still go out, each closing its connection so no client reuses a dying one.
  app.use((_req, res, next) => {
    if (state.closing) res.setHeader('Connection', 'close');
    next();
  });
  if (demoDir)
    // Cross-origin isolation lets onnxruntime-web use SharedArrayBuffer threads in the page.
    app.use((_req, res, next) => {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
      next();
    });
  if (o.cors)
    app.use((req, res, next) => {
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Access-Control-Allow-Headers', 'authorization, content-type');
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST, DELETE, OPTIONS');
      if (req.method === 'OPTIONS') return void res.status(204).end();
      next();
    });
  app.use(auth.all);
  // Bodies are parsed by each route (JSON, multipart or raw image), under its own limits.
  app.use(systemRoutes(ctx, state));
  app.use(embeddingsRoute(ctx));
  app.use(searchRoutes(ctx));
  app.use(indexItemRoutes(ctx));
  if (o.gallery) {
    app.get('/demo/model.onnx', (_req, res) => res.sendFile(path.resolve(o.model)));
    app.use('/demo/gallery', regularFilesIn(o.gallery));
  }
  if (demoDir) app.use(...staticAssets(demoDir));
  app.use((req, _res, next) => next(new ApiError(404, 'not_found', `no route ${req.method} ${req.path}`)));
  app.use(errorHandler);

  const server = http.createServer(app);
  // `Expect: 100-continue` with a body over the limit is refused before the client sends it.
  server.on('checkContinue', (req, res) => {
    if (Number(req.headers['content-length'] ?? 0) > ctx.maxBodyBytes) {
      const message = `request body of ${req.headers['content-length']} bytes exceeds the ${ctx.maxBodyBytes}-byte limit (--max-body-bytes)`;
      res.writeHead(413, { 'Content-Type': 'application/json', Connection: 'close' });
      res.end(JSON.stringify(errorBody(new ApiError(413, 'body_too_large', message))));
      return;
    }
    res.writeContinue();
    app(req, res);
  });
  // A client gets this long to send a request: a half-sent body cannot hold a connection (or a shutdown) for ever.
  server.requestTimeout = o.requestTimeoutMs;
  server.headersTimeout = Math.min(server.requestTimeout, 30_000);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  state.ready = true;
  const addr = server.address() as { port: number };
  const url = `http://${o.host}:${addr.port}`;
  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      state.ready = false;
      state.closing = true;
      // Stop accepting; idle kept-alive connections close now, busy ones after their answer
      // (Connection: close); past the deadline whatever is left is cut, then the snapshot is written.
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      let deadline: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise<void>((r) => (deadline = setTimeout(r, o.drainMs)))]);
      clearTimeout(deadline);
      server.closeAllConnections();
      await batcher.idle();
      await store?.close();
      await encoder.release();
    })());
  return { url, server, ctx, close };
}
