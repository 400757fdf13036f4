/**
 * `import … from 'sslkit'`: the public API for Node, the same operations as the CLI with the same
 * option names (the CLI's flags in camelCase). Everything else in the package is private.
 *
 * ```ts
 * import { OnnxEncoder, train, exportRun, buildIndex, startServer } from 'sslkit';
 * const run = await train({ method: 'simclr', data: 'folder:./photos', epochs: 20, out: 'runs/mine' });
 * await exportRun(run.runDir, { out: 'mine.onnx' });
 * const enc = await OnnxEncoder.load('mine.onnx');
 * ```
 */
import fs from 'node:fs';
import type http from 'node:http';
import type { z } from 'zod';
import { resume, train as runTraining, type TrainResult } from '../train/trainer.js';
import { parseTrainConfig, TrainConfigSchema } from '../train/config.js';
import {
  buildIndex as buildIndexFile,
  buildPostgresIndex,
  type BuildIndexOptions,
  type PostgresIndexSummary,
} from '../serve/build-index.js';
import { isPostgresUrl } from '../serve/store.js';
import type { IndexData } from '../serve/index-file.js';
import { UserError } from '../core/errors.js';
import { OnnxEncoder } from '../core/runtime/onnx-encoder.js';
import { imageToInput } from '../serve/images.js';
import { normalizeRows } from '../core/vectors.js';
import { startServer as start, type ServeOptions } from '../serve/server.js';

export { OnnxEncoder };
export type { OnnxEncoderOptions, Preprocessing } from '../core/runtime/onnx-encoder.js';
export type { ModelInfo } from '../core/onnx/inspect.js';
export type { Device } from '../core/runtime/session.js';
export type { IndexItem } from '../serve/index-file.js';
export type { CalibrationMethod, QuantizeReport as QuantizationSummary } from '../export/quantize.js';
export type { Position as RunPosition } from '../train/checkpoint.js';
export { TrainConfigSchema };
export { loadDataset, type DatasetOptions, type Split } from '../data/datasets.js';
export type { ImageSet } from '../core/image-set.js';
export { evaluate, type EvalOptions, type EvalResult } from '../eval/evaluate.js';
export { exportRun, ExportCheckFailed, type ExportOptions, type ExportReport } from '../export/exporter.js';
export { quantizeFile as quantize, type Int8Options as QuantizeOptions, type Int8Report as QuantizeReport } from '../export/int8.js';
export { UserError };
export type { TrainResult, BuildIndexOptions, PostgresIndexSummary, IndexData, ServeOptions };

/** A run's settings, as `sslkit train` takes them (`out` is required; the rest default as the CLI's flags do). */
export type TrainOptions = z.input<typeof TrainConfigSchema>;

export interface TrainProgress {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  imgPerSec: number;
  lr: number;
}

export interface TrainControl {
  /** Stops the run after the current step, with a checkpoint (`stopped: 'interrupted'`). */
  signal?: AbortSignal;
  /** Called after every step. */
  onProgress?: (p: TrainProgress) => void;
  /** Log lines (default: standard error). */
  log?: (line: string) => void;
  /**
   * Continue the run in this folder (`sslkit train --resume`). `options` may then give more epochs,
   * another data folder or kNN check, and how this invocation runs (device, threads, workers,
   * maxSteps, checkpointEvery, tuneConv); any other option must be the run's own value.
   */
  resume?: string;
}

/**
 * Trains an encoder (`sslkit train`): the settings are validated as the CLI validates its flags
 * (a UserError says what is wrong), the run folder gets config, metrics and checkpoints.
 */
export async function train(options: TrainOptions, control: TrainControl = {}): Promise<TrainResult> {
  const hooks = { log: control.log, onStep: control.onProgress, stopRequested: () => control.signal?.aborted === true };
  return control.resume ? resume(control.resume, options, hooks) : runTraining(parseTrainConfig(options), hooks);
}

/**
 * Embeds a data set with any ONNX encoder into an index (`sslkit index`): a file, or a PostgreSQL
 * table when `out` is a postgres:// URL.
 */
export async function buildIndex(model: string, out: string, options: BuildIndexOptions): Promise<IndexData | PostgresIndexSummary> {
  return isPostgresUrl(out) ? buildPostgresIndex(model, out, options) : buildIndexFile(model, out, options);
}

/** A service started in this process. */
export interface Server {
  /** Where it listens, e.g. http://127.0.0.1:8080. */
  url: string;
  server: http.Server;
  /** Drains requests in flight, saves the index, lets go of the model. */
  close(): Promise<void>;
}

/** Starts `sslkit serve` in the caller's process: embeddings, search, clusters and index writes over HTTP. */
export async function startServer(options: ServeOptions): Promise<Server> {
  const s = await start(options);
  return { url: s.url, server: s.server, close: s.close };
}

/**
 * Embeds image files (paths) or image bytes (JPEG, PNG, WebP) with `encoder`, decoded and
 * preprocessed as the service does (EXIF orientation, cover-resize and centre crop, transparency on
 * the model's background): one vector per image, of unit length unless `normalize` is false, so
 * that a dot product is the cosine similarity.
 */
export async function embedImages(
  encoder: OnnxEncoder,
  images: (string | Uint8Array)[],
  o: { normalize?: boolean; maxPixels?: number } = {},
): Promise<Float32Array[]> {
  const p = encoder.preprocessing;
  const per = p.channels * p.height * p.width;
  const input = new Float32Array(images.length * per);
  for (let i = 0; i < images.length; i++) {
    const im = images[i];
    const bytes = typeof im === 'string' ? fs.readFileSync(im) : Buffer.from(im.buffer, im.byteOffset, im.byteLength);
    const name = typeof im === 'string' ? im : `images[${i}]`;
    try {
      input.set(await imageToInput(bytes, p, o.maxPixels ?? 100_000_000, name), i * per);
    } catch (e) {
      throw new UserError(`${name}: ${(e as Error).message}`, { cause: e });
    }
  }
  let out = await encoder.embed(input, images.length);
  if (o.normalize !== false) out = normalizeRows(out, encoder.dim);
  return Array.from({ length: images.length }, (_, i) => out.slice(i * encoder.dim, (i + 1) * encoder.dim));
}
