/**
 * The encoder in a thread of its own. onnxruntime-node's run() holds the calling thread for the
 * whole batch; in the HTTP thread that stops requests from being read, decoded and answered
 * while the model works, so the two alternate instead of overlapping (bench/serve measures it).
 * Same surface as OnnxEncoder for what the service reads; inputs and outputs move, not copy.
 */
import type { Worker } from 'node:worker_threads';
import type { OnnxEncoder, OnnxEncoderOptions } from '../core/runtime/onnx-encoder.js';
import { siblingModule, startWorker } from '../core/worker.js';
import { UserError } from '../core/errors.js';

/** What the service reads of the encoder, sent once by the model thread when it is ready. */
export const META_KEYS = [
  'file',
  'info',
  'input',
  'output',
  'fixedBatch',
  'preprocessing',
  'assumed',
  'pooling',
  'dim',
  'outputKind',
] as const;
type Meta = Pick<OnnxEncoder, (typeof META_KEYS)[number]>;

type FromWorker =
  | { type: 'log'; line: string }
  | { type: 'ready'; meta: Meta }
  | { type: 'load-error'; message: string; user: boolean }
  | { type: 'result'; id: number; out?: Float32Array; error?: string }
  | { type: 'released' };

export class ModelThread implements Meta {
  declare readonly file: Meta['file'];
  declare readonly info: Meta['info'];
  declare readonly input: Meta['input'];
  declare readonly output: Meta['output'];
  declare readonly fixedBatch: Meta['fixedBatch'];
  declare readonly preprocessing: Meta['preprocessing'];
  declare readonly assumed: Meta['assumed'];
  declare readonly pooling: Meta['pooling'];
  declare readonly dim: Meta['dim'];
  declare readonly outputKind: Meta['outputKind'];
  private pending = new Map<number, { resolve: (v: Float32Array) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failed: Error | null = null;

  private constructor(
    private readonly worker: Worker,
    meta: Meta,
  ) {
    Object.assign(this, meta);
    worker.on('message', (m: FromWorker) => {
      if (m.type !== 'result') return;
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error !== undefined) p?.reject(new Error(m.error));
      else p?.resolve(m.out!);
    });
    const fail = (e: Error) => {
      this.failed = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the model thread exited (code ${code})`)));
  }

  static start(file: string, o: Omit<OnnxEncoderOptions, 'log'> & { log?: (line: string) => void } = {}): Promise<ModelThread> {
    const { log = (l: string) => process.stderr.write(`${l}\n`), ...options } = o;
    const worker = startWorker(siblingModule(import.meta.url, 'model-worker'), { file, options });
    return new Promise((resolve, reject) => {
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'log') log(m.line);
        else if (m.type === 'ready') resolve(new ModelThread(worker, m.meta));
        else if (m.type === 'load-error') {
          void worker.terminate();
          reject(m.user ? new UserError(m.message) : new Error(m.message));
        }
      });
      worker.once('error', reject);
    });
  }

  /** False once the model thread has failed or exited (readyz reports it). */
  get alive(): boolean {
    return this.failed === null;
  }

  /** Embeddings [n, dim] of n preprocessed images; `images` is moved to the model thread. */
  embed(images: Float32Array, n: number, maxBatch = 64): Promise<Float32Array> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ type: 'embed', id, images, n, maxBatch }, [images.buffer as ArrayBuffer]);
    });
  }

  async release(): Promise<void> {
    if (this.failed) return;
    await new Promise<void>((resolve) => {
      this.worker.on('message', (m: FromWorker) => m.type === 'released' && resolve());
      this.worker.postMessage({ type: 'release' });
    });
    await this.worker.terminate();
  }
}
