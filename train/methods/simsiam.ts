/**
 * SimSiam (Chen & He, 2021): like BYOL without the EMA: the target is the same network behind a
 * stop-gradient. −cos(p(v1), sg(z(v2))) symmetrised; the predictor is a bottleneck MLP.
 */
import { mlp } from '../engine/nn.js';
import { simsiamLoss } from '../losses/cosine.js';
import { encodeViews, headViews } from './heads.js';
import type { Method } from './types.js';
import * as o from '../engine/ops.js';

export const simsiam: Method = {
  name: 'simsiam',
  summary: 'teacher-student: predict the other view’s projection through a stop-gradient (no EMA)',
  views: 2,
  augment: 'simclr',
  params: {
    proj_dim: { default: 2048, help: 'projector width (hidden and output)' },
    pred_hidden: { default: 512, help: 'predictor bottleneck width' },
    fix_pred_lr: { default: 1, help: '1: the predictor keeps the peak learning rate (no warm-up or decay), as in the paper' },
  },
  optimizer: { name: 'sgd', lrPer256: 0.05, weightDecay: 5e-4 },
  fixedLrParams: (hp) => (hp.fix_pred_lr ? ['predictor.'] : []),
  build(ctx, backbone, views, hp) {
    const z = headViews(encodeViews(ctx, backbone, views), (h) => this.head!(ctx, h, hp));
    const p = headViews(z, (x) => mlp(ctx, 'predictor', x, { dims: [hp.pred_hidden, hp.proj_dim], norm: 'batch' }));
    const loss = o.mul(o.add(simsiamLoss(p[0], z[1]), simsiamLoss(p[1], z[0])), 0.5);
    return { loss, monitor: z[0] };
  },
  // SimSiam's CIFAR projector: two BN-ReLU layers and a BN on the output.
  head: (ctx, h, hp) =>
    mlp(ctx, 'projector', h, { dims: [hp.proj_dim, hp.proj_dim], norm: 'batch', lastNorm: true, lastNormAffine: false }),
};
