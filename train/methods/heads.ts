/**
 * How methods put heads on a backbone: every view through the encoder (one pass per view size),
 * a head over all views at once, the shared projector, and the EMA teacher's build context.
 */
import { Ctx, mlp } from '../engine/nn.js';
import type { Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';
import type { Backbone } from '../backbones/index.js';

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
