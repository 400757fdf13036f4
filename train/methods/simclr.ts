/**
 * SimCLR: two augmented views of each image; the other 2B−2 views of the batch are the negatives;
 * NT-Xent on the cosine similarities of projector outputs (METHODS.md, contrastive).
 */
import { concat } from '../engine/ops.js';
import { ntXent } from '../losses/nt-xent.js';
import { projector } from './heads.js';
import type { Method } from './types.js';

export const simclr: Method = {
  name: 'simclr',
  summary: 'contrastive: NT-Xent between two views, other images in the batch as negatives',
  views: 2,
  augment: 'simclr',
  params: {
    temperature: { default: 0.2, help: 'NT-Xent temperature τ (0.2 for CIFAR-size images, 0.5 in the paper)' },
    proj_hidden: { default: 2048, help: 'projector hidden width' },
    proj_out: { default: 128, help: 'projector output width' },
  },
  optimizer: { name: 'lars', lrPer256: 0.3, weightDecay: 1e-6 },
  build(ctx, backbone, views, hp) {
    // Both views go through the encoder as one batch: one pass, shared weights.
    const z = this.head!(ctx, backbone.build(ctx, concat(views, 0)).features, hp);
    return { loss: ntXent(z, hp.temperature), monitor: z };
  },
  head: (ctx, h, hp) => projector(ctx, h, [hp.proj_hidden, hp.proj_out]),
};
