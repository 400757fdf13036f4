/**
 * SwAV (Caron et al., 2020): online clustering. Projections of every crop are scored against K
 * learnable prototypes (L2-normalised each step); Sinkhorn–Knopp turns each global crop's scores
 * into equipartitioned codes, and every other crop predicts them (swapped prediction). The
 * prototypes stay frozen during the first epoch. With batches under 256 a queue of each global
 * crop's past projections joins the Sinkhorn step once it is full and `queue_start_epochs` have
 * passed: B samples alone are too few to split evenly over K prototypes.
 */
import { init } from '../engine/nn.js';
import * as o from '../engine/ops.js';
import { queuedCodes, sinkhorn, swappedPrediction } from '../losses/swav.js';
import { buffer, enqueue, updateBuffer } from './state.js';
import { encodeViews, headViews, projector } from './heads.js';
import type { Method } from './types.js';

const usesQueue = (hp: Record<string, number>, batchSize: number) => hp.queue > 0 && batchSize < 256;

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
    queue: { default: 3840, help: 'queue of past projections per global crop for the codes, used with batches under 256 (0: off)' },
    queue_start_epochs: { default: 1, help: 'epochs before the queue joins the codes (15 of 800 in the paper)' },
  },
  optimizer: { name: 'lars', lrPer256: 0.6, weightDecay: 1e-6 },
  build(ctx, backbone, views, hp, env) {
    const z = headViews(encodeViews(ctx, backbone, views), (h) => this.head!(ctx, h, hp)).map((x) => o.l2normalize(x, 1));
    const c = o.l2normalize(
      ctx.within('swav', () => ctx.param('prototypes', [hp.prototypes, hp.proj_out], init.uniformFanIn(hp.proj_out))),
      1,
    );
    // Frozen prototypes: the same forward value, with their gradient scaled by (1 − freeze).
    const freeze = ctx.g.input('swav_freeze', []);
    const cEff = o.add(o.mul(o.stopGradient(c), freeze), o.mul(c, o.sub(1, freeze)));
    const scores = z.map((zi) => o.gemm(zi, cEff, { transB: true }));
    let codes = scores.slice(0, 2).map((s) => sinkhorn(s, hp.epsilon, hp.sinkhorn_iters));
    if (usesQueue(hp, env.batchSize)) {
      const on = o.greater(ctx.g.input('swav_queue_on', []), 0);
      codes = codes.map((plain, i) => {
        const queue = ctx.within('swav', () => buffer(ctx, `queue${i}`, [hp.queue, hp.proj_out]));
        updateBuffer(ctx, queue, enqueue(queue, z[i]));
        return o.where(on, queuedCodes(scores[i], o.gemm(queue, cEff, { transB: true }), hp.epsilon, hp.sinkhorn_iters), plain);
      });
    }
    return { loss: swappedPrediction(codes, scores, hp.temperature), monitor: z[0] };
  },
  runtime: ({ hp, batchSize }) => ({
    feeds: (s) => ({
      swav_freeze: s.epoch < hp.freeze_prototypes_epochs ? 1 : 0,
      // On once the queue holds only real projections (it fills from the first step).
      ...(usesQueue(hp, batchSize) ? { swav_queue_on: s.epoch >= hp.queue_start_epochs && s.step * batchSize >= hp.queue ? 1 : 0 } : {}),
    }),
  }),
  head: (ctx, h, hp) => projector(ctx, h, [hp.proj_hidden, hp.proj_out]),
};
