/** GET /healthz, /readyz, /metrics, /v1/models and /openapi.json. */
import express, { type Router } from 'express';
import type { ServeContext } from '../context.js';
import { openApiDocument } from '../openapi.js';

export function systemRoutes(ctx: ServeContext, state: { ready: boolean }): Router {
  const r = express.Router();
  r.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  r.get('/readyz', async (_req, res) => {
    // A PostgreSQL index that cannot be reached makes the replica unready until it can again.
    const reachable = ctx.store ? await ctx.store.reachable() : true;
    const ready = state.ready && ctx.encoder.alive && reachable;
    const index = ctx.store ? (reachable ? await ctx.store.count().catch(() => null) : null) : null;
    const body = { ready, model: ctx.encoder.alive, index, ...(ctx.store ? { index_reachable: reachable } : {}) };
    res.status(ready ? 200 : 503).json(body);
  });
  r.get('/metrics', async (_req, res) => {
    ctx.metrics.queueDepth.set(ctx.batcher.depth);
    res.setHeader('Content-Type', ctx.metrics.registry.contentType);
    res.send(await ctx.metrics.registry.metrics());
  });
  r.get('/v1/models', async (_req, res) => {
    const e = ctx.encoder;
    const store = ctx.store;
    res.json({
      object: 'list',
      data: [
        {
          id: ctx.modelName,
          object: 'model',
          execution_provider: ctx.provider,
          embedding_dim: e.dim,
          input: { name: e.input, batch: e.fixedBatch ?? 'dynamic', ...e.preprocessing },
          output: { name: e.output, kind: e.outputKind, pooling: e.outputKind === '[N, T, D]' ? e.pooling : undefined },
          assumed_preprocessing: e.assumed,
          metadata: e.info.metadata,
          index: store
            ? {
                engine: store.kind,
                items: await store.count(),
                dim: store.dim,
                clusters: await store.clusterCount(),
                // Embeddings and scores are in the centred space (sslkit index --centre).
                centred: !!store.model.centre,
              }
            : null,
        },
      ],
    });
  });
  r.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument());
  });
  return r;
}
