/**
 * `vit`: a tiny Vision Transformer for 28-32 px images: 4×4 patches, a CLS token, learned position
 * embeddings, pre-norm blocks (LayerNorm, multi-head self-attention, GELU MLP). The embedding is
 * the final CLS token; the CLS token's self-attention in the last block is exposed per head
 * (DINO's attention maps). Position embeddings are learned for the first image size built (the
 * training size); another size (multi-crop's small crops) gets them resized bilinearly, as DINO
 * interpolates them.
 */
import { init, layerNorm, linear, selfAttention, type Ctx } from '../engine/nn.js';
import * as o from '../engine/ops.js';
import type { Tensor } from '../engine/graph.js';
import type { Backbone, BackboneOptions } from './types.js';
import { UserError } from '../../core/errors.js';

export function vit(opts: BackboneOptions & { patch?: number; depth?: number; heads?: number } = {}): Backbone {
  const dim = Math.round(128 * (opts.width ?? 1));
  const depth = opts.depth ?? 4;
  const heads = opts.heads ?? 4;
  const patch = opts.patch ?? 4;
  let grid: [number, number] | null = null; // the patch grid the position embeddings are for
  return {
    name: 'vit',
    dim,
    build(ctx: Ctx, x: Tensor) {
      // The batch may be symbolic (an exported model's dynamic batch): only C, H, W are numbers.
      const [C, H, W] = x.shape.slice(1) as number[];
      if (H % patch || W % patch)
        throw new UserError(
          `vit: a ${H}×${W} view is not a multiple of the ${patch}-pixel patch` +
            (grid ? ` (multi-crop's small crops are half the image size: use 32-px data or --set local_crops=0)` : ''),
        );
      const [gh, gw] = [H / patch, W / patch];
      const P = gh * gw;
      grid ??= [gh, gw];
      const P0 = grid[0] * grid[1];
      // Patch embedding as a strided convolution, then [N, P, D].
      const w = ctx.param('patch.weight', [dim, C, patch, patch], init.truncNormal(0.02));
      const b = ctx.param('patch.bias', [dim], init.constant(0), 'bias');
      const tokens = o.transpose(o.reshape(o.conv(x, w, b, { strides: [patch, patch] }), [0, dim, P]), [0, 2, 1]);
      const cls = ctx.param('cls_token', [1, 1, dim], init.truncNormal(0.02), 'norm');
      let pos = ctx.param('pos_embed', [1, P0 + 1, dim], init.truncNormal(0.02), 'norm');
      if (gh !== grid[0] || gw !== grid[1]) {
        const patchPos = o.reshape(o.transpose(o.slice(pos, [1], [P0 + 1], [1]), [0, 2, 1]), [1, dim, grid[0], grid[1]]);
        const resized = o.resize(patchPos, [gh, gw], { mode: 'linear', coordinateTransformationMode: 'half_pixel' });
        pos = o.concat([o.slice(pos, [0], [1], [1]), o.transpose(o.reshape(resized, [1, dim, P]), [0, 2, 1])], 1);
      }
      // One CLS token per image without naming the batch size: 0·(first token) + cls broadcasts.
      const clsTokens = o.add(o.mul(o.slice(tokens, [0], [1], [1]), 0), cls);
      let h = o.add(o.concat([clsTokens, tokens], 1), pos);
      let lastAttn: Tensor | undefined;
      for (let i = 0; i < depth; i++) {
        ctx.within(`block${i}`, () => {
          const a = selfAttention(ctx, 'attn', layerNorm(ctx, 'norm1', h), heads);
          lastAttn = a.attn;
          h = o.add(h, a.y);
          const m = linear(ctx, 'mlp.fc2', o.gelu(linear(ctx, 'mlp.fc1', layerNorm(ctx, 'norm2', h), 2 * dim)), dim);
          h = o.add(h, m);
        });
      }
      h = layerNorm(ctx, 'norm', h);
      const features = o.reshape(o.slice(h, [0], [1], [1]), [0, dim]);
      // CLS row of the last attention, without the CLS column: [N, heads, P].
      const clsAttention = o.reshape(o.slice(lastAttn!, [0, 1], [1, P + 1], [2, 3]), [0, heads, P]);
      return { features, clsAttention };
    },
  };
}
