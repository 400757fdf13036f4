/**
 * DINO's loss (Caron et al., 2021): for every pair (teacher global view i, student view v ≠ i),
 * H(softmax((t_i − c)/τ_t), log_softmax(s_v/τ_s)), averaged over the batch and the pairs. The
 * teacher side is a constant target; c (a [K] centre) is an EMA of the teacher's batch means.
 */
import type { Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';
import { crossViewPairs, softCrossEntropy } from './common.js';

export function dinoLoss(student: Tensor[], teacher: Tensor[], center: Tensor, studentTemp: number, teacherTemp: Tensor | number): Tensor {
  const targets = teacher.map((t) => o.stopGradient(o.softmax(o.div(o.sub(t, center), teacherTemp), 1)));
  const logProbs = student.map((s) => o.logSoftmax(o.mul(s, 1 / studentTemp), 1));
  const pairs = crossViewPairs(teacher.length, student.length);
  const terms = pairs.map(([i, v]) => softCrossEntropy(targets[i], logProbs[v]));
  return o.mul(
    terms.reduce((a, b) => o.add(a, b)),
    1 / pairs.length,
  );
}

/** The centre's next value: c ← m·c + (1 − m)·mean of the teacher outputs over the batch. */
export function nextCenter(center: Tensor, teacher: Tensor[], momentum: number): Tensor {
  const mean = o.reduceMean(o.concat(teacher, 0), [0]);
  return o.add(o.mul(center, momentum), o.mul(o.stopGradient(mean), 1 - momentum));
}
