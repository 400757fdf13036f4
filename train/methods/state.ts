/**
 * State a method carries from step to step inside the step graph (checkpointed with the
 * parameters): queues, memory banks, centres, prototypes, and their in-graph updates.
 */
import { Ctx, init } from '../engine/nn.js';
import type { Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';
import { Rng } from '../../core/random.js';

/**
 * A state tensor carried from step to step (checkpointed with the parameters): a queue, memory
 * bank, centre or prototypes. `next` is set with `updateBuffer`.
 */
export function buffer(ctx: Ctx, name: string, shape: number[], fill: 'zeros' | 'unit-rows' = 'zeros'): Tensor {
  const initFn =
    fill === 'unit-rows' ? (rng: Rng, n: number) => unitRows(rng, n / shape[shape.length - 1], shape[shape.length - 1]) : init.constant(0);
  return ctx.param(name, shape, initFn, 'buffer');
}

export function updateBuffer(ctx: Ctx, buf: Tensor, next: Tensor): void {
  ctx.bufferUpdates.set(buf.name, o.stopGradient(next));
}

/** Random unit vectors, one per row (the starting memory bank or queue). */
export function unitRows(rng: Rng, rows: number, d: number): Float32Array {
  const a = Float32Array.from({ length: rows * d }, () => rng.normal());
  for (let i = 0; i < rows; i++) {
    let n = 0;
    for (let j = 0; j < d; j++) n += a[i * d + j] ** 2;
    n = Math.sqrt(n) || 1;
    for (let j = 0; j < d; j++) a[i * d + j] /= n;
  }
  return a;
}

/** FIFO queue [K, d]: the newest rows first, the oldest dropped. */
export function enqueue(queue: Tensor, rows: Tensor): Tensor {
  const [K] = queue.dims;
  const n = rows.dims[0];
  if (n >= K) return o.slice(rows, [0], [K], [0]);
  return o.concat([rows, o.slice(queue, [0], [K - n], [0])], 0);
}

/** Host integers as an int64 feed. */
export function int64(a: ArrayLike<number>): BigInt64Array {
  return BigInt64Array.from(Array.from(a, (v) => BigInt(v)));
}

/** Rows `idx` ([B] int64) of a [N, d] memory bank. */
export function gatherRows(bank: Tensor, idx: Tensor): Tensor {
  return o.gather(bank, idx, 0);
}

/** The bank with rows `idx` ([B] int64) replaced by `rows` [B, d] (ONNX ScatterND). */
export function scatterRows(bank: Tensor, idx: Tensor, rows: Tensor): Tensor {
  return bank.graph.emit('ScatterND', [bank, o.reshape(idx, [-1, 1]), rows])[0];
}

/**
 * A memory bank of one unit embedding per training image, updated with momentum as images come
 * by (Wu et al., 2018): m_i ← normalise(m·m_i + (1 − m)·v_i). Returns the bank (before this
 * step's update) and the batch's rows of it. The bank starts at zero rather than at random unit
 * vectors: an image's first visit then stores its own embedding, and the first epoch pulls no
 * image towards noise (with a random start, a short run spends its first epoch learning it).
 */
export function memoryBank(ctx: Ctx, env: { datasetSize: number; batchSize: number }, v: Tensor, momentum: number) {
  const d = v.dims[1];
  const bank = ctx.within('bank', () => buffer(ctx, 'vectors', [env.datasetSize, d]));
  const idx = ctx.g.input('batch_indices', [env.batchSize], 'int64');
  const mine = gatherRows(bank, idx);
  const fresh = o.l2normalize(o.add(o.mul(mine, momentum), o.mul(o.stopGradient(v), 1 - momentum)), 1);
  updateBuffer(ctx, bank, scatterRows(bank, idx, fresh));
  return { bank, idx, mine };
}

/** Feeds `batch_indices` for memoryBank(). */
export const bankIndices = (s: { indices: Int32Array }) => ({ batch_indices: int64(s.indices) });
