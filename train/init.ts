/**
 * The encoder a run starts from (`sslkit train --init MODEL.onnx`): the run keeps its own copy
 * (RUN/init.onnx, so a resume, an eval or an export never depends on the original path), trains
 * the imported graph as its backbone (`onnx:RUN/init.onnx`), and takes the model's input size,
 * channels and normalisation, so that what it exports drops into whatever served the original.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../core/errors.js';
import { OnnxEncoder, readPreprocessingFile } from '../core/runtime/onnx-encoder.js';
import type { Preprocessing } from '../core/gallery-format.js';
import { IMPORTED_BN_PREFIX, IMPORTED_PREFIX } from './backbones/index.js';
import { importedBackbone, INSERTED_EPS, INSERTED_TAP, readImported } from './backbones/onnx-import.js';
import type { Tensor } from './engine/graph.js';
import * as ops from './engine/ops.js';
import { meanOverBatches, type EncoderSpec } from './encoder.js';
import type { Device } from '../core/runtime/session.js';

/** A run's image size on a CPU when neither the data nor the starting encoder fixes one (photos, dynamic-size encoders). */
export const DEFAULT_IMAGE_SIZE = 96;

export interface InitModel {
  /** The run's copy of the encoder. */
  file: string;
  /** The backbone name the run's config records. */
  backbone: string;
  /** A BatchNorm goes after each convolution without one (a model whose BatchNorm was folded). */
  insertBatchNorm: boolean;
  channels: 1 | 3;
  imageSize: number;
  /** Normalisation on the 0-1 pixel scale, as the run's augmentations apply it. */
  mean: number[];
  std: number[];
  preprocessing: Preprocessing;
}

export const initCopy = (runDir: string) => path.join(runDir, 'init.onnx');

/**
 * Copies the encoder into the run (`newRun`) or finds the run's copy (a resumed one, export), checks
 * that every node trains, and resolves the image size: the model's fixed input size, else
 * `imageSize`, its preprocessing metadata's, or DEFAULT_IMAGE_SIZE.
 */
export async function prepareInit(
  o: { init: string; imageSize?: number; preprocessing?: string; insertBatchNorm?: boolean; newRun?: boolean },
  runDir: string,
  log: (l: string) => void,
): Promise<InitModel> {
  const file = initCopy(runDir);
  // A new run copies anew (a failed earlier attempt may have left another model's copy there).
  if (o.newRun || !fs.existsSync(file)) {
    if (!fs.existsSync(o.init)) throw new UserError(`--init ${o.init}: no such file`);
    fs.mkdirSync(runDir, { recursive: true });
    fs.copyFileSync(o.init, `${file}.tmp`);
    fs.renameSync(`${file}.tmp`, file);
  }
  const m = readImported(file);
  const [, , h, w] = m.input.shape;
  const fixed = typeof h === 'number' && typeof w === 'number';
  if (fixed && h !== w) throw new UserError(`--init ${o.init}: input '${m.input.name}' is ${h}×${w}; sslkit trains square images`);
  if (fixed && o.imageSize !== undefined && o.imageSize !== h)
    throw new UserError(`--init ${o.init}: the model's input is fixed at ${h}×${w}, so --image-size ${o.imageSize} cannot apply`);
  // A dynamic-size input takes --image-size, else the size its metadata records, else the CPU default.
  let imageSize = fixed ? (h as number) : o.imageSize;
  if (imageSize === undefined) {
    const md = m.model.metadata_props?.find((e) => e.key === 'preprocessing')?.value;
    let fromMeta: unknown;
    try {
      fromMeta = md ? (JSON.parse(md) as { height?: unknown }).height : undefined;
    } catch {
      // OnnxEncoder.load below says that the metadata is not JSON
    }
    imageSize = typeof fromMeta === 'number' && fromMeta > 0 ? fromMeta : DEFAULT_IMAGE_SIZE;
  }
  const given = { ...(o.preprocessing ? readPreprocessingFile(o.preprocessing) : {}), height: imageSize, width: imageSize };
  const enc = await OnnxEncoder.load(file, { preprocessing: given, log: (l) => log(l.replace(file, `--init ${o.init}`)) });
  await enc.release();
  const p = enc.preprocessing;
  if (p.channels !== 1 && p.channels !== 3) throw new UserError(`--init ${o.init}: ${p.channels} input channels; 1 or 3 are supported`);
  // The augmentations normalise 0-1 pixels: (x − mean′)/std′ equals the model's (255·x·scale − mean)/std.
  const k = 255 * p.pixelScale;
  const perChannel = (v: number[]) => Array.from({ length: p.channels }, (_, c) => v[c % v.length] / k);
  // A CNN with no normalisation at all had its BatchNorm folded at export: by default it gets it
  // back (bench/continue.ts: +5 points of kNN over training it as it is). A model with
  // LayerNorm (ConvNeXt, ViT) never had BatchNorm after its convolutions.
  const opTypes = new Set(m.model.graph.node.map((n) => n.op_type));
  const folded = opTypes.has('Conv') && !opTypes.has('BatchNormalization') && !opTypes.has('LayerNormalization');
  const insertBatchNorm = o.insertBatchNorm ?? folded;
  if (folded && o.newRun)
    log(
      insertBatchNorm
        ? `--init ${o.init}: its BatchNorm is folded into the convolutions; putting one after each, folded back at export (--no-insert-batchnorm trains it as it is)`
        : `--init ${o.init}: its BatchNorm is folded into the convolutions; training them as they are (--no-insert-batchnorm)`,
    );
  const backbone = `${insertBatchNorm ? IMPORTED_BN_PREFIX : IMPORTED_PREFIX}${path.resolve(file)}`;
  // Every node must have a gradient rule: say so now, before the data is decoded.
  const dim = importedBackbone(path.resolve(file)).dim;
  log(
    `starting from ${o.init}: ${m.model.graph.node.length} nodes, ${m.initializers.size} initialisers, ${dim}-d output, input ${p.channels}×${imageSize}×${imageSize}`,
  );
  return {
    file,
    backbone,
    insertBatchNorm,
    channels: p.channels as 1 | 3,
    imageSize,
    mean: perChannel(p.mean),
    std: perChannel(p.std),
    preprocessing: p,
  };
}

