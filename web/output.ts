/**
 * Running a model over images and reading its output as embeddings, shared by the library's encoder
 * and the page's (which loads its runtime itself).
 */
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

/** One batch's output: its values and shape, and how to free it once read. */
export interface BatchOutput {
  data: Float32Array;
  dims: readonly number[];
  dispose(): void;
}

/**
 * n preprocessed images (n × C × H × W) to n embedding rows, not normalised: in batches of the
 * model's fixed batch (the last one padded with zeros), else all at once. `run` runs one batch of
 * `batch` images, of which the first `count` are real.
 */
export async function embedInBatches(
  input: Float32Array,
  n: number,
  info: Pick<GalleryManifest['model'], 'fixedBatch' | 'preprocessing' | 'outputKind' | 'pooling'>,
  run: (x: Float32Array, batch: number, count: number) => Promise<BatchOutput>,
): Promise<Float32Array> {
  const p = info.preprocessing;
  const per = p.channels * p.height * p.width;
  const b = info.fixedBatch ?? n;
  let out = new Float32Array(0);
  for (let s = 0; s < n; s += b) {
    const m = Math.min(b, n - s);
    const x = new Float32Array(b * per);
    x.set(input.subarray(s * per, (s + m) * per));
    const y = await run(x, b, m);
    const rows = pooledRows(y.data, y.dims, m, info);
    y.dispose();
    if (out.length === 0) out = new Float32Array((n * rows.length) / m);
    out.set(rows, (s * rows.length) / m);
  }
  return out;
}
