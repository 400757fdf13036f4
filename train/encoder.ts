/**
 * The encoder as an inference graph: the backbone in eval mode with trained values baked in as
 * initialisers. The trainer's kNN check runs this graph, and it is the graph export writes.
 */
import { Graph } from './engine/graph.js';
import { Ctx } from './engine/nn.js';
import { Program } from './engine/program.js';
import { makeBackbone } from './backbones/index.js';
import type { Device } from '../core/runtime/session.js';

export interface EncoderSpec {
  backbone: string;
  /** Backbone width multiplier. */
  widthMult: number;
  channels: number;
  height: number;
  width: number;
}

/** Builds the eval-mode encoder graph for a batch of `batch` images (a number, or 'N' for dynamic). */
export function buildEncoderGraph(spec: EncoderSpec, values: Map<string, Float32Array>, batch: number | string): { g: Graph; features: string } {
  const g = new Graph('infer');
  const ctx = new Ctx(g, { training: false, values });
  const x = g.input('pixel_values', [batch, spec.channels, spec.height, spec.width]);
  const bb = makeBackbone(spec.backbone, { width: spec.widthMult });
  const out = bb.build(ctx, x);
  const features = g.output(out.features, 'embeddings');
  if (out.clsAttention) g.output(out.clsAttention, 'attention');
  return { g, features: features.name };
}

export class Embedder {
  private constructor(
    private readonly prog: Program,
    readonly batch: number,
    readonly dim: number,
    private readonly per: number,
  ) {}

  static async create(spec: EncoderSpec, values: Map<string, Float32Array>, o: { batch?: number; device?: Device; threads?: number } = {}): Promise<Embedder> {
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
