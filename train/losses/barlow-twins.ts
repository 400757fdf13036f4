/**
 * Barlow Twins (Zbontar et al., 2021). z1, z2: [B, d] embeddings of two views. Each dimension is
 * standardised over the batch (biased variance, as BatchNorm without affine), C = z1ᵀz2 / B, and
 * the loss is Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij².
 */
import type { Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';
import { eye } from './common.js';

export function standardize(z: Tensor, eps = 1e-5): Tensor {
  const c = o.sub(z, o.reduceMean(z, [0], true));
  return o.div(c, o.sqrt(o.add(o.reduceMean(o.mul(c, c), [0], true), eps)));
}

export function barlowTwinsLoss(z1: Tensor, z2: Tensor, lambda: number): Tensor {
  const [B, d] = z1.dims;
  const c = o.mul(o.gemm(standardize(z1), standardize(z2), { transA: true }), 1 / B);
  const I = eye(z1.graph, d);
  const diag = o.reduceSum(o.mul(c, I), [1]);
  const onDiag = o.reduceSum(o.square(o.sub(diag, 1)));
  const offDiag = o.sub(o.reduceSum(o.square(c)), o.reduceSum(o.square(diag)));
  return o.add(onDiag, o.mul(offDiag, lambda));
}
