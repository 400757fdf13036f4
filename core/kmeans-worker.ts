/** kmeansInWorker's thread: one k-means run on the rows it was given, the result sent back (moved, not copied). */
import { parentPort, workerData } from 'node:worker_threads';
import { kmeans } from './kmeans.js';

const { x, d, k, options } = workerData as { x: Float32Array; d: number; k: number; options: { iters?: number; seed?: number } };
try {
  const result = kmeans(x, d, k, options);
  parentPort!.postMessage({ result }, [result.centroids.buffer, result.assign.buffer, result.sizes.buffer] as ArrayBuffer[]);
} catch (e) {
  parentPort!.postMessage({ error: (e as Error).message });
}
