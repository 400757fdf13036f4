/** A model's output as embeddings, shared by the library's encoder and the page's (which loads its runtime itself). */
import type { GalleryManifest } from './types.js';

/**
 * The first `count` rows of a model output as [count, D] embeddings: [N, D] and [N, D, 1, 1] as they are,
 * tokens [N, T, D] by their first (CLS) token or their mean.
 */
export function pooledRows(
  data: Float32Array,
  dims: readonly number[],
  count: number,
  info: Pick<GalleryManifest['model'], 'outputKind' | 'pooling'>,
): Float32Array {
  if (info.outputKind !== '[N, T, D]') return data.slice(0, count * dims[1]);
  const [, t, dim] = dims;
  const out = new Float32Array(count * dim);
  for (let i = 0; i < count; i++) {
    const base = i * t * dim;
    if (info.pooling === 'cls') out.set(data.subarray(base, base + dim), i * dim);
    else for (let j = 0; j < t; j++) for (let d = 0; d < dim; d++) out[i * dim + d] += data[base + j * dim + d] / t;
  }
  return out;
}
