/**
 * Cosine-regression losses of the stop-gradient teacher-student methods.
 *  - BYOL (Grill et al., 2020): 2 − 2·cos(p, sg(z)), the MSE between unit vectors.
 *  - SimSiam (Chen & He, 2021): −cos(p, sg(z)).
 * Both averaged over the batch; the target side never receives a gradient.
 */
import type { Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';
import { rowCosine } from './common.js';

export function byolLoss(p: Tensor, z: Tensor): Tensor {
  return o.sub(2, o.mul(o.reduceMean(rowCosine(p, o.stopGradient(z))), 2));
}

export function simsiamLoss(p: Tensor, z: Tensor): Tensor {
  return o.neg(o.reduceMean(rowCosine(p, o.stopGradient(z))));
}
