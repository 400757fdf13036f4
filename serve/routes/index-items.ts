/** POST /v1/index/items and DELETE /v1/index/items/:id: durable index writes. */
import crypto from 'node:crypto';
import express, { type Router } from 'express';
import { AddItemsBody, parse } from '../schemas.js';
import { embedImages, requireIndex, type ServeContext } from '../context.js';

export function indexItemRoutes(ctx: ServeContext): Router {
  const r = express.Router();
  r.post('/v1/index/items', async (req, res) => {
    const b = parse(AddItemsBody, req.body);
    const store = requireIndex(ctx);
    const withImages = b.items.map((it, i) => [it, i] as const).filter(([it]) => it.image !== undefined);
    const embedded = withImages.length
      ? await embedImages(
          ctx,
          withImages.map(([it]) => it.image!),
          'items',
        )
      : [];
    const vectors = new Map(withImages.map(([, i], j) => [i, embedded[j]]));
    const entries = b.items.map((it, i) => {
      const vector = vectors.get(i) ?? Float32Array.from(it.embedding!);
      store.checkDim(vector, `items.${i}.embedding`);
      const id = it.id ?? crypto.randomUUID();
      return {
        item: { id, ...(it.metadata ? Object.fromEntries(Object.entries(it.metadata).map(([k, v]) => [k, String(v)])) : {}) },
        vector,
      };
    });
    store.add(entries);
    ctx.metrics.indexSize.set(store.count);
    res.status(201).json({ ids: entries.map((e) => e.item.id), count: store.count });
  });
  r.delete('/v1/index/items/:id', (req, res) => {
    const store = requireIndex(ctx);
    store.delete(String(req.params.id));
    ctx.metrics.indexSize.set(store.count);
    res.json({ deleted: req.params.id, count: store.count });
  });
  return r;
}
