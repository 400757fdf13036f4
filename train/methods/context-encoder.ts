/**
 * Context encoder (Pathak et al., 2016), without the adversarial term: a square covering a
 * quarter of the image is erased (at a random place, or the centre) and the network inpaints it;
 * MSE on the erased pixels only. The erased image and the mask are drawn on the host each step.
 */
import { mlp } from '../engine/nn.js';
import * as o from '../engine/ops.js';
import { maskedMse } from '../losses/reconstruction.js';
import type { Method } from './types.js';

export const context: Method = {
  name: 'context',
  summary: 'reconstruction: inpaint an erased quarter of the image from its context',
  views: 1,
  augment: 'weak',
  params: {
    mask_area: { default: 0.25, help: 'erased fraction of the image (one square)' },
    random_position: { default: 1, help: '1: the square lands anywhere; 0: always the centre' },
    decoder_hidden: { default: 1024, help: 'decoder hidden width' },
  },
  optimizer: { name: 'adamw', lrPer256: 1e-3, weightDecay: 1e-5 },
  build(ctx, backbone, views, hp) {
    const clean = views[0];
    const [B, C, H, W] = clean.dims;
    const erased = ctx.g.input('erased', [B, C, H, W]);
    const mask = ctx.g.input('erase_mask', [B, 1, H, W]);
    const h = backbone.build(ctx, erased).features;
    const recon = o.reshape(mlp(ctx, 'decoder', h, { dims: [hp.decoder_hidden, C * H * W] }), [B, C, H, W]);
    return { loss: maskedMse(recon, clean, mask), monitor: h };
  },
  runtime: ({ hp }) => ({
    feeds: (s) => {
      const [B, C, H, W] = s.viewDims[0];
      const side = Math.max(1, Math.round(Math.sqrt(hp.mask_area) * H));
      const x = s.views[0];
      const erased = x.slice();
      const mask = new Float32Array(B * H * W);
      for (let b = 0; b < B; b++) {
        const y0 = hp.random_position ? Math.floor(s.rng.next() * (H - side + 1)) : Math.floor((H - side) / 2);
        const x0 = hp.random_position ? Math.floor(s.rng.next() * (W - side + 1)) : Math.floor((W - side) / 2);
        for (let y = y0; y < y0 + side; y++)
          for (let xx = x0; xx < x0 + side; xx++) {
            mask[b * H * W + y * W + xx] = 1;
            // 0 is the dataset mean after normalisation: a grey square.
            for (let c = 0; c < C; c++) erased[((b * C + c) * H + y) * W + xx] = 0;
          }
      }
      return { erased, erase_mask: mask };
    },
  }),
};
