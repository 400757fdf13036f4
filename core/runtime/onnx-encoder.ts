/**
 * Any ONNX image encoder as an embedder: one written by `sslkit export`, or a foreign one (say a
 * torchvision ResNet from torch.onnx) with a fixed or dynamic batch and an output of [N, D],
 * [N, D, 1, 1] or [N, T, D] (the CLS token or the mean over tokens, by option). Preprocessing
 * comes from the model's metadata; where that is missing, from options or a JSON file, and else
 * from the defaults a user would expect (ImageNet mean/std, 224 px), with a message saying which
 * values were assumed. This is what evaluation, indexing, serving and the demo load.
 */
import fs from 'node:fs';
import ort from 'onnxruntime-node';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { createSession, type Device } from './session.js';
import { inspectModel, type ModelInfo } from '../onnx/inspect.js';

import { DEFAULT_BACKGROUND, RESIZE_POLICIES, type Preprocessing } from '../gallery-format.js';
export type { Preprocessing };

const PreprocessingFile = z
  .object({
    channels: z.number().int().min(1).max(4),
    height: z.number().int().positive(),
    width: z.number().int().positive(),
    pixel_scale: z.number().positive(),
    mean: z.array(z.number()).min(1),
    std: z.array(z.number().positive()).min(1),
    resize: z.enum(RESIZE_POLICIES),
    background: z.array(z.number().int().min(0).max(255)).length(3),
  })
  .partial()
  .strict();

export const IMAGENET: Pick<Preprocessing, 'mean' | 'std' | 'pixelScale' | 'resize'> = {
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  pixelScale: 1 / 255,
  resize: 'cover-center-crop',
};

export interface OnnxEncoderOptions {
  /** Overrides for the model's preprocessing, or the path of a JSON file holding them. */
  preprocessing?: Partial<Preprocessing> | string;
  /** For [N, T, D] outputs: the first (CLS) token or the mean of all tokens. */
  pooling?: 'cls' | 'mean';
  /** Output to use when the model has several (default: `embeddings`, else the first). */
  output?: string;
  device?: Device;
  threads?: number;
  /** Busy-wait of idle onnxruntime threads (off in a server, where they would starve decoding). */
  spinning?: boolean;
  log?: (line: string) => void;
}

