/**
 * `convnet`: the small 3-stage residual CNN of ENGINE-NOTES.md for fast CPU runs (the quick-start
 * default): a 3×3 stem to 32 channels, one basic block per stage at 32, 64, 128 channels (stride 2
 * on the last two), global average pooling. 306k parameters at width 1. Convolutions start
 * from PyTorch's default initialisation (engine/nn.ts, ConvInit).
 */
import { basicBlock, batchNorm, conv2d, type Ctx } from '../engine/nn.js';
import { globalAveragePool, reshape, relu } from '../engine/ops.js';
import type { Tensor } from '../engine/graph.js';
import type { Backbone, BackboneOptions } from './types.js';

export function convnet(opts: BackboneOptions = {}): Backbone {
  const w = opts.width ?? 1;
  const widths = [32, 64, 128].map((c) => Math.round(c * w));
  return {
    name: 'convnet',
    dim: widths[2],
    build(outer: Ctx, x: Tensor) {
      // A plain PyTorch network of these layers would have nn.Conv2d's default initialisation.
      const ctx = outer.withConvInit('pytorch');
      let h = relu(batchNorm(ctx, 'stem.bn', conv2d(ctx, 'stem.conv', x, widths[0], { kernel: 3, padding: 1 })));
      widths.forEach((c, i) => {
        h = basicBlock(ctx, `stage${i + 1}`, h, c, i === 0 ? 1 : 2);
      });
      return { features: reshape(globalAveragePool(h), [0, -1]), featureMap: h };
    },
  };
}
