/** What every route reads: the model, its batcher, the index (optional), metrics, limits and guards. */
import express, { type RequestHandler, type Router } from 'express';
import type { ModelThread } from './model-thread.js';
import type { Batcher } from './batcher.js';
import type { IndexStore, MetadataLimits } from './store.js';
import type { Metrics } from './metrics.js';
import { ApiError } from './errors.js';
import { bytesFromString, imageToInput } from './images.js';
import { centredUnit } from '../core/vectors.js';

export interface ServeContext {
  encoder: ModelThread;
  provider: string;
  batcher: Batcher;
  store: IndexStore | null;
  metrics: Metrics;
  maxPixels: number;
  /** Images one request may carry. */
  maxImages: number;
  maxBodyBytes: number;
  /** Bounds on one index item's metadata. */
  metadataLimits: MetadataLimits;
  /** The API-key check the write routes carry (a pass-through unless --api-key-scope writes). */
  guardWrites: RequestHandler;
  modelName: string;
  /** A centred index's mean (sslkit index --centre): every image's embedding is centred on it. */
  centre: Float32Array | null;
}

/** Routers match paths exactly: case-sensitive, no trailing-slash variant (auth relies on one path meaning one route). */
export const strictRouter = (): Router => express.Router({ caseSensitive: true, strict: true });

export function requireIndex(ctx: ServeContext): IndexStore {
  if (!ctx.store) throw new ApiError(409, 'no_index', 'the server was started without --index');
  return ctx.store;
}

/** A 413 unless `n` images fit in one request; checked before anything is decoded. */
export function checkImageCount(ctx: ServeContext, n: number, field: string): void {
  if (n > ctx.maxImages)
    throw new ApiError(413, 'too_many_images', `${n} images in one request; the limit is ${ctx.maxImages} (--max-images)`, field);
}

/**
 * Images (base64/data URL strings or raw bytes) to embeddings through the batcher: the model's
 * output, or with a centred index its unit embedding minus the index's centre, normalised again
 * (the space the index's vectors are in).
 */
export async function embedImages(ctx: ServeContext, images: (string | Buffer)[], field: string): Promise<Float32Array[]> {
  checkImageCount(ctx, images.length, field);
  // A full queue refuses before decoding, not after.
  ctx.batcher.checkRoom(images.length);
  const inputs = await Promise.all(
    images.map((im, i) => {
      const f = images.length > 1 ? `${field}.${i}` : field;
      return imageToInput(typeof im === 'string' ? bytesFromString(im, f) : im, ctx.encoder.preprocessing, ctx.maxPixels, f);
    }),
  );
  const vectors = await ctx.batcher.embed(inputs);
  const centre = ctx.centre;
  if (!centre) return vectors;
  return vectors.map((v) => centredUnit(v, centre));
}
