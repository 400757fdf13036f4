/**
 * BYOL (Grill et al., 2020): an online encoder + projector + predictor regresses the projection of
 * an EMA target network on the other view; 2 − 2·cos(q(v1), sg(z_t(v2))), symmetrised. No
 * negatives: the slowly moving target and the predictor's asymmetry prevent collapse.
 */
import { mlp } from '../engine/nn.js';
import { byolLoss } from '../losses/cosine.js';
import { encodeViews, headViews, projector, teacherCtx } from './heads.js';
import type { Method } from './types.js';
import * as o from '../engine/ops.js';

export const byol: Method = {
  name: 'byol',
  summary: 'teacher-student: predict an EMA target network’s projection of the other view',
  views: 2,
  augment: 'byol',
  params: {
    ema: { default: 0.99, help: 'EMA momentum τ at the start (cosine schedule to 1)' },
    proj_hidden: { default: 4096, help: 'projector and predictor hidden width (smaller for small data)' },
    proj_out: { default: 256, help: 'projection size' },
  },
  optimizer: { name: 'lars', lrPer256: 1.0, weightDecay: 1.5e-6 },
  teacherMomentum: (hp) => hp.ema,
  build(ctx, backbone, views, hp) {
    const z = headViews(encodeViews(ctx, backbone, views), (h) => this.head!(ctx, h, hp));
    const p = headViews(z, (x) => mlp(ctx, 'predictor', x, { dims: [hp.proj_hidden, hp.proj_out], norm: 'batch' }));
    const t = teacherCtx(ctx);
    const zt = headViews(encodeViews(t, backbone, views), (h) => this.head!(t, h, hp)).map(o.stopGradient);
    const loss = o.mul(o.add(byolLoss(p[0], zt[1]), byolLoss(p[1], zt[0])), 0.5);
    return { loss, monitor: z[0] };
  },
  head: (ctx, h, hp) => projector(ctx, h, [hp.proj_hidden, hp.proj_out]),
};
