/**
 * NT-Xent (normalised temperature-scaled cross-entropy), SimCLR's InfoNCE loss.
 * Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", 2020.
 *
 * z: [2B, d] projections, rows i and i+B are the two views of image i. With s_ij the cosine
 * similarity, for anchor i and positive j:  −log( exp(s_ij/τ) / Σ_{k≠i} exp(s_ik/τ) ),
 * averaged over all 2B anchors.
 */
import { tensorData, type Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';

export function ntXent(z: Tensor, temperature: number): Tensor {
  if (!(temperature > 0)) throw new RangeError(`ntXent: illegal temperature ${temperature}, must be > 0`);
  const [n2] = z.dims;
  if (n2 % 2) throw new RangeError(`ntXent: needs an even number of rows (two views per image), got ${n2}`);
  const B = n2 / 2;
  const g = z.graph;
  const zn = o.l2normalize(z, 1);
  const logits = o.mul(o.gemm(zn, zn, { transB: true }), 1 / temperature);
  // Exclude k = i with a large negative on the diagonal; one-hot matrix marks the positives.
  const selfMask = new Float32Array(n2 * n2);
  const positives = new Float32Array(n2 * n2);
  for (let i = 0; i < n2; i++) {
    selfMask[i * n2 + i] = -1e9;
    positives[i * n2 + ((i + B) % n2)] = 1;
  }
  const logp = o.logSoftmax(o.add(logits, g.constant(tensorData('float32', [n2, n2], selfMask), 'ntxent_self')), 1);
  const picked = o.reduceSum(o.mul(logp, g.constant(tensorData('float32', [n2, n2], positives), 'ntxent_pos')));
  return o.mul(picked, -1 / n2);
}
