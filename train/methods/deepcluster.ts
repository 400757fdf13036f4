/**
 * DeepCluster-v2 (Caron et al., 2018; 2020): at the start of every epoch k-means runs over a memory
 * bank of L2-normalised projections (several heads, each its own k-means); the centroids become
 * fixed prototypes and the assignments pseudo-labels. Each view is trained to predict its image's
 * pseudo-label: cross-entropy of softmax(z·prototypes/τ), averaged over heads and views. The first
 * epoch fills the bank (the prototypes are still zero, so it trains nothing).
 */
import * as o from '../engine/ops.js';
import { tensorData } from '../engine/graph.js';
import { bankIndices, buffer, gatherRows, memoryBank, unitRows } from './state.js';
import { encodeViews, headViews, projector } from './heads.js';
import { softCrossEntropy } from '../losses/common.js';
import type { Method } from './types.js';
import { kmeans } from '../../core/kmeans.js';
import { normalizeRows } from '../../core/vectors.js';

export const deepcluster: Method = {
  name: 'deepcluster',
  summary: 'clustering: predict k-means pseudo-labels of a memory bank, re-clustered every epoch',
  views: 2,
  augment: 'simclr',
  params: {
    clusters: { default: 100, help: 'prototypes K per head (3000 on ImageNet; 100 for CIFAR-size data)' },
    heads: { default: 3, help: 'k-means heads (each its own clustering)' },
    temperature: { default: 0.1, help: 'softmax temperature τ' },
    proj_hidden: { default: 2048, help: 'projector hidden width' },
    proj_out: { default: 128, help: 'projection size' },
    bank_momentum: { default: 0, help: 'memory bank update momentum (0: the newest projection)' },
  },
  optimizer: { name: 'lars', lrPer256: 0.6, weightDecay: 1e-6 },
  build(ctx, backbone, views, hp, env) {
    const z = headViews(encodeViews(ctx, backbone, views), (h) => this.head!(ctx, h, hp)).map((x) => o.l2normalize(x, 1));
    const { idx } = memoryBank(ctx, env, z[0], hp.bank_momentum);
    const K = hp.clusters;
    const prototypes = ctx.within('deepcluster', () => buffer(ctx, 'prototypes', [hp.heads * K, hp.proj_out]));
    const labels = ctx.within('deepcluster', () => buffer(ctx, 'labels', [hp.heads, env.datasetSize]));
    const classes = ctx.g.constant(
      tensorData(
        'float32',
        [1, K],
        Float32Array.from({ length: K }, (_, i) => i),
      ),
      'deepcluster_classes',
    );
    const terms = [];
    for (let h = 0; h < hp.heads; h++) {
      const proto = o.slice(prototypes, [h * K], [(h + 1) * K], [0]);
      const mine = gatherRows(o.reshape(o.slice(labels, [h], [h + 1], [0]), [env.datasetSize]), idx);
      const target = o.cast(o.equal(o.unsqueeze(mine, [1]), classes), 'float32');
      for (const zv of z)
        terms.push(softCrossEntropy(target, o.logSoftmax(o.mul(o.gemm(zv, proto, { transB: true }), 1 / hp.temperature), 1)));
    }
    return {
      loss: o.mul(
        terms.reduce((a, b) => o.add(a, b)),
        1 / terms.length,
      ),
      monitor: z[0],
    };
  },
  runtime: ({ hp, datasetSize, log }) => ({
    onEpochStart({ epoch, state, rng }) {
      const bank = state.get('bank.vectors')!;
      // The bank fills during the first epoch (it starts at zero); clustering starts after it.
      if (epoch === 0) return new Map();
      const K = Math.min(hp.clusters, datasetSize);
      const prototypes = new Float32Array(hp.heads * hp.clusters * hp.proj_out);
      const labels = new Float32Array(hp.heads * datasetSize);
      for (let h = 0; h < hp.heads; h++) {
        const { centroids, assign } = kmeans(bank, hp.proj_out, K, { seed: rng.int(1 << 30), iters: 10 });
        prototypes.set(normalizeRows(centroids, hp.proj_out), h * hp.clusters * hp.proj_out);
        // Prototypes beyond K (a tiny dataset) stay random unit vectors that no image is assigned to.
        if (K < hp.clusters) prototypes.set(unitRows(rng, hp.clusters - K, hp.proj_out), (h * hp.clusters + K) * hp.proj_out);
        labels.set(assign, h * datasetSize);
      }
      log(`deepcluster: epoch ${epoch + 1}, ${hp.heads} k-means heads of ${K} clusters over the memory bank`);
      return new Map([
        ['deepcluster.prototypes', prototypes],
        ['deepcluster.labels', labels],
      ]);
    },
    feeds: bankIndices,
  }),
  head: (ctx, h, hp) => projector(ctx, h, [hp.proj_hidden, hp.proj_out]),
};
