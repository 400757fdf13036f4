/**
 * `resnet`: the CIFAR-style ResNet (3×3 stem, no max-pool), depth 10 ([1,1,1,1] basic blocks) or
 * 18 ([2,2,2,2]), widths 64·w, 128·w, 256·w, 512·w with stride 2 from the second stage on.
 */
import { basicBlock, batchNorm, conv2d, type Ctx } from '../engine/nn.js';
import { globalAveragePool, reshape, relu } from '../engine/ops.js';
import type { Tensor } from '../engine/graph.js';
import type { Backbone, BackboneOptions } from './types.js';

const BLOCKS: Record<number, number[]> = { 10: [1, 1, 1, 1], 18: [2, 2, 2, 2] };

export function resnet(opts: BackboneOptions = {}): Backbone {
  const depth = opts.depth ?? 18;
  const blocks = BLOCKS[depth];
  if (!blocks) throw new RangeError(`resnet: depth must be 10 or 18, got ${depth}`);
  const widths = [64, 128, 256, 512].map((c) => Math.round(c * (opts.width ?? 1)));
  return {
    name: `resnet${depth}`,
    dim: widths[3],
    build(ctx: Ctx, x: Tensor) {
      let h = relu(batchNorm(ctx, 'stem.bn', conv2d(ctx, 'stem.conv', x, widths[0], { kernel: 3, padding: 1 })));
      widths.forEach((c, s) => {
        for (let b = 0; b < blocks[s]; b++) h = basicBlock(ctx, `layer${s + 1}.${b}`, h, c, b === 0 && s > 0 ? 2 : 1);
      });
      return { features: reshape(globalAveragePool(h), [0, -1]), featureMap: h };
    },
  };
}
