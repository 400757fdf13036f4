/**
 * The parts methods share, written once: encoding a list of views, projector/predictor heads, the
 * EMA teacher's build context, state buffers (queues, memory banks, centres, prototypes) and
 * their in-graph updates, and a few row-wise maths helpers.
 */
import { Ctx, init, mlp } from '../engine/nn.js';
import { tensorData, type Graph, type Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';
import type { Backbone } from '../backbones/index.js';
import { Rng } from '../../core/random.js';

/**
 * Backbone features of each view. Views of one size go through the network as one batch (one
 * pass, shared weights, one BN batch); multi-crop's small views form a second batch.
 */
export function encodeViews(ctx: Ctx, backbone: Backbone, views: Tensor[]): Tensor[] {
  const out = new Array<Tensor>(views.length);
  const bySize = new Map<number, number[]>();
  views.forEach((v, i) => bySize.set(v.dims[2], [...(bySize.get(v.dims[2]) ?? []), i]));
  for (const idx of bySize.values()) {
    const f = backbone.build(
      ctx,
      o.concat(
        idx.map((i) => views[i]),
        0,
      ),
    ).features;
    const parts =
      idx.length === 1
        ? [f]
        : o.split(
            f,
            idx.map((i) => views[i].dims[0]),
            0,
          );
    idx.forEach((i, j) => (out[i] = parts[j]));
  }
  return out;
}

/** Applies a head to all views' features at once (one pass, one BN batch), returning them per view. */
export function headViews(views: Tensor[], head: (x: Tensor) => Tensor): Tensor[] {
  return o.split(
    head(o.concat(views, 0)),
    views.map((v) => v.dims[0]),
    0,
  );
}

/** The projector every method's family uses: Linear-BN-ReLU hidden layers, then a linear output. */
export const projector = (ctx: Ctx, h: Tensor, dims: number[], name = 'projector') => mlp(ctx, name, h, { dims, norm: 'batch' });

/** A build context for the EMA teacher: same graph, parameters named `teacher.*` (engine/teacher.ts). */
export function teacherCtx(ctx: Ctx): Ctx {
  return new Ctx(ctx.g, { ...ctx.o, teacher: true });
}

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

export function int64(a: ArrayLike<number>): BigInt64Array {
  return BigInt64Array.from(Array.from(a, (v) => BigInt(v)));
}

/** Pairs (teacher view i, student view v ≠ i) of multi-crop losses, over the first `globals` views. */
export function crossViewPairs(globals: number, views: number): [number, number][] {
  const pairs: [number, number][] = [];
  for (let i = 0; i < globals; i++) for (let v = 0; v < views; v++) if (v !== i) pairs.push([i, v]);
  return pairs;
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
