/** POST /v1/search, POST /v1/clusters/assign, GET /v1/clusters, POST /v1/clusters/rebuild. */
import type { Router } from 'express';
import { AssignBody, parse, RebuildBody, SearchBody } from '../schemas.js';
import { embedImages, requireIndex, strictRouter, type ServeContext } from '../context.js';
import { jsonBody } from '../body.js';

async function queryVector(ctx: ServeContext, b: { image?: string; embedding?: number[] }): Promise<Float32Array> {
  const store = requireIndex(ctx);
  if (b.embedding) {
    store.checkVector(b.embedding);
    return Float32Array.from(b.embedding);
  }
  return (await embedImages(ctx, [b.image!], 'image'))[0];
}

export function searchRoutes(ctx: ServeContext): Router {
  const r = strictRouter();
  const json = jsonBody(ctx.maxBodyBytes);
  r.post('/v1/search', ...json, async (req, res) => {
    const b = parse(SearchBody, req.body);
    const q = await queryVector(ctx, b);
    const nn = await requireIndex(ctx).nearest(q, b.k, { efSearch: b.ef_search });
    res.json({ object: 'list', data: nn.map((n) => ({ id: n.id, score: n.score, metadata: n.item })) });
  });
  r.post('/v1/clusters/assign', ...json, async (req, res) => {
    const b = parse(AssignBody, req.body);
    const q = await queryVector(ctx, b);
    const store = requireIndex(ctx);
    const { cluster, score } = await store.assign(q);
    // A few members of that cluster, nearest to the query first.
    res.json({ cluster, score, members: await store.members(q, cluster, b.members) });
  });
  r.get('/v1/clusters', async (_req, res) => {
    res.json(await requireIndex(ctx).clusterSummary());
  });
  r.post('/v1/clusters/rebuild', ctx.guardWrites, ...json, async (req, res) => {
    const b = parse(RebuildBody, req.body);
    const c = await requireIndex(ctx).rebuildClusters(b.k);
    res.json({ k: c.k });
  });
  return r;
}
