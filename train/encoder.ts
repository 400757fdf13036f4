/**
 * The encoder as an inference graph: the backbone in eval mode with trained values baked in as
 * initialisers. The trainer's kNN check runs this graph, and it is the graph export writes.
 */
import { Graph, type Tensor } from './engine/graph.js';
import { Ctx } from './engine/nn.js';
import { Program } from './engine/program.js';
import { makeBackbone } from './backbones/index.js';
import { getMethod } from './methods/index.js';
import { l2normalize } from './engine/ops.js';
import { UserError } from '../core/errors.js';
import type { Device } from '../core/runtime/session.js';

export interface EncoderSpec {
  backbone: string;
  /** Backbone width multiplier. */
  widthMult: number;
  channels: number;
  height: number;
  width: number;
  /** Append the method's projection head (export `--head projector`). */
  head?: { method: string; hp: Record<string, number> };
  /** L2-normalise the output embedding. */
  normalize?: boolean;
  /** Also output the last feature map `feature_map` [N, C, h, w] (local features for BoWNet teachers). */
  featureMap?: boolean;
}

/** Builds the eval-mode encoder graph for a batch of `batch` images (a number, or 'N' for dynamic). */
export function buildEncoderGraph(
  spec: EncoderSpec,
  values: Map<string, Float32Array>,
  batch: number | string,
): { g: Graph; features: string } {
  const g = new Graph('infer');
  const ctx = new Ctx(g, { training: false, values });
  const x = g.input('pixel_values', [batch, spec.channels, spec.height, spec.width]);
  const bb = makeBackbone(spec.backbone, { width: spec.widthMult });
  const out = bb.build(ctx, x);
  let emb = out.features;
  if (spec.head) {
    const m = getMethod(spec.head.method);
    if (!m.head) throw new UserError(`method '${m.name}' has no projection head to export`);
    emb = m.head(ctx, emb, spec.head.hp);
  }
  if (spec.normalize) emb = l2normalize(emb, 1);
  const features = g.output(emb, 'embeddings');
  if (out.clsAttention) g.output(out.clsAttention, 'attention');
  if (spec.featureMap) {
    if (!out.featureMap) throw new UserError(`the ${spec.backbone} backbone has no feature map to export`);
    g.output(out.featureMap, 'feature_map');
  }
  return { g, features: features.name };
}

/**
 * "Precise BN": re-estimates every BatchNorm's running statistics with the current weights on
 * un-augmented training images (the distribution the encoder embeds at inference). The EMA kept
 * during training lags behind fast-moving weights, most of all in short runs.
 */
export async function recalibrateBatchNorm(
  spec: EncoderSpec,
  values: Map<string, Float32Array>,
  images: Float32Array,
  n: number,
  o: { batch?: number; device?: Device; threads?: number } = {},
): Promise<Map<string, Float32Array>> {
  // The composed BatchNorm, never ORT's fused training kernel here: with the parameters as
  // initialisers (not graph inputs, as in the step graph) the fused kernel's statistics came out
  // exactly twice the batch's, mean and variance alike, and every checkpoint, kNN check and
  // exported model carried them (issue 13: 38.1% kNN instead of 42.8% on the parity recipe).
  const means = await meanOverBatches(
    spec,
    values,
    images,
    n,
    { ...o, batch: o.batch ?? 256, ctx: { training: true, bnMomentum: 1, fusedBatchNorm: false } },
    (ctx) => [...ctx.bufferUpdates],
  );
  const out = new Map(values);
  for (const [name, mean] of means) out.set(name, Float32Array.from(mean));
  return out;
}

/**
 * Builds the encoder on `pixel_values` [batch, C, H, W] in a context of `o.ctx`, runs the
 * tensors `outputs(ctx)` names over the images in whole batches, and returns each averaged over
 * the batches, by name (statistics passes: BatchNorm re-estimation, the calibration of inserted
 * BatchNorms). Empty where `outputs` names none.
 */
export async function meanOverBatches(
  spec: EncoderSpec,
  values: Map<string, Float32Array>,
  images: Float32Array,
  n: number,
  o: { batch: number; device?: Device; threads?: number; ctx: Omit<ConstructorParameters<typeof Ctx>[1], 'values'> },
  outputs: (ctx: Ctx) => [string, Tensor][],
): Promise<Map<string, Float64Array>> {
  const batch = Math.min(o.batch, n);
  const g = new Graph('infer');
  const ctx = new Ctx(g, { ...o.ctx, values });
  makeBackbone(spec.backbone, { width: spec.widthMult }).build(
    ctx,
    g.input('pixel_values', [batch, spec.channels, spec.height, spec.width]),
  );
  const named = outputs(ctx);
  if (named.length === 0) return new Map();
  for (const [name, t] of named) g.output(t, `mean.${name}`);
  const prog = await Program.compile(g, { device: o.device, threads: o.threads });
  const per = spec.channels * spec.height * spec.width;
  const sums = new Map(named.map(([name, t]) => [name, new Float64Array(t.size)]));
  let batches = 0;
  try {
    for (let s = 0; s + batch <= n; s += batch, batches++) {
      const r = await prog.run({ pixel_values: images.subarray(s * per, (s + batch) * per) });
      for (const [name, acc] of sums) {
        const v = r[`mean.${name}`] as Float32Array;
        for (let i = 0; i < acc.length; i++) acc[i] += v[i];
      }
    }
  } finally {
    await prog.release();
  }
  for (const acc of sums.values()) for (let i = 0; i < acc.length; i++) acc[i] /= batches;
  return sums;
}

export class Embedder {
  private constructor(
    private readonly prog: Program,
    readonly batch: number,
    readonly dim: number,
    private readonly per: number,
  ) {}

  static async create(
    spec: EncoderSpec,
    values: Map<string, Float32Array>,
    o: { batch?: number; device?: Device; threads?: number } = {},
  ): Promise<Embedder> {
    const batch = o.batch ?? 256;
    const { g } = buildEncoderGraph(spec, values, batch);
    const dim = g.outputs[0].shape[1] as number;
    const prog = await Program.compile(g, { device: o.device, threads: o.threads });
    return new Embedder(prog, batch, dim, spec.channels * spec.height * spec.width);
  }

  /** Embeds n images given as normalised NCHW floats; pads the last batch. */
  async embed(images: Float32Array, n: number): Promise<Float32Array> {
    const out = new Float32Array(n * this.dim);
    const buf = new Float32Array(this.batch * this.per);
    for (let s = 0; s < n; s += this.batch) {
      const m = Math.min(this.batch, n - s);
      buf.fill(0);
      buf.set(images.subarray(s * this.per, (s + m) * this.per));
      const r = await this.prog.run({ pixel_values: buf });
      out.set((r.embeddings as Float32Array).subarray(0, m * this.dim), s * this.dim);
    }
    return out;
  }

  release(): Promise<void> {
    return this.prog.release();
  }
}
