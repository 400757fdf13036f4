/**
 * Pixel reconstruction losses of the autoencoding methods: the mean squared error over all
 * pixels (denoising autoencoder), or over the erased pixels only (context encoder).
 */
import type { Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';

export function mse(pred: Tensor, target: Tensor): Tensor {
  return o.reduceMean(o.square(o.sub(pred, target)));
}

/** mask: 1 where the pixel was erased (same shape as target, or broadcastable to it). */
export function maskedMse(pred: Tensor, target: Tensor, mask: Tensor): Tensor {
  const m = o.expand(mask, target.dims);
  return o.div(o.reduceSum(o.mul(o.square(o.sub(pred, target)), m)), o.maximum(o.reduceSum(m), 1));
}
