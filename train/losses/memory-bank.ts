/**
 * Losses against a memory bank of one unit embedding per training image.
 *  - NCE (Wu et al., 2018): logistic regression of the true instance against K noise instances
 *    from Pn (uniform, 1/N): with P(i|v) = exp(v·m_i/τ)/Z, the logit is
 *    v·m_i/τ − log Z − log(K·Pn); loss = −log σ(logit⁺) − Σ_k log(1 − σ(logit_k)).
 *  - Negative sampling (word2vec-style): −log σ(s⁺/τ + b) − Σ_k log σ(−(s⁻_k/τ + b)). b = 0 is
 *    word2vec's formula; a negative bias moves the decision boundary to cosine −b·τ (below).
 * Both averaged over the batch.
 */
import type { Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';

/** v: [B, d] unit queries; pos: [B] scores v·m_i; neg: [B, K] scores against noise rows; logZ a scalar. */
export function nceLoss(pos: Tensor, neg: Tensor, temperature: number, logZ: Tensor | number, datasetSize: number): Tensor {
  const K = neg.dims[1];
  const shift = typeof logZ === 'number' ? logZ + Math.log(K / datasetSize) : o.add(logZ, Math.log(K / datasetSize));
  const lPos = o.sub(o.mul(pos, 1 / temperature), shift);
  const lNeg = o.sub(o.mul(neg, 1 / temperature), shift);
  // −log σ(x) = softplus(−x); −log(1 − σ(x)) = softplus(x).
  return o.reduceMean(o.add(o.softplus(o.neg(lPos)), o.reduceSum(o.softplus(lNeg), [1])));
}

/**
 * With unit vectors and b = 0, k negatives near cosine 0 each pull with σ(0)/τ while a positive at
 * cosine 0.5 pulls with σ(−5)/τ: the loss is all repulsion. A bias of −s₀/τ (SigLIP's logit bias,
 * fixed here) balances them around cosine s₀.
 */
export function negativeSamplingLoss(pos: Tensor, neg: Tensor, temperature: number, bias = 0): Tensor {
  const lPos = o.add(o.mul(pos, 1 / temperature), bias);
  const lNeg = o.add(o.mul(neg, 1 / temperature), bias);
  return o.reduceMean(o.add(o.softplus(o.neg(lPos)), o.reduceSum(o.softplus(lNeg), [1])));
}