export function readPreprocessingFile(file: string): Partial<Preprocessing> {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`${file}: cannot read preprocessing JSON (${(e as Error).message})`, { cause: e });
  }
  const r = PreprocessingFile.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new UserError(`${file}: invalid preprocessing: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const { pixel_scale, ...rest } = r.data;
  return { ...rest, ...(pixel_scale !== undefined ? { pixelScale: pixel_scale } : {}) };
}

export class OnnxEncoder {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly file: string,
    readonly info: ModelInfo,
    readonly input: string,
    readonly output: string,
    /** Fixed batch size of the model, or null when the batch is dynamic. */
    readonly fixedBatch: number | null,
    readonly preprocessing: Preprocessing,
    /** Preprocessing fields that were assumed (not in the file, not given). */
    readonly assumed: string[],
    readonly pooling: 'cls' | 'mean',
    readonly dim: number,
    readonly outputKind: '[N, D]' | '[N, D, 1, 1]' | '[N, T, D]',
  ) {}

  static async load(file: string, o: OnnxEncoderOptions = {}): Promise<OnnxEncoder> {
    const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
    const info = inspectModel(file); // one-line errors for missing, empty, non-ONNX or truncated files
    const image = info.inputs.find((t) => t.dtype === 'float32' && t.shape.length === 4);
    if (!image)
      throw new UserError(
        `${file}: no float image input [N, C, H, W]; inputs are ${info.inputs.map((t) => `${t.name} ${t.dtype} [${t.shape.join(', ')}]`).join(', ') || 'none'}`,
      );
    const others = info.inputs.filter((t) => t !== image);
    if (others.length)
      throw new UserError(
        `${file}: the model needs inputs besides the image (${others.map((t) => t.name).join(', ')}); an image encoder takes one`,
      );

    // Preprocessing: metadata, then options/JSON, then the input's own numbers, then defaults.
    const md = info.metadata;
    const fromMeta: Partial<Preprocessing> = {};
    if (md.preprocessing) {
      try {
        const p = JSON.parse(md.preprocessing) as Record<string, unknown>;
        Object.assign(fromMeta, {
          channels: p.channels,
          height: p.height,
          width: p.width,
          pixelScale: p.pixel_scale,
          mean: p.mean,
          std: p.std,
          resize: p.resize,
          background: p.background,
        });
      } catch {
        log(`${file}: metadata 'preprocessing' is not JSON; ignored`);
      }
    }
    const given = typeof o.preprocessing === 'string' ? readPreprocessingFile(o.preprocessing) : (o.preprocessing ?? {});
    const [, c, h, w] = image.shape;
    const fromShape: Partial<Preprocessing> = {};
    if (typeof c === 'number') fromShape.channels = c;
    if (typeof h === 'number') fromShape.height = h;
    if (typeof w === 'number') fromShape.width = w;
    const defaults: Preprocessing = { channels: 3, height: 224, width: 224, ...IMAGENET };
    const pre = { ...defaults } as Preprocessing;
    const assumed: string[] = [];
    for (const k of Object.keys(defaults) as (keyof Preprocessing)[]) {
      const v = given[k] ?? fromMeta[k] ?? fromShape[k];
      if (v === undefined) assumed.push(k);
      else (pre as unknown as Record<string, unknown>)[k] = v;
    }
    // Not a normalisation value: a model without it composites transparency on white (not listed as assumed).
    pre.background = given.background ?? fromMeta.background ?? DEFAULT_BACKGROUND;
    const bg = pre.background as unknown;
    if (!Array.isArray(bg) || bg.length !== 3 || bg.some((v) => !Number.isInteger(v) || v < 0 || v > 255))
      throw new UserError(`${file}: preprocessing background must be three integers 0-255 (RGB), got ${JSON.stringify(bg)}`);
    // A one-channel model given ImageNet's three-channel defaults: their averages (torchvision's grey convention).
    if (pre.channels === 1 && assumed.includes('mean')) pre.mean = [0.449];
    if (pre.channels === 1 && assumed.includes('std')) pre.std = [0.226];
    for (const [k, v] of Object.entries(fromShape) as [keyof Preprocessing, number][])
      if (pre[k] !== v)
        throw new UserError(`${file}: the model's input is [${image.shape.join(', ')}], but preprocessing says ${k} = ${String(pre[k])}`);
    if (!(RESIZE_POLICIES as readonly string[]).includes(pre.resize))
      throw new UserError(`${file}: preprocessing resize '${pre.resize}' is not one sslkit implements (${RESIZE_POLICIES.join(', ')})`);
    if (pre.mean.length !== pre.channels && pre.mean.length !== 1)
      throw new UserError(`${file}: mean has ${pre.mean.length} values for ${pre.channels} channels`);
    if (pre.std.length !== pre.channels && pre.std.length !== 1)
      throw new UserError(`${file}: std has ${pre.std.length} values for ${pre.channels} channels`);
    if (assumed.length)
      log(
        `${file}: no ${assumed.join(', ')} in the model or the options; assuming ${assumed
          .map((k) => `${k} ${JSON.stringify(pre[k as keyof Preprocessing])}`)
          .join(', ')}`,
      );

    let session: ort.InferenceSession;
    try {
      ({ session } = await createSession(fs.readFileSync(file), {
        device: o.device ?? 'cpu',
        threads: o.threads,
        spinning: o.spinning,
        log,
      }));
    } catch (e) {
      throw new UserError(`${file}: onnxruntime cannot load the model (${(e as Error).message.split('\n')[0]})`, { cause: e });
    }
    const output = o.output ?? (info.outputs.some((t) => t.name === 'embeddings') ? 'embeddings' : info.outputs[0]?.name);
    if (!output || !session.outputNames.includes(output))
      throw new UserError(`${file}: no output '${o.output}' (outputs: ${session.outputNames.join(', ')})`);
    const fixedBatch = typeof image.shape[0] === 'number' ? image.shape[0] : null;

    // Probe to learn the output's real shape; a dynamic batch with two sizes, so that a model
    // whose output does not follow the batch (one that reduces over it, say) is refused here.
    let dims: number[] = [];
    let kind: OnnxEncoder['outputKind'] = '[N, D]';
    for (const n of fixedBatch ? [fixedBatch] : [1, 2]) {
      try {
        const x = new Float32Array(n * pre.channels * pre.height * pre.width);
        for (let i = 0; i < x.length; i++) x[i] = Math.sin(i); // rows differ
        const probe = await session.run({ [image.name]: new ort.Tensor('float32', x, [n, pre.channels, pre.height, pre.width]) });
        dims = probe[output].dims as number[];
        if (probe[output].type !== 'float32')
          throw new UserError(`${file}: output '${output}' is ${probe[output].type}, not float32 embeddings`);
      } catch (e) {
        if (e instanceof UserError) throw e;
        throw new UserError(
          `${file}: running the model on a [${n}, ${pre.channels}, ${pre.height}, ${pre.width}] input failed (${(e as Error).message.split('\n')[0]})`,
          { cause: e },
        );
      }
      if (dims.length === 2) kind = '[N, D]';
      else if (dims.length === 4 && dims[2] === 1 && dims[3] === 1) kind = '[N, D, 1, 1]';
      else if (dims.length === 3) kind = '[N, T, D]';
      else
        throw new UserError(
          `${file}: output '${output}' has shape [${dims.join(', ')}], not an embedding ([N, D], [N, D, 1, 1] or [N, T, D])`,
        );
      if (dims[0] !== n)
        throw new UserError(
          `${file}: output '${output}' has shape [${dims.join(', ')}] for a batch of ${n}: not one embedding per image (does the model reduce over the batch?)`,
        );
    }
    const dim = kind === '[N, T, D]' ? dims[2] : dims[1];
    return new OnnxEncoder(session, file, info, image.name, output, fixedBatch, pre, assumed, o.pooling ?? 'cls', dim, kind);
  }

  /** Embeddings [n, dim] of n preprocessed NCHW float images; chunks or pads to a fixed batch. */
  async embed(images: Float32Array, n: number, maxBatch = 64): Promise<Float32Array> {
    const { channels: c, height: h, width: w } = this.preprocessing;
    const per = c * h * w;
    if (images.length !== n * per) throw new RangeError(`embed: ${images.length} values for ${n} images of [${c}, ${h}, ${w}]`);
    const out = new Float32Array(n * this.dim);
    const step = this.fixedBatch ?? maxBatch;
    for (let s = 0; s < n; s += step) {
      const m = Math.min(step, n - s);
      const b = this.fixedBatch ?? m;
      const buf = new Float32Array(b * per);
      buf.set(images.subarray(s * per, (s + m) * per));
      const r = (await this.session.run({ [this.input]: new ort.Tensor('float32', buf, [b, c, h, w]) }))[this.output];
      // Every run, not only the probe: a wrong row count would otherwise leave zeros behind.
      const rows = (r.dims as number[])[0];
      const width = (r.dims as number[])[r.dims.length === 3 ? 2 : 1];
      if (rows !== b || width !== this.dim)
        throw new Error(
          `${this.file}: output '${this.output}' has shape [${r.dims.join(', ')}] for a batch of ${b}, expected ${b} × ${this.dim}`,
        );
      const data = r.data as Float32Array;
      if (this.outputKind === '[N, T, D]') {
        const T = (r.dims as number[])[1];
        for (let i = 0; i < m; i++) {
          const base = i * T * this.dim;
          if (this.pooling === 'cls') out.set(data.subarray(base, base + this.dim), (s + i) * this.dim);
          else
            for (let d = 0; d < this.dim; d++) {
              let acc = 0;
              for (let t = 0; t < T; t++) acc += data[base + t * this.dim + d];
              out[(s + i) * this.dim + d] = acc / T;
            }
        }
      } else out.set(data.subarray(0, m * this.dim), s * this.dim);
    }
    return out;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
