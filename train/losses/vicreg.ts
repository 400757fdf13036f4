/**
 * VICReg (Bardes et al., 2022): λ·MSE(z1, z2) + μ·[mean_j relu(γ − std_j(z1)) + same for z2]
 * + ν·[Σ_{i≠j} cov(z1)_ij² / d + same for z2], with std_j = sqrt(var_j + ε) (unbiased variance)
 * and cov the unbiased covariance over the batch.
 */
import type { Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';

export interface VicRegWeights {
  lambda: number;
  mu: number;
  nu: number;
  gamma: number;
  eps: number;
}

function varianceTerm(z: Tensor, w: VicRegWeights): Tensor {
  const [B] = z.dims;
  const c = o.sub(z, o.reduceMean(z, [0], true));
  const variance = o.mul(o.reduceSum(o.mul(c, c), [0]), 1 / (B - 1));
  return o.reduceMean(o.relu(o.sub(w.gamma, o.sqrt(o.add(variance, w.eps)))));
}

function covarianceTerm(z: Tensor): Tensor {
  const [B, d] = z.dims;
  const c = o.sub(z, o.reduceMean(z, [0], true));
  const cov = o.mul(o.gemm(c, c, { transA: true }), 1 / (B - 1));
  const variance = o.mul(o.reduceSum(o.mul(c, c), [0]), 1 / (B - 1));
  // Off-diagonal squares: all squares minus the diagonal's.
  return o.mul(o.sub(o.reduceSum(o.square(cov)), o.reduceSum(o.square(variance))), 1 / d);
}

export function vicregLoss(z1: Tensor, z2: Tensor, w: VicRegWeights): Tensor {
  const invariance = o.reduceMean(o.square(o.sub(z1, z2)));
  const variance = o.add(varianceTerm(z1, w), varianceTerm(z2, w));
  const covariance = o.add(covarianceTerm(z1), covarianceTerm(z2));
  return o.add(o.add(o.mul(invariance, w.lambda), o.mul(variance, w.mu)), o.mul(covariance, w.nu));
}