/**
 * Gives each BatchNorm that --insert-batchnorm put after a folded convolution the statistics of
 * that convolution's output on plain training images (one pass, every inserted BatchNorm still
 * the identity): running mean μ and variance σ², scale √(σ² + ε) and shift μ, so the network
 * computes what the file computes (exactly in eval mode; with batch statistics close to it).
 */
export async function calibrateInsertedBatchNorm(
  spec: EncoderSpec,
  values: Map<string, Float32Array>,
  images: Float32Array,
  n: number,
  o: { batch?: number; device?: Device; threads?: number } = {},
): Promise<Map<string, Float32Array>> {
  const stats = await meanOverBatches(spec, values, images, n, { ...o, batch: o.batch ?? 128, ctx: { training: false } }, (ctx) =>
    [...ctx.taps]
      .filter(([k]) => k.startsWith(INSERTED_TAP))
      .flatMap(([k, y]): [string, Tensor][] => [
        [`${k.slice(INSERTED_TAP.length)}.mean`, ops.reduceMean(y, [0, 2, 3])],
        [`${k.slice(INSERTED_TAP.length)}.square`, ops.reduceMean(ops.mul(y, y), [0, 2, 3])],
      ]),
  );
  const out = new Map(values);
  // Set for the student and, where there is one, its EMA teacher, which starts as its copy.
  const set = (key: string, v: Float32Array) => {
    out.set(key, v);
    if (values.has(`teacher.${key}`)) out.set(`teacher.${key}`, Float32Array.from(v));
  };
  for (const [key, m] of stats) {
    if (!key.endsWith('.mean')) continue;
    const name = key.slice(0, -'.mean'.length);
    const mean = Float32Array.from(m);
    const variance = Float32Array.from(stats.get(`${name}.square`)!, (v, c) => Math.max(v - mean[c] * mean[c], 0));
    set(`${name}.running_mean`, mean);
    set(`${name}.running_var`, variance);
    set(
      `${name}.weight`,
      Float32Array.from(variance, (v) => Math.sqrt(v + INSERTED_EPS)),
    );
    set(`${name}.bias`, Float32Array.from(mean));
  }
  return out;
}
