/**
 * Dynamic batching: concurrent requests' images are merged into one model run of up to
 * `maxBatch` images. An idle model starts at once (no added latency at low load); while it runs,
 * arriving images queue up and form the next batch. With `maxDelayMs` > 0 an idle model instead
 * waits up to that long for a batch to fill (more throughput per run, more latency). The queue is
 * bounded: beyond `maxQueue` waiting images a request is refused with 429 and
 * Retry-After; a request that waits longer than `timeoutMs` gets 503.
 */
import { ApiError } from './errors.js';

export interface BatcherOptions {
  maxBatch: number;
  maxDelayMs: number;
  maxQueue: number;
  timeoutMs: number;
  /** Runs the model on n images (NCHW, concatenated); returns n embeddings concatenated. */
  run: (images: Float32Array, n: number) => Promise<Float32Array>;
  perImage: number;
  dim: number;
  onBatch?: (size: number) => void;
  onQueue?: (depth: number) => void;
}

interface Pending {
  image: Float32Array;
  resolve: (v: Float32Array) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  done: boolean;
}

export class Batcher {
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private inflight = 0;

  constructor(private readonly o: BatcherOptions) {}

  get depth(): number {
    return this.queue.length;
  }

  /**
   * Throws unless `n` more images fit: 413 when they never could (a retry cannot help), 429 with
   * Retry-After when the queue is full now.
   */
  checkRoom(n: number): void {
    if (n > this.o.maxQueue)
      throw new ApiError(413, 'too_many_images', `${n} images exceed the queue's capacity of ${this.o.maxQueue} (--max-queue)`);
    if (this.queue.length + n > this.o.maxQueue)
      throw new ApiError(429, 'queue_full', `the server is busy (${this.queue.length} images queued); retry shortly`, undefined, {
        'Retry-After': '1',
      });
  }

  /** Embeds images (each one model input); resolves with one embedding per image. */
  embed(images: Float32Array[]): Promise<Float32Array[]> {
    try {
      this.checkRoom(images.length);
    } catch (e) {
      return Promise.reject(e);
    }
    const results = images.map(
      (image) =>
        new Promise<Float32Array>((resolve, reject) => {
          const p: Pending = {
            image,
            resolve,
            reject,
            done: false,
            timer: setTimeout(() => {
              if (p.done) return;
              p.done = true;
              this.queue = this.queue.filter((q) => q !== p);
              reject(new ApiError(503, 'timeout', `no result within ${this.o.timeoutMs} ms`));
            }, this.o.timeoutMs),
          };
          this.queue.push(p);
        }),
    );
    this.kick();
    return Promise.all(results);
  }

  /** Starts a run now if a batch is full, else arms the delay timer. */
  private kick(): void {
    this.o.onQueue?.(this.queue.length);
    if (this.running || !this.queue.length) return;
    if (this.queue.length >= this.o.maxBatch || this.o.maxDelayMs <= 0) void this.drain();
    else if (!this.timer) this.timer = setTimeout(() => void this.drain(), this.o.maxDelayMs);
  }

  private async drain(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.o.maxBatch).filter((p) => !p.done);
        if (!batch.length) continue;
        this.inflight += batch.length;
        this.o.onBatch?.(batch.length);
        const input = new Float32Array(batch.length * this.o.perImage);
        batch.forEach((p, i) => input.set(p.image, i * this.o.perImage));
        try {
          const out = await this.o.run(input, batch.length);
          batch.forEach((p, i) => {
            if (p.done) return;
            p.done = true;
            clearTimeout(p.timer);
            p.resolve(out.slice(i * this.o.dim, (i + 1) * this.o.dim));
          });
        } catch (e) {
          for (const p of batch) {
            if (p.done) continue;
            p.done = true;
            clearTimeout(p.timer);
            p.reject(e as Error);
          }
        } finally {
          this.inflight -= batch.length;
        }
        // What arrived during the run is the next batch: no extra wait while busy.
      }
    } finally {
      this.running = false;
      this.kick();
    }
  }

  /** Resolves when nothing is queued or running (graceful shutdown). */
  async idle(): Promise<void> {
    while (this.queue.length || this.running || this.inflight) {
      if (this.queue.length && !this.running) void this.drain();
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}
