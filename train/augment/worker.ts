/** Loader worker: builds augmented batches from the shared pixel buffer on request. */
import { parentPort, workerData } from 'node:worker_threads';
import { makeBatchViews, type PixelSource } from './views.js';
import type { AugmentConfig } from './presets.js';

const { src, cfg } = workerData as { src: PixelSource; cfg: AugmentConfig };

parentPort!.on('message', (job: { id: number; indices: Int32Array; seed: number }) => {
  const views = makeBatchViews(src, job.indices, cfg, job.seed);
  parentPort!.postMessage(
    { id: job.id, views },
    views.map((v) => v.buffer as ArrayBuffer),
  );
});
