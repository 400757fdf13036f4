/**
 * Triplet loss for self-supervision: anchor and positive are two views of one image, the negative
 * another image's view, the hardest in the batch by default.
 */
import { tripletLoss } from '../losses/triplet.js';
import { encodeViews, headViews, projector } from './heads.js';
import type { Method } from './types.js';

export const triplet: Method = {
  name: 'triplet',
  summary: 'contrastive: triplet margin loss, two views as anchor/positive, hardest other image as negative',
  views: 2,
  augment: 'simclr',
  params: {
    margin: { default: 0.5, help: 'margin on squared distances of unit vectors' },
    hard: { default: 1, help: '1: hardest negative in the batch; 0: a random (the next) image' },
    proj_hidden: { default: 2048, help: 'projector hidden width' },
    proj_out: { default: 128, help: 'embedding size' },
  },
  optimizer: { name: 'adamw', lrPer256: 1e-3, weightDecay: 1e-6 },
  build(ctx, backbone, views, hp) {
    const z = headViews(encodeViews(ctx, backbone, views), (h) => this.head!(ctx, h, hp));
    return { loss: tripletLoss(z[0], z[1], hp.margin, hp.hard !== 0), monitor: z[0] };
  },
  head: (ctx, h, hp) => projector(ctx, h, [hp.proj_hidden, hp.proj_out]),
};
