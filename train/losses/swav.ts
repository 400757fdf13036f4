/**
 * SwAV (Caron et al., 2020). Codes come from Sinkhorn–Knopp on the prototype scores of a global
 * view, so every prototype gets an equal share of the batch (no gradient through the codes); the
 * loss predicts each global view's code from every other view: −Σ q_i · log softmax(s_v/τ),
 * averaged over the batch and the pairs.
 */
import type { Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';
import { crossViewPairs, softCrossEntropy } from './common.js';

/**
 * Equipartitioned soft assignments of B samples to K prototypes from scores [B, K]:
 * Q = exp(scores/ε)ᵀ normalised to sum 1, then `iterations` rounds of rows to 1/K and columns
 * to 1/B; returned as [B, K] with rows summing to 1.
 */
export function sinkhorn(scores: Tensor, epsilon: number, iterations: number): Tensor {
  const [B, K] = scores.dims;
  // Subtracting the max keeps exp() finite; the normalisations cancel the constant.
  const s = o.stopGradient(scores);
  let q = o.exp(o.mul(o.sub(s, o.reduceMax(s)), 1 / epsilon));
  q = o.div(q, o.reduceSum(q));
  for (let k = 0; k < iterations; k++) {
    q = o.mul(o.div(q, o.reduceSum(q, [0], true)), 1 / K); // each prototype (column here) sums to 1/K
    q = o.mul(o.div(q, o.reduceSum(q, [1], true)), 1 / B); // each sample sums to 1/B
  }
  return o.stopGradient(o.mul(q, B));
}

/**
 * Codes for a batch's scores [B, K] balanced together with a queue of past samples' scores
 * [Q, K] (SwAV's queue for small batches): Sinkhorn over all Q + B rows, the batch's rows kept.
 */
export function queuedCodes(scores: Tensor, queueScores: Tensor, epsilon: number, iterations: number): Tensor {
  const [Q] = queueScores.dims;
  const [B] = scores.dims;
  return o.slice(sinkhorn(o.concat([queueScores, scores], 0), epsilon, iterations), [Q], [Q + B], [0]);
}

/** The swapped prediction from given codes of the first `codes.length` (global) views. */
export function swappedPrediction(codes: Tensor[], scores: Tensor[], temperature: number): Tensor {
  const logProbs = scores.map((s) => o.logSoftmax(o.mul(s, 1 / temperature), 1));
  const pairs = crossViewPairs(codes.length, scores.length);
  const terms = pairs.map(([i, v]) => softCrossEntropy(codes[i], logProbs[v]));
  return o.mul(
    terms.reduce((a, b) => o.add(a, b)),
    1 / pairs.length,
  );
}
