/**
 * Distillation losses between a student embedding s and a frozen teacher's t (Hinton et al.,
 * 2015 for the softened KL): 1 − cos(s, t); the MSE; or T²·KL(softmax(t/T) ‖ softmax(s/T)).
 * Averaged over the batch.
 */
import type { Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';
import { rowCosine } from './common.js';

export type DistillLoss = 'cosine' | 'mse' | 'kl';

export function distillationLoss(s: Tensor, t: Tensor, kind: DistillLoss, temperature = 4): Tensor {
  const target = o.stopGradient(t);
  if (kind === 'cosine') return o.sub(1, o.reduceMean(rowCosine(s, target)));
  if (kind === 'mse') return o.reduceMean(o.square(o.sub(s, target)));
  const logPt = o.logSoftmax(o.mul(target, 1 / temperature), 1);
  const logPs = o.logSoftmax(o.mul(s, 1 / temperature), 1);
  const kl = o.reduceMean(o.reduceSum(o.mul(o.exp(logPt), o.sub(logPt, logPs)), [1]));
  return o.mul(kl, temperature * temperature);
}
