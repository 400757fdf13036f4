/** What every route reads: the model, its batcher, the index (optional), metrics and limits. */
import type { ModelThread } from './model-thread.js';
import type { Batcher } from './batcher.js';
import type { IndexStore } from './store.js';
import type { Metrics } from './metrics.js';
import { ApiError } from './errors.js';
import { bytesFromString, imageToInput } from './images.js';

export interface ServeContext {
  encoder: ModelThread;
  provider: string;
  batcher: Batcher;
  store: IndexStore | null;
  metrics: Metrics;
  maxPixels: number;
  modelName: string;
}

export function requireIndex(ctx: ServeContext): IndexStore {
  if (!ctx.store) throw new ApiError(409, 'no_index', 'the server was started without --index');
  return ctx.store;
}

/** Images (base64/data URL strings or raw bytes) to embeddings through the batcher. */
export async function embedImages(ctx: ServeContext, images: (string | Buffer)[], field: string): Promise<Float32Array[]> {
  const inputs = await Promise.all(
    images.map((im, i) => {
      const f = images.length > 1 ? `${field}.${i}` : field;
      return imageToInput(typeof im === 'string' ? bytesFromString(im, f) : im, ctx.encoder.preprocessing, ctx.maxPixels, f);
    }),
  );
  return ctx.batcher.embed(inputs);
}
