/**
 * MoCo v2 (He et al., 2020; Chen et al., 2020): a query encoder and an EMA key encoder; each
 * query's positive is the key of the other view, and a FIFO queue of K past keys supplies the
 * negatives. InfoNCE, symmetrised over the two views; the step's keys then enter the queue.
 */
import * as o from '../engine/ops.js';
import { queueInfoNce } from '../losses/info-nce.js';
import { buffer, enqueue, updateBuffer } from './state.js';
import { encodeViews, headViews, projector, teacherCtx } from './heads.js';
import type { Method } from './types.js';

export const moco: Method = {
  name: 'moco',
  summary: 'contrastive: InfoNCE against a queue of keys from an EMA key encoder',
  views: 2,
  augment: 'simclr',
  params: {
    momentum: { default: 0.99, help: 'key encoder EMA momentum m (cosine schedule to 1)' },
    queue: { default: 4096, help: 'queue length K (65536 on ImageNet)' },
    temperature: { default: 0.2, help: 'InfoNCE temperature τ' },
    proj_hidden: { default: 2048, help: 'projector hidden width' },
    proj_out: { default: 128, help: 'key/query size' },
  },
  optimizer: { name: 'sgd', lrPer256: 0.06, weightDecay: 5e-4 },
  teacherMomentum: (hp) => hp.momentum,
  build(ctx, backbone, views, hp) {
    const q = headViews(encodeViews(ctx, backbone, views), (h) => this.head!(ctx, h, hp)).map((z) => o.l2normalize(z, 1));
    const t = teacherCtx(ctx);
    const k = headViews(encodeViews(t, backbone, views), (h) => this.head!(t, h, hp)).map((z) => o.stopGradient(o.l2normalize(z, 1)));
    const queue = ctx.within('moco', () => buffer(ctx, 'queue', [hp.queue, hp.proj_out], 'unit-rows'));
    const loss = o.mul(o.add(queueInfoNce(q[0], k[1], queue, hp.temperature), queueInfoNce(q[1], k[0], queue, hp.temperature)), 0.5);
    updateBuffer(ctx, queue, enqueue(queue, o.concat(k, 0)));
    return { loss, monitor: q[0] };
  },
  head: (ctx, h, hp) => projector(ctx, h, [hp.proj_hidden, hp.proj_out]),
};
