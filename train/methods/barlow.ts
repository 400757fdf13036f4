/**
 * Barlow Twins (Zbontar et al., 2021): the cross-correlation of the two views' standardised
 * projections is pushed to the identity: invariance on the diagonal, redundancy reduction off it.
 */
import { barlowTwinsLoss } from '../losses/barlow-twins.js';
import { encodeViews, headViews, projector } from './heads.js';
import type { Method } from './types.js';

export const barlow: Method = {
  name: 'barlow',
  summary: 'redundancy reduction: cross-correlation of the two views’ embeddings towards the identity',
  views: 2,
  augment: 'byol',
  params: {
    lambda: { default: 5e-3, help: 'weight λ of the off-diagonal terms (or 1/d)' },
    proj_dim: { default: 2048, help: 'projector width, 3 layers (smaller for small data)' },
  },
  optimizer: { name: 'lars', lrPer256: 0.2, weightDecay: 1.5e-6 },
  build(ctx, backbone, views, hp) {
    const z = headViews(encodeViews(ctx, backbone, views), (h) => this.head!(ctx, h, hp));
    return { loss: barlowTwinsLoss(z[0], z[1], hp.lambda), monitor: z[0] };
  },
  head: (ctx, h, hp) => projector(ctx, h, [hp.proj_dim, hp.proj_dim, hp.proj_dim]),
};
