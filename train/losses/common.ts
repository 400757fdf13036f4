/**
 * Small pieces several losses share: row-wise cosine, soft-target cross-entropy, the identity
 * matrix, and the (teacher view, student view) pairs of multi-crop losses.
 */
import { tensorData, type Graph, type Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';

/** Row-wise cosine similarity of two [B, d] tensors: [B]. */
export function rowCosine(a: Tensor, b: Tensor): Tensor {
  return o.reduceSum(o.mul(o.l2normalize(a, 1), o.l2normalize(b, 1)), [1]);
}

/** Cross-entropy −Σ p·log q per row of targets p and log-probabilities, averaged over rows. */
export function softCrossEntropy(targets: Tensor, logProbs: Tensor): Tensor {
  return o.neg(o.reduceMean(o.reduceSum(o.mul(targets, logProbs), [1])));
}

/** A constant [n, n] identity matrix. */
export function eye(g: Graph, n: number): Tensor {
  const d = new Float32Array(n * n);
  for (let i = 0; i < n; i++) d[i * n + i] = 1;
  return g.constant(tensorData('float32', [n, n], d), `eye${n}`);
}

/** Pairs (teacher view i, student view v ≠ i) of multi-crop losses, over the first `globals` views. */
export function crossViewPairs(globals: number, views: number): [number, number][] {
  const pairs: [number, number][] = [];
  for (let i = 0; i < globals; i++) for (let v = 0; v < views; v++) if (v !== i) pairs.push([i, v]);
  return pairs;
}
