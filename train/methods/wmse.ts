/**
 * W-MSE (Ermolov et al., 2021): embeddings of a sub-batch are whitened (Newton–Schulz Σ^{-1/2}),
 * so they cannot collapse, and the positives are pulled together with the MSE of unit vectors.
 */
import { wmseLoss } from '../losses/whitening.js';
import { encodeViews, headViews, projector } from './heads.js';
import type { Method } from './types.js';

export const wmse: Method = {
  name: 'wmse',
  summary: 'redundancy reduction: MSE between positives after whitening each sub-batch',
  views: 2,
  augment: 'simclr',
  params: {
    w_size: { default: 128, help: 'whitening sub-batch (images)' },
    dim: { default: 64, help: 'embedding size d' },
    proj_hidden: { default: 1024, help: 'projector hidden width' },
    eps: { default: 0, help: 'ε added to the covariance diagonal' },
    ns_iters: { default: 20, help: 'Newton–Schulz iterations for Σ^{-1/2}' },
    joint: { default: 0, help: "1: whiten both views' rows together (sslkit before 0.2), 0: each view apart, as the paper" },
  },
  optimizer: { name: 'adamw', lrPer256: 2e-3, weightDecay: 1e-6 },
  build(ctx, backbone, views, hp) {
    const z = headViews(encodeViews(ctx, backbone, views), (h) => this.head!(ctx, h, hp));
    return { loss: wmseLoss(z[0], z[1], hp.w_size, hp.ns_iters, hp.eps, hp.joint === 1), monitor: z[0] };
  },
  head: (ctx, h, hp) => projector(ctx, h, [hp.proj_hidden, hp.dim]),
};
