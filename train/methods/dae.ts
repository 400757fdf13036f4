/**
 * Denoising autoencoder (Vincent et al., 2008): the encoder sees a corrupted image (Gaussian noise
 * σ, or masking noise that zeroes a fraction of the pixels) and a decoder reconstructs the clean
 * one from the pooled feature; MSE on pixels. The corruption is drawn on the host each step
 * (seeded by step) and fed as the `corrupted` input.
 */
import { mlp } from '../engine/nn.js';
import * as o from '../engine/ops.js';
import { mse } from '../losses/reconstruction.js';
import type { Method } from './types.js';

export const dae: Method = {
  name: 'dae',
  summary: 'reconstruction: rebuild the clean image from a noisy one (pooled feature → MLP decoder)',
  views: 1,
  augment: 'weak',
  params: {
    noise_std: { default: 0.3, help: 'Gaussian noise σ (in normalised pixel units)' },
    mask_ratio: { default: 0, help: 'masking noise instead: fraction of pixels zeroed (e.g. 0.3)' },
    decoder_hidden: { default: 1024, help: 'decoder hidden width' },
  },
  optimizer: { name: 'adamw', lrPer256: 1e-3, weightDecay: 1e-5 },
  build(ctx, backbone, views, hp) {
    const clean = views[0];
    const [B, C, H, W] = clean.dims;
    const corrupted = ctx.g.input('corrupted', [B, C, H, W]);
    const h = backbone.build(ctx, corrupted).features;
    const recon = mlp(ctx, 'decoder', h, { dims: [hp.decoder_hidden, C * H * W] });
    return { loss: mse(recon, o.reshape(clean, [B, C * H * W])), monitor: h };
  },
  runtime: ({ hp }) => ({
    feeds: (s) => {
      const x = s.views[0];
      const out = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) {
        if (hp.mask_ratio > 0) out[i] = s.rng.next() < hp.mask_ratio ? 0 : x[i];
        else out[i] = x[i] + hp.noise_std * s.rng.normal();
      }
      return { corrupted: out };
    },
  }),
};
