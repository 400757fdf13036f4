/** POST /v1/index/items and DELETE /v1/index/items/:id: durable index writes (they carry the write guard). */
import crypto from 'node:crypto';
import type { Router } from 'express';
import { AddItemsBody, parse } from '../schemas.js';
import { ApiError } from '../errors.js';
import { checkItem, checkText } from '../store.js';
import { jsonBody } from '../body.js';
import { embedImages, requireIndex, strictRouter, type ServeContext } from '../context.js';

export function indexItemRoutes(ctx: ServeContext): Router {
  const r = strictRouter();
  r.post('/v1/index/items', ctx.guardWrites, ...jsonBody(ctx.maxBodyBytes), async (req, res) => {
    const b = parse(AddItemsBody, req.body);
    const store = requireIndex(ctx);
    b.items.forEach((it, i) => {
      // The id is the item's key: metadata may not set it behind the id field's validation.
      if (it.metadata && Object.hasOwn(it.metadata, 'id'))
        throw new ApiError(
          400,
          'invalid_request',
          `items.${i}.metadata.id: 'id' is reserved; give the item's id as items.${i}.id`,
          `items.${i}.metadata.id`,
        );
      // Given embeddings are checked before any image of the request is embedded.
      if (it.embedding) store.checkVector(it.embedding, `items.${i}.embedding`);
    });
    const entries = b.items.map((it, i) => {
      const metadata = it.metadata ? Object.fromEntries(Object.entries(it.metadata).map(([k, v]) => [k, String(v)])) : {};
      const item = { ...metadata, id: it.id ?? crypto.randomUUID() };
      // Ids and metadata both engines store as given, within the size limits: before any image is decoded.
      checkItem(item, `items.${i}`, ctx.metadataLimits);
      return item;
    });
    const withImages = b.items.map((it, i) => [it, i] as const).filter(([it]) => it.image !== undefined);
    const embedded = withImages.length
      ? await embedImages(
          ctx,
          withImages.map(([it]) => it.image!),
          'items',
        )
      : [];
    const vectors = new Map(withImages.map(([, i], j) => [i, embedded[j]]));
    // store.add checks every vector (the model's too) under its entry's field name.
    await store.add(
      b.items.map((it, i) => ({
        item: entries[i],
        vector: vectors.get(i) ?? Float32Array.from(it.embedding!),
        field: `items.${i}.embedding`,
      })),
    );
    const count = await store.count();
    ctx.metrics.indexSize.set(count);
    res.status(201).json({ ids: entries.map((e) => e.id), count });
  });
  r.delete('/v1/index/items/:id', ctx.guardWrites, async (req, res) => {
    const store = requireIndex(ctx);
    checkText(String(req.params.id), 'id');
    await store.delete(String(req.params.id));
    const count = await store.count();
    ctx.metrics.indexSize.set(count);
    res.json({ deleted: req.params.id, count });
  });
  return r;
}
