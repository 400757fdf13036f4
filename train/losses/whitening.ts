/**
 * W-MSE (Ermolov et al., 2021): whiten the embeddings of a sub-batch (zero mean, identity
 * covariance), then the MSE between the L2-normalised whitened positives, 2 − 2·cos.
 *
 * As in the paper and its official code, each view's sub-batch is whitened on its own (`joint`
 * whitens both views' rows together, sslkit's earlier form). The whitening matrix is Σ^{-1/2}
 * (ZCA) by the coupled Newton–Schulz iteration (matrix products only, so it differentiates with
 * the op table): Y₀ = Σ/‖Σ‖_F, Z₀ = I, M = (3I − Z Y)/2, Y ← Y M, Z ← M Z; then
 * Σ^{-1/2} ≈ Z / √‖Σ‖_F. The official code uses the Cholesky factor, L⁻¹ = Q·Σ^{-1/2} with Q
 * orthogonal: with joint whitening both views share Q and the cosines are the same; with
 * per-view whitening each view has its own Q, so the two whitenings give different losses.
 * ONNX has no Cholesky op, and an unrolled one grows with d², so sslkit keeps ZCA.
 */
import type { Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';
import { eye } from './common.js';

export function whiten(x: Tensor, iterations: number, eps = 0): Tensor {
  const [n, d] = x.dims;
  const c = o.sub(x, o.reduceMean(x, [0], true));
  const I = eye(x.graph, d);
  let cov = o.mul(o.gemm(c, c, { transA: true }), 1 / (n - 1));
  if (eps > 0) cov = o.add(cov, o.mul(I, eps));
  const norm = o.sqrt(o.reduceSum(o.square(cov)));
  let Y = o.div(cov, norm);
  let Z = I;
  for (let k = 0; k < iterations; k++) {
    const M = o.mul(o.sub(o.mul(I, 3), o.matmul(Z, Y)), 0.5);
    Y = o.matmul(Y, M);
    Z = o.matmul(M, Z);
  }
  return o.div(o.matmul(c, Z), o.sqrt(norm));
}

/** z1, z2: [B, d]; sub-batches of `w` images, each view's whitened on its own (or both views' 2w rows together when `joint`). */
export function wmseLoss(z1: Tensor, z2: Tensor, w: number, iterations: number, eps = 0, joint = false): Tensor {
  const [B] = z1.dims;
  const size = Math.min(w, B);
  const losses: Tensor[] = [];
  for (let s = 0; s + size <= B; s += size) {
    const a = o.slice(z1, [s], [s + size], [0]);
    const b = o.slice(z2, [s], [s + size], [0]);
    const [wa, wb] = joint
      ? o.split(whiten(o.concat([a, b], 0), iterations, eps), [size, size], 0)
      : [a, b].map((v) => whiten(v, iterations, eps));
    const cos = o.reduceSum(o.mul(o.l2normalize(wa, 1), o.l2normalize(wb, 1)), [1]);
    losses.push(o.sub(2, o.mul(o.reduceMean(cos), 2)));
  }
  return losses.length === 1
    ? losses[0]
    : o.mul(
        losses.reduce((x, y) => o.add(x, y)),
        1 / losses.length,
      );
}
