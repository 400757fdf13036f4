/**
 * Instance discrimination with NCE (Wu et al., 2018): every training image is its own class; a
 * memory bank holds one embedding per image, and noise-contrastive estimation tells the image's
 * own entry from K noise entries drawn uniformly from the bank. The normalising constant Z is the
 * Monte-Carlo estimate N·mean exp(v·m/τ) over the step's noise samples, re-estimated every step
 * (`fixed_z 1`: once, from the first batch, as in the paper; with a bank that starts random the
 * fixed value soon underestimates Z and the loss grows without bound).
 */
import { linear } from '../engine/nn.js';
import * as o from '../engine/ops.js';
import { nceLoss } from '../losses/memory-bank.js';
import { bankIndices, buffer, gatherRows, int64, memoryBank, updateBuffer } from './state.js';
import type { Method } from './types.js';

export const nce: Method = {
  name: 'nce',
  summary: 'contrastive: instance discrimination against a memory bank with noise-contrastive estimation',
  views: 1,
  augment: 'simclr',
  params: {
    negatives: { default: 4096, help: 'noise samples K per step' },
    temperature: { default: 0.07, help: 'temperature τ' },
    dim: { default: 128, help: 'embedding size d' },
    bank_momentum: { default: 0.5, help: 'memory bank update momentum' },
    fixed_z: { default: 0, help: '1: estimate Z once from the first batch (the paper); 0: every step' },
  },
  optimizer: { name: 'sgd', lrPer256: 0.03, weightDecay: 5e-4 },
  build(ctx, backbone, views, hp, env) {
    const v = o.l2normalize(this.head!(ctx, backbone.build(ctx, views[0]).features, hp), 1);
    const { bank, mine } = memoryBank(ctx, env, v, hp.bank_momentum);
    const noise = gatherRows(bank, ctx.g.input('noise_indices', [hp.negatives], 'int64'));
    const pos = o.reduceSum(o.mul(v, mine), [1]);
    const neg = o.gemm(v, noise, { transB: true });
    const estimate = o.stopGradient(o.mul(o.reduceMean(o.exp(o.mul(neg, 1 / hp.temperature))), env.datasetSize));
    let zNow = estimate;
    if (hp.fixed_z) {
      // Kept from the first batch on (0 means "not yet estimated").
      const z = ctx.within('nce', () => buffer(ctx, 'z', [1]));
      zNow = o.where(o.greater(z, 0), z, estimate);
      updateBuffer(ctx, z, zNow);
    }
    return { loss: nceLoss(pos, neg, hp.temperature, o.log(zNow), env.datasetSize), monitor: v };
  },
  runtime: ({ hp, datasetSize }) => ({
    feeds: (s) => ({ ...bankIndices(s), noise_indices: int64(Array.from({ length: hp.negatives }, () => s.rng.int(datasetSize))) }),
  }),
  head: (ctx, h, hp) => linear(ctx, 'projector', h, hp.dim),
};
