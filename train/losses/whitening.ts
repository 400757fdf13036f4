/**
 * W-MSE (Ermolov et al., 2021): whiten the embeddings of a sub-batch (zero mean, identity
 * covariance), then the MSE between the L2-normalised whitened positives, 2 − 2·cos.
 *
 * The whitening matrix is Σ^{-1/2} by the coupled Newton–Schulz iteration (matrix products only,
 * so it differentiates with the op table): Y₀ = Σ/‖Σ‖_F, Z₀ = I, M = (3I − Z Y)/2, Y ← Y M,
 * Z ← M Z; then Σ^{-1/2} ≈ Z / √‖Σ‖_F. Any whitening W = Q Σ^{-1/2} (Cholesky's L⁻¹ among them)
 * gives the same cosines, so the loss does not depend on which one is used.
 */
import type { Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';
import { eye } from '../methods/parts.js';

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
  return o.div(o.matmul(c, Z), o.sqrt(o.sqrt(norm)));
}

/** z1, z2: [B, d]; sub-batches of `w` images are whitened together (both views' rows, 2w). */
export function wmseLoss(z1: Tensor, z2: Tensor, w: number, iterations: number, eps = 0): Tensor {
  const [B] = z1.dims;
  const size = Math.min(w, B);
  const losses: Tensor[] = [];
  for (let s = 0; s + size <= B; s += size) {
    const a = o.slice(z1, [s], [s + size], [0]);
    const b = o.slice(z2, [s], [s + size], [0]);
    const wh = whiten(o.concat([a, b], 0), iterations, eps);
    const [wa, wb] = o.split(wh, [size, size], 0);
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
