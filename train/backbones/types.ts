import type { Ctx } from '../engine/nn.js';
import type { Tensor } from '../engine/graph.js';

export interface BackboneOutput {
  /** Pooled image embedding [N, D]: the encoder's output, and what export writes. */
  features: Tensor;
  /** The last feature map [N, C, h, w] (local features for BoW methods and context decoders). */
  featureMap?: Tensor;
  /** ViT only: the CLS token's last-block self-attention over the patches [N, heads, patches]. */
  clsAttention?: Tensor;
}

export interface Backbone {
  name: string;
  /** Embedding size for a given input channel count. */
  dim: number;
  build(ctx: Ctx, x: Tensor): BackboneOutput;
  /** An imported encoder's parameters: all of them, and those read by the nodes up to and including `node`. */
  imported?: { parameters(): string[]; parametersUpTo(node: string): string[] };
}

export interface BackboneOptions {
  /** Width multiplier (channels × width). */
  width?: number;
  /** ResNet depth (10 or 18). */
  depth?: number;
}
