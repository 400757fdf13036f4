/**
 * SwAV (Caron et al., 2020): online clustering. Projections of every crop are scored against K
 * learnable prototypes (L2-normalised each step); Sinkhorn–Knopp turns each global crop's scores
 * into equipartitioned codes, and every other crop predicts them (swapped prediction). The
 * prototypes stay frozen during the first epoch.
 */
import { init } from '../engine/nn.js';
import * as o from '../engine/ops.js';
import { swappedPredictionLoss } from '../losses/swav.js';
import { encodeViews, headViews, projector } from './parts.js';
import type { Method } from './types.js';
import { UserError } from '../../core/errors.js';

export const swav: Method = {
  name: 'swav',
  summary: 'clustering: swapped prediction of Sinkhorn-equipartitioned prototype codes (multi-crop)',
  views: 2,
  localCropsParam: 'local_crops',
  augment: 'multicrop',
  params: {
    prototypes: { default: 300, help: 'prototypes K (3000 on ImageNet; 100-300 for CIFAR)' },
    temperature: { default: 0.1, help: 'softmax temperature τ' },
    epsilon: { default: 0.05, help: 'Sinkhorn entropy ε' },
    sinkhorn_iters: { default: 3, help: 'Sinkhorn–Knopp iterations' },
    freeze_prototypes_epochs: { default: 1, help: 'epochs before the prototypes start learning' },
    proj_hidden: { default: 2048, help: 'projector hidden width' },
    proj_out: { default: 128, help: 'projection size' },
    local_crops: { default: 0, help: 'small local crops per image (multi-crop; 6 in the paper)' },
  },
  optimizer: { name: 'lars', lrPer256: 0.6, weightDecay: 1e-6 },
  validate({ backbone, hp }) {
    if (backbone === 'vit' && hp.local_crops > 0)
      throw new UserError(`swav with the vit backbone: local crops need position embeddings for a second size; pass --set local_crops=0`);
  },
  build(ctx, backbone, views, hp) {
    const z = headViews(encodeViews(ctx, backbone, views), (h) => this.head!(ctx, h, hp)).map((x) => o.l2normalize(x, 1));
    const c = o.l2normalize(
      ctx.within('swav', () => ctx.param('prototypes', [hp.prototypes, hp.proj_out], init.uniformFanIn(hp.proj_out))),
      1,
    );
    // Frozen prototypes: the same forward value, with their gradient scaled by (1 − freeze).
    const freeze = ctx.g.input('swav_freeze', []);
    const cEff = o.add(o.mul(o.stopGradient(c), freeze), o.mul(c, o.sub(1, freeze)));
    const scores = z.map((zi) => o.gemm(zi, cEff, { transB: true }));
    return { loss: swappedPredictionLoss(scores, 2, hp.temperature, hp.epsilon, hp.sinkhorn_iters), monitor: z[0] };
  },
  runtime: ({ hp }) => ({ feeds: (s) => ({ swav_freeze: s.epoch < hp.freeze_prototypes_epochs ? 1 : 0 }) }),
  head: (ctx, h, hp) => projector(ctx, h, [hp.proj_hidden, hp.proj_out]),
};
