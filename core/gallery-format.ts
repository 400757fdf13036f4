/**
 * What Node and the browser share (no imports, so the web demo can use it): a model's
 * preprocessing with the one formula that applies it, and the gallery manifest that
 * `sslkit index --gallery` writes (serve/gallery.ts) and the web demo reads (web-demo/src/gallery.ts).
 */

export interface Preprocessing {
  channels: number;
  height: number;
  width: number;
  /** Multiplier from uint8 pixels to the model's value range (1/255). */
  pixelScale: number;
  mean: number[];
  std: number[];
  /** How images of another size are brought to height × width: one of RESIZE_POLICIES. */
  resize: string;
  /**
   * The colour transparent pixels are composited on, RGB on the 0-255 scale, before any channel
   * conversion. `sslkit export` writes the median colour of the training images' outer edge (black
   * for Fashion-MNIST); models without it get DEFAULT_BACKGROUND.
   */
  background?: number[];
}

/** White: what an image viewer shows behind transparency, for models that do not say. */
export const DEFAULT_BACKGROUND = [255, 255, 255];
export const backgroundOf = (p: Pick<Preprocessing, 'background'>): number[] => p.background ?? DEFAULT_BACKGROUND;

/**
 * The resize policies sslkit implements, everywhere an image becomes model input (index, eval,
 * serve, the page): scale to cover height × width and crop the centre, or scale each side to fit
 * (the aspect ratio is not kept).
 */
export const RESIZE_POLICIES = ['cover-center-crop', 'stretch'] as const;

/** Channel k of a pixel on the 0-255 scale (resampled values allowed) as the model sees it: (v · pixelScale − mean_k) / std_k. */
export const normalizePixel = (v: number, k: number, p: Preprocessing): number =>
  (v * p.pixelScale - p.mean[k % p.mean.length]) / p.std[k % p.std.length];

/**
 * Interleaved 8-bit pixels, `stride` values per pixel (1 grey, 3 RGB, 4 RGBA: the first
 * p.channels are used), to the model's normalised planar input [channels, height, width].
 */
export function interleavedToInput(raw: ArrayLike<number>, stride: number, p: Preprocessing): Float32Array {
  const hw = p.width * p.height;
  const out = new Float32Array(p.channels * hw);
  for (let q = 0; q < hw; q++) for (let k = 0; k < p.channels; k++) out[k * hw + q] = normalizePixel(raw[q * stride + k], k, p);
  return out;
}

export interface GalleryManifest {
  format: 'sslkit-gallery';
  version: number;
  count: number;
  dim: number;
  metric: 'cosine';
  data?: string;
  /** How to run the model: its input and output, batch, output layout and preprocessing. */
  model: {
    file: string;
    bytes: number;
    input: string;
    output: string;
    fixedBatch: number | null;
    outputKind: '[N, D]' | '[N, D, 1, 1]' | '[N, T, D]';
    pooling: 'cls' | 'mean';
    preprocessing: Preprocessing;
    assumed: string[];
    metadata: Record<string, string>;
  };
  /** A centred index's mean (sslkit index --centre): the page centres each query's unit embedding on it. */
  centre?: number[];
  classes: string[];
  ids: string[];
  /** Class index per item, -1 where unknown. */
  labels: number[];
  clusters: { k: number; assign: number[]; sizes: number[]; members: number[][]; file: string };
  embeddings: string;
  thumbs: { size: number; cols: number; perSheet: number; channels: number; sheets: string[] };
  pca: { mean: number[]; components: number[][]; variance: number[] };
}
