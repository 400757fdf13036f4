/**
 * InfoNCE with one positive key and a queue of negatives (MoCo, He et al., 2020): for query q
 * and key k⁺ (unit vectors), −log( exp(q·k⁺/τ) / (exp(q·k⁺/τ) + Σ_queue exp(q·k⁻/τ)) ), averaged.
 */
import type { Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';

export function queueInfoNce(q: Tensor, kPos: Tensor, queue: Tensor, temperature: number): Tensor {
  const pos = o.reduceSum(o.mul(q, kPos), [1], true);
  const neg = o.gemm(q, queue, { transB: true });
  const logits = o.mul(o.concat([pos, neg], 1), 1 / temperature);
  return o.neg(o.reduceMean(o.slice(o.logSoftmax(logits, 1), [0], [1], [1])));
}
