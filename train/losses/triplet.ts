/**
 * Triplet margin loss on L2-normalised embeddings (Schroff et al., 2015; batch-hard mining as in
 * Hermans et al., 2017): max(0, ‖a−p‖² − ‖a−n‖² + margin), averaged over anchors. a_i and p_i are
 * two views of image i; the negatives are the other images' second views, the hardest (closest)
 * one when `hard`, else the next image's.
 */
import { tensorData, type Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';

export function tripletLoss(a: Tensor, p: Tensor, margin: number, hard: boolean): Tensor {
  const [B] = a.dims;
  const an = o.l2normalize(a, 1);
  const pn = o.l2normalize(p, 1);
  const dPos = o.reduceSum(o.square(o.sub(an, pn)), [1]);
  // ‖a_i − p_j‖² = 2 − 2 a_i·p_j for unit vectors.
  const dist = o.sub(2, o.mul(o.gemm(an, pn, { transB: true }), 2));
  const mask = new Float32Array(B * B);
  for (let i = 0; i < B; i++) {
    if (hard)
      mask[i * B + i] = 1e4; // never the positive itself
    else mask[i * B + ((i + 1) % B)] = 1;
  }
  const m = a.graph.constant(tensorData('float32', [B, B], mask), 'triplet_mask');
  const dNeg = hard ? o.neg(o.reduceMax(o.neg(o.add(dist, m)), [1])) : o.reduceSum(o.mul(dist, m), [1]);
  return o.reduceMean(o.relu(o.add(o.sub(dPos, dNeg), margin)));
}
