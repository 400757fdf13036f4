/**
 * Negative sampling (word2vec-style, Mikolov et al., 2013) for instance discrimination: the image's
 * memory-bank entry is the positive, k negatives per image are drawn with probability ∝ f^0.75,
 * where f is the frequency of the negative's pseudo-class from k-means over the bank (re-clustered
 * at each epoch start; uniform before the first clustering).
 * Two additions make it learn (see negativeSamplingLoss): a logit bias, so that the positive is
 * not outweighed by k repulsions, and a BatchNorm (no affine) on the projection, which centres
 * each batch: without it the loss mostly pushes the direction all embeddings share (a random
 * encoder's outputs lie in a narrow cone) away from the bank, the bank follows a step later,
 * and the embeddings chase it into collapse. `bias 0 head_bn 0` is the formula as written.
 */
import { batchNorm, linear } from '../engine/nn.js';
import * as o from '../engine/ops.js';
import { negativeSamplingLoss } from '../losses/memory-bank.js';
import { bankIndices, gatherRows, int64, memoryBank } from './state.js';
import type { Method } from './types.js';
import { kmeans } from '../../core/kmeans.js';

export const negsample: Method = {
  name: 'negsample',
  summary: 'contrastive: word2vec negative sampling against a memory bank, negatives ∝ pseudo-class frequency^0.75',
  views: 1,
  augment: 'simclr',
  params: {
    negatives: { default: 16, help: 'negatives k per image' },
    temperature: { default: 0.1, help: 'temperature τ' },
    dim: { default: 128, help: 'embedding size d' },
    bank_momentum: { default: 0.5, help: 'memory bank update momentum' },
    clusters: { default: 100, help: 'k-means pseudo-classes over the bank' },
    power: { default: 0.75, help: 'exponent of the pseudo-class frequency' },
    bias: { default: -8, help: 'logit bias b: σ(s/τ + b); −8 with τ 0.1 puts the boundary at cosine 0.8 (0: word2vec)' },
    head_bn: { default: 1, help: '1: BatchNorm (no affine) on the projection before normalising' },
  },
  optimizer: { name: 'sgd', lrPer256: 0.03, weightDecay: 5e-4 },
  build(ctx, backbone, views, hp, env) {
    const v = o.l2normalize(this.head!(ctx, backbone.build(ctx, views[0]).features, hp), 1);
    const { bank, mine } = memoryBank(ctx, env, v, hp.bank_momentum);
    const negIdx = ctx.g.input('negative_indices', [env.batchSize * hp.negatives], 'int64');
    const neg = o.reshape(gatherRows(bank, negIdx), [env.batchSize, hp.negatives, hp.dim]);
    const sNeg = o.reshape(o.matmul(neg, o.unsqueeze(v, [2])), [env.batchSize, hp.negatives]);
    const sPos = o.reduceSum(o.mul(v, mine), [1]);
    return { loss: negativeSamplingLoss(sPos, sNeg, hp.temperature, hp.bias), monitor: v };
  },
  runtime: ({ hp, datasetSize, log }) => {
    // Pseudo-classes: members per class and the class sampling distribution ∝ f^power.
    let members: Int32Array[] | null = null;
    let cumulative: Float64Array | null = null;
    const cluster = (state: Map<string, Float32Array>, seed: number) => {
      const bank = state.get('bank.vectors')!;
      const k = Math.min(hp.clusters, datasetSize);
      const { assign } = kmeans(bank, hp.dim, k, { seed, iters: 10 });
      const lists: number[][] = Array.from({ length: k }, () => []);
      assign.forEach((c, i) => lists[c].push(i));
      members = lists.map((l) => Int32Array.from(l));
      const cum = new Float64Array(k);
      let total = 0;
      lists.forEach((l, c) => (cum[c] = total += (l.length / datasetSize) ** hp.power));
      cumulative = cum.map((x) => x / total);
      const sizes = lists.map((l) => l.length);
      log(`negsample: ${k} pseudo-classes from k-means over the bank (sizes ${Math.min(...sizes)}-${Math.max(...sizes)})`);
    };
    return {
      onEpochStart({ epoch, state, rng }) {
        if (epoch > 0) cluster(state, rng.int(1 << 30));
        return new Map();
      },
      feeds: (s) => {
        // A run resumed mid-epoch re-clusters the bank it restored.
        if (!members && s.epoch > 0) cluster(s.state, s.rng.int(1 << 30));
        const n = s.indices.length * hp.negatives;
        const neg = new Array<number>(n);
        for (let j = 0; j < n; j++) {
          if (!members || !cumulative) neg[j] = s.rng.int(datasetSize);
          else {
            const u = s.rng.next();
            let c = 0;
            while (c < cumulative.length - 1 && cumulative[c] < u) c++;
            const m = members[c];
            neg[j] = m.length ? m[s.rng.int(m.length)] : s.rng.int(datasetSize);
          }
        }
        return { ...bankIndices(s), negative_indices: int64(neg) };
      },
    };
  },
  head: (ctx, h, hp) => {
    const z = linear(ctx, 'projector', h, hp.dim);
    return hp.head_bn ? batchNorm(ctx, 'projector.bn', z, { affine: false }) : z;
  },
};
