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
import { IMPORTED_PREFIX } from './backbones/index.js';
import { importedBackbone, readImported } from './backbones/onnx-import.js';

/** A run's image size on a CPU when neither the data nor the starting encoder fixes one (photos, dynamic-size encoders). */
export const DEFAULT_IMAGE_SIZE = 96;

export interface InitModel {
  /** The run's copy of the encoder. */
  file: string;
  /** The backbone name the run's config records. */
  backbone: string;
  channels: 1 | 3;
  imageSize: number;
  /** Normalisation on the 0-1 pixel scale, as the run's augmentations apply it. */
  mean: number[];
  std: number[];
  preprocessing: Preprocessing;
}

export const initCopy = (runDir: string) => path.join(runDir, 'init.onnx');

/**
 * Copies the encoder into the run (a new run) or finds the run's copy (a resumed one), checks
 * that every node trains, and resolves the image size: the model's fixed input size, else
 * `imageSize`, its preprocessing metadata's, or DEFAULT_IMAGE_SIZE.
 */
export async function prepareInit(
  o: { init: string; imageSize?: number; preprocessing?: string },
  runDir: string,
  log: (l: string) => void,
): Promise<InitModel> {
  const file = initCopy(runDir);
  if (!fs.existsSync(file)) {
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
  const backbone = `${IMPORTED_PREFIX}${path.resolve(file)}`;
  // Every node must have a gradient rule: say so now, before the data is decoded.
  const dim = importedBackbone(path.resolve(file)).dim;
  log(
    `starting from ${o.init}: ${m.model.graph.node.length} nodes, ${m.initializers.size} initialisers, ${dim}-d output, input ${p.channels}×${imageSize}×${imageSize}`,
  );
  return { file, backbone, channels: p.channels as 1 | 3, imageSize, mean: perChannel(p.mean), std: perChannel(p.std), preprocessing: p };
}
