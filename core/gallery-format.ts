/**
 * Types shared by Node and the browser (no imports, so the web demo can use them): a model's
 * preprocessing and the gallery manifest that `sslkit index --gallery` writes (serve/gallery.ts)
 * and the web demo reads (web-demo/src/gallery.ts).
 */

export interface Preprocessing {
  channels: number;
  height: number;
  width: number;
  /** Multiplier from uint8 pixels to the model's value range (1/255). */
  pixelScale: number;
  mean: number[];
  std: number[];
  /** How images of another size are brought to height × width. */
  resize: string;
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
  classes: string[];
  ids: string[];
  /** Class index per item, -1 where unknown. */
  labels: number[];
  clusters: { k: number; assign: number[]; sizes: number[]; members: number[][]; file: string };
  embeddings: string;
  thumbs: { size: number; cols: number; perSheet: number; channels: number; sheets: string[] };
  pca: { mean: number[]; components: number[][]; variance: number[] };
}
