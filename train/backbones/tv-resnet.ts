/**
 * `tv-resnet18`, `tv-resnet34`, `tv-resnet50`: torchvision's ImageNet ResNets for photos at 96-224
 * pixels: a 7×7 stride-2 stem and a 3×3 stride-2 max-pool, basic blocks (18, 34) or bottleneck
 * blocks with the stride on the 3×3 convolution (50, torchvision's "v1.5"), torchvision's init.
 * Parameter names and shapes are torchvision's own (conv1.weight, bn1.running_mean,
 * layer2.0.downsample.0.weight, …), so a state_dict moves to and from a run one to one. The CIFAR
 * variants (3×3 stem, no pool) stay `resnet10` and `resnet18`.
 */
import { batchNorm, conv2d, type Ctx } from '../engine/nn.js';
import { add, globalAveragePool, maxPool, relu, reshape } from '../engine/ops.js';
import type { Tensor } from '../engine/graph.js';
import type { Backbone, BackboneOptions } from './types.js';

const LAYOUTS: Record<number, { blocks: number[]; bottleneck: boolean }> = {
  18: { blocks: [2, 2, 2, 2], bottleneck: false },
  34: { blocks: [3, 4, 6, 3], bottleneck: false },
  50: { blocks: [3, 4, 6, 3], bottleneck: true },
};

export function tvResnet(opts: BackboneOptions = {}): Backbone {
  const depth = opts.depth ?? 18;
  const layout = LAYOUTS[depth];
  if (!layout) throw new RangeError(`tv-resnet: depth must be 18, 34 or 50, got ${depth}`);
  const widths = [64, 128, 256, 512].map((c) => Math.round(c * (opts.width ?? 1)));
  const expansion = layout.bottleneck ? 4 : 1;
  return {
    name: `tv-resnet${depth}`,
    dim: widths[3] * expansion,
    build(ctx: Ctx, x: Tensor) {
      let h = relu(batchNorm(ctx, 'bn1', conv2d(ctx, 'conv1', x, widths[0], { kernel: 7, stride: 2, padding: 3 })));
      h = maxPool(h, [3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] });
      widths.forEach((c, s) => {
        for (let b = 0; b < layout.blocks[s]; b++) {
          const stride = b === 0 && s > 0 ? 2 : 1;
          const name = `layer${s + 1}.${b}`;
          h = layout.bottleneck ? bottleneck(ctx, name, h, c, stride) : basic(ctx, name, h, c, stride);
        }
      });
      return { features: reshape(globalAveragePool(h), [0, -1]), featureMap: h };
    },
  };
}

/** torchvision's `downsample`: a strided 1×1 convolution and its BatchNorm, where the shape changes. */
function shortcut(ctx: Ctx, x: Tensor, out: number, stride: number): Tensor {
  if (stride === 1 && x.shape[1] === out) return x;
  return batchNorm(ctx, 'downsample.1', conv2d(ctx, 'downsample.0', x, out, { kernel: 1, stride }));
}

function basic(ctx: Ctx, name: string, x: Tensor, out: number, stride: number): Tensor {
  return ctx.within(name, () => {
    let h = relu(batchNorm(ctx, 'bn1', conv2d(ctx, 'conv1', x, out, { kernel: 3, stride, padding: 1 })));
    h = batchNorm(ctx, 'bn2', conv2d(ctx, 'conv2', h, out, { kernel: 3, padding: 1 }));
    return relu(add(h, shortcut(ctx, x, out, stride)));
  });
}

function bottleneck(ctx: Ctx, name: string, x: Tensor, width: number, stride: number): Tensor {
  return ctx.within(name, () => {
    let h = relu(batchNorm(ctx, 'bn1', conv2d(ctx, 'conv1', x, width, { kernel: 1 })));
    h = relu(batchNorm(ctx, 'bn2', conv2d(ctx, 'conv2', h, width, { kernel: 3, stride, padding: 1 })));
    h = batchNorm(ctx, 'bn3', conv2d(ctx, 'conv3', h, width * 4, { kernel: 1 }));
    return relu(add(h, shortcut(ctx, x, width * 4, stride)));
  });
}
