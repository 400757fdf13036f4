/**
 * The training loader: batches of augmented views as NCHW Float32Arrays, built in worker threads
 * ahead of the step with a bounded prefetch queue, so augmentation never stalls training.
 * Batch b of epoch e always holds the same images and views for a given seed (a permutation per
 * epoch, a seed per batch), whatever the number of workers: resume replays them exactly.
 */
import type { Worker } from 'node:worker_threads';
import { siblingModule, startWorker } from '../../core/worker.js';
import { Rng } from '../../core/random.js';
import { batchSeed, makeBatchViews, type PixelSource } from './views.js';
import type { AugmentConfig } from './presets.js';

export interface LoaderOptions {
  batchSize: number;
  /** Worker threads; 0 builds batches on the calling thread. */
  workers: number;
  /** Batches built ahead of the consumer. */
  prefetch?: number;
  seed: number;
  /** The last short batch is dropped (the step graph has a fixed batch size). */
  dropLast?: boolean;
}

export interface Batch {
  epoch: number;
  index: number;
  indices: Int32Array;
  views: Float32Array[];
}

export function epochOrder(n: number, seed: number, epoch: number): Int32Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  new Rng(batchSeed(seed, epoch, -1)).shuffle(order);
  return order;
}

export class ViewLoader {
  private workers: Worker[] = [];
  private pending = new Map<number, { resolve: (v: Float32Array[]) => void; reject: (e: Error) => void }>();
  private nextJob = 0;

  constructor(
    readonly src: PixelSource & { n: number },
    readonly cfg: AugmentConfig,
    readonly o: LoaderOptions,
  ) {
    for (let k = 0; k < o.workers; k++) {
      const w = startWorker(siblingModule(import.meta.url, 'worker'), { src: { pixels: src.pixels, c: src.c, h: src.h, w: src.w }, cfg });
      w.on('message', (m: { id: number; views: Float32Array[] }) => {
        this.pending.get(m.id)?.resolve(m.views);
        this.pending.delete(m.id);
      });
      w.on('error', (e) => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      });
      this.workers.push(w);
    }
  }

  get batchesPerEpoch(): number {
    return this.o.dropLast === false ? Math.ceil(this.src.n / this.o.batchSize) : Math.floor(this.src.n / this.o.batchSize);
  }

  private build(indices: Int32Array, seed: number): Promise<Float32Array[]> {
    if (this.workers.length === 0) return Promise.resolve(makeBatchViews(this.src, indices, this.cfg, seed));
    const id = this.nextJob++;
    const w = this.workers[id % this.workers.length];
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, indices, seed });
    });
  }

  /** Batches of one epoch from batch `start` on, prefetched `prefetch` deep. */
  async *epoch(epoch: number, start = 0): AsyncGenerator<Batch> {
    const order = epochOrder(this.src.n, this.o.seed, epoch);
    const nb = this.batchesPerEpoch;
    const depth = Math.max(1, this.o.prefetch ?? 2 * Math.max(1, this.workers.length));
    const queue: { index: number; indices: Int32Array; views: Promise<Float32Array[]> }[] = [];
    let next = start;
    const fill = () => {
      while (queue.length < depth && next < nb) {
        const indices = order.slice(next * this.o.batchSize, Math.min((next + 1) * this.o.batchSize, this.src.n));
        queue.push({ index: next, indices, views: this.build(indices, batchSeed(this.o.seed, epoch, next)) });
        next++;
      }
    };
    fill();
    while (queue.length) {
      const head = queue.shift()!;
      const views = await head.views;
      fill();
      yield { epoch, index: head.index, indices: head.indices, views };
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
  }
}
