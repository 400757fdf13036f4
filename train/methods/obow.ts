/**
 * OBoW (Gidaris et al., 2021): online bag-of-visual-words. An EMA teacher's last feature map gives
 * local features; the vocabulary is a FIFO queue of K of them (one random location per training
 * image is pushed each step). The teacher's BoW target for an image is the soft assignment of its
 * local features to the words (softmax of cosine/κ), averaged over locations. The student predicts
 * it from its pooled feature with classifier weights GENERATED from the current vocabulary by a
 * small MLP, since the words change every step; cross-entropy over (teacher global view, student
 * other view) pairs, with multi-crop for the student.
 */
import { linear, type Ctx } from '../engine/nn.js';
import { tensorData, type Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';
import { buffer, enqueue, updateBuffer } from './state.js';
import { crossViewPairs, softCrossEntropy } from '../losses/common.js';
import { encodeViews, teacherCtx } from './heads.js';
import type { Method } from './types.js';
import type { Backbone } from '../backbones/index.js';
import { UserError } from '../../core/errors.js';

/** Local features [B, L, C] (L2-normalised) of a backbone's last feature map. */
function localFeatures(ctx: Ctx, backbone: Backbone, x: Tensor): Tensor {
  const fm = backbone.build(ctx, x).featureMap;
  if (!fm) throw new UserError(`obow needs a backbone with a feature map (convnet or resnet), not ${backbone.name}`);
  const [, C, h, w] = fm.dims;
  return o.l2normalize(o.transpose(o.reshape(fm, [0, C, h * w]), [0, 2, 1]), 2);
}

/** The BoW target: soft assignment of every location to the words, averaged over locations. */
export function bowTarget(local: Tensor, vocab: Tensor, kappa: number): Tensor {
  const [B, L, C] = local.dims;
  const scores = o.gemm(o.reshape(local, [B * L, C]), vocab, { transB: true });
  const codes = o.reshape(o.softmax(o.mul(scores, 1 / kappa), 1), [B, L, vocab.dims[0]]);
  return o.stopGradient(o.reduceMean(codes, [1]));
}

export const obow: Method = {
  name: 'obow',
  summary: 'teacher-student: predict an EMA teacher’s bag of visual words over an online vocabulary (multi-crop)',
  views: 2,
  localCropsParam: 'local_crops',
  augment: 'multicrop',
  params: {
    vocab: { default: 8192, help: 'vocabulary size K (a FIFO queue of local features; scale down for small data)' },
    ema: { default: 0.99, help: 'teacher EMA momentum at the start (cosine schedule to 1)' },
    kappa: { default: 0.1, help: 'soft-assignment temperature κ on cosine similarities' },
    generator_hidden: { default: 512, help: 'hidden width of the weight-generating MLP' },
    logit_scale: { default: 10, help: 'scale of the cosine classifier' },
    local_crops: { default: 2, help: 'small local crops the student sees' },
  },
  optimizer: { name: 'sgd', lrPer256: 0.05, weightDecay: 5e-4 },
  teacherMomentum: (hp) => hp.ema,
  validate({ backbone }) {
    if (backbone === 'vit') throw new UserError('obow needs a convolutional feature map: use --backbone convnet, resnet10 or resnet18');
  },
  build(ctx, backbone, views, hp, env) {
    const t = teacherCtx(ctx);
    const local = views.slice(0, 2).map((v) => localFeatures(t, backbone, v));
    const [, L, C] = local[0].dims;
    const vocab = ctx.within('obow', () => buffer(ctx, 'vocabulary', [hp.vocab, C], 'unit-rows'));
    const targets = local.map((l) => bowTarget(l, vocab, hp.kappa));
    // Classifier weights generated from the (constant) vocabulary: the generator is what learns.
    const features = encodeViews(ctx, backbone, views);
    const D = features[0].dims[1];
    const W = ctx.within('obow_generator', () =>
      linear(ctx, 'out', o.relu(linear(ctx, 'hidden', o.stopGradient(vocab), hp.generator_hidden)), D),
    );
    const Wn = o.l2normalize(W, 1);
    const logProbs = features.map((f) => o.logSoftmax(o.mul(o.gemm(o.l2normalize(f, 1), Wn, { transB: true }), hp.logit_scale), 1));
    const pairs = crossViewPairs(2, views.length);
    const loss = o.mul(
      pairs.map(([i, v]) => softCrossEntropy(targets[i], logProbs[v])).reduce((a, b) => o.add(a, b)),
      1 / pairs.length,
    );
    // One random location of each image's first global view joins the vocabulary: a uniform
    // number u per image picks location ⌊u·L⌋ as a one-hot mask (lo ≤ u < hi).
    const u = ctx.g.input('obow_u', [env.batchSize, 1]);
    const edges = (shift: number) =>
      ctx.g.constant(
        tensorData(
          'float32',
          [1, L],
          Float32Array.from({ length: L }, (_, j) => (j + shift) / L),
        ),
        'obow_edges',
      );
    const pick = o.mul(o.cast(o.not(o.less(u, edges(0))), 'float32'), o.cast(o.less(u, edges(1)), 'float32'));
    updateBuffer(ctx, vocab, enqueue(vocab, o.l2normalize(o.reduceSum(o.mul(local[0], o.unsqueeze(pick, [2])), [1]), 1)));
    return { loss, monitor: features[0] };
  },
  runtime: () => ({ feeds: (s) => ({ obow_u: Float32Array.from({ length: s.indices.length }, () => s.rng.next()) }) }),
};
