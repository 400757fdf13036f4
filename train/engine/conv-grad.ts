/**
 * The weight gradient of a 2-D convolution, the hot spot of a training step. ORT has no ConvGrad
 * kernel, so it is written with standard ops; the fastest formulation depends on the layer's
 * shape (ENGINE-NOTES.md), so each shape gets a plan, chosen by measurement (conv-grad-tuner.ts).
 * This file also holds Conv's and ConvTranspose's gradient rules, which need the plans; ops.ts
 * defines their shapes, so the two files do not import each other.
 *
 *   dW[m, c, i, j] = Σ_{n, oh, ow} dy[n, m, oh, ow] · x_pad[n, c, oh·s + i·d, ow·s + j·d]
 *
 * Plans: 'im2col' (shifted NHWC slices concatenated, one product), 'shifted' (one product per
 * tap, no column matrix), 'pointwise' (1×1: one product), 'correlate' (the textbook conv over
 * transposed tensors: x as [C, N, H, W] correlated with dy as [M, N, OH, OW] weights), 'flat'
 * (stride 1: positions flattened over the padded width, so every tap is one contiguous slice; dy
 * gets zero columns where a flattened window wraps past the row end), 'cn-im2col' (im2col over
 * channel-major x, [C, N, H, W]: NCHW → CNHW moves whole maps where NCHW → NHWC moves single
 * values, and the taps stack as blocks on the outer axis where NHWC's interleave runs of C
 * values; the tuner picks it for ResNet-18's 3-channel stem, and the scratch budget keeps it off
 * the wider layers where it would be faster).
 */
import { defineVjp, type Attrs, type ConvShape, type GradEnv, type Tensor } from './graph.js';
import { concat, conv, convTranspose, gather, gemm, mul, pad, reduceSum, reshape, slice, transpose, unsqueeze } from './ops.js';
import { convTransposeOut } from './shape.js';

export type ConvGradPlan = 'im2col' | 'shifted' | 'pointwise' | 'correlate' | 'flat' | 'cn-im2col';
export const CONV_GRAD_PLANS: ConvGradPlan[] = ['im2col', 'shifted', 'pointwise', 'correlate', 'flat', 'cn-im2col'];

export type ConvGradShape = ConvShape;

export const convGradKey = (s: ConvGradShape): string =>
  `x${s.x.join('x')}_w${s.w.join('x')}_s${s.strides.join(',')}_p${s.pads.join(',')}_d${s.dilations.join(',')}_g${s.group}`;

export function planApplies(plan: ConvGradPlan, s: ConvGradShape): boolean {
  if (plan === 'pointwise') return s.w[2] === 1 && s.w[3] === 1 && s.pads.every((p) => p === 0) && s.strides.every((v) => v === 1);
  if (plan === 'flat') return s.strides.every((v) => v === 1) && s.w[2] * s.w[3] > 1;
  return true;
}

/**
 * The temporary memory a plan needs beside dy and x, in bytes (float32). A step's peak memory is
 * the activations kept for the backward pass plus the largest of these, so the tuner keeps them
 * within a budget: the im2col plans hold every tap's slice and their concatenation at once.
 */
export function scratchBytes(plan: ConvGradPlan, s: ConvGradShape): number {
  const [N, C, H, W] = s.x;
  const [, M, OH, OW] = s.dy;
  const taps = s.w[2] * s.w[3];
  const P = N * OH * OW;
  const padded = N * C * (H + s.pads[0] + s.pads[2]) * (W + s.pads[1] + s.pads[3]);
  const dyT = M * P;
  // Every tap's slice and their concatenation, in either layout.
  const im2col = dyT + padded + 2 * taps * C * P;
  const floats = {
    pointwise: dyT + C * P,
    im2col,
    'cn-im2col': im2col,
    shifted: dyT + padded + C * P,
    flat: padded + N * C * (W + s.pads[1] + s.pads[3]) + 2 * M * N * OH * (W + s.pads[1] + s.pads[3]) + C * P,
    // x and dy transposed, and ORT's own unfolding: kh·kw columns of N·OH·OW per channel of x.
    correlate: N * C * H * W + dyT + taps * P,
  }[plan];
  return 4 * floats;
}

function heuristicPlan(s: ConvGradShape): ConvGradPlan {
  if (planApplies('pointwise', s)) return 'pointwise';
  const rows = s.dy[0] * s.dy[2] * s.dy[3];
  // A large map makes the column tensor huge; the shifted products avoid building it.
  return rows * s.x[1] * s.w[2] * s.w[3] > 16e6 ? 'shifted' : 'im2col';
}

/**
 * One builder's choice of weight-gradient plans: measured plans by shape (conv-grad-tuner.ts
 * fills them), the heuristic elsewhere, and the shapes met while building (what the tuner
 * measures). Passed to grad() in its GradEnv, so two builds never share state by accident.
 */
export class ConvGradPlanner {
  /** Plans chosen by measurement, by shape key. */
  readonly plans = new Map<string, ConvGradPlan>();
  /** Every shape met since this planner was made. */
  readonly seen = new Map<string, ConvGradShape>();

  /** `force`: one plan for every shape where it applies (tests). */
  constructor(readonly force?: ConvGradPlan) {}

  choose(shape: ConvGradShape): ConvGradPlan {
    const key = convGradKey(shape);
    this.seen.set(key, shape);
    if (this.force && planApplies(this.force, shape)) return this.force;
    return this.plans.get(key) ?? heuristicPlan(shape);
  }
}

const planFor = (env: GradEnv, shape: ConvGradShape): ConvGradPlan =>
  (env.convGrads?.choose(shape) as ConvGradPlan | undefined) ?? heuristicPlan(shape);

const biasGrad = (dy: Tensor, nd: number) => reduceSum(dy, [0, ...Array.from({ length: nd }, (_, i) => i + 2)]);
const convOpts = (attrs: Attrs) => ({
  strides: attrs.strides as number[],
  pads: attrs.pads as number[],
  dilations: attrs.dilations as number[],
  group: attrs.group as number,
});

defineVjp('Conv', ({ inputs: [x, w, b], outputs: [y], attrs }, [dy], env) => {
  const nd = (attrs.kernel_shape as number[]).length;
  const dx = convInputGrad(x!, y, dy!, w!, attrs);
  const dw = convWeightGrad(x!, dy!, w!.dims, convOpts(attrs), (s) => planFor(env, s));
  return b ? [dx, dw, biasGrad(dy!, nd)] : [dx, dw];
});

defineVjp('ConvTranspose', ({ inputs: [x, w, b], attrs }, [dy], env) => {
  const nd = (attrs.kernel_shape as number[]).length;
  const o = convOpts(attrs);
  // ConvTranspose is the adjoint of Conv with the same weight: its input gradient is that Conv,
  // and its weight gradient is Conv's weight gradient with the roles of input and output swapped.
  const dx = conv(dy!, w!, null, o);
  const dw = convWeightGrad(dy!, x!, w!.dims, o, (s) => planFor(env, s));
  return b ? [dx, dw, biasGrad(dy!, nd)] : [dx, dw];
});

/**
 * dX of a convolution. Stride 1, one group: a plain Conv of dy with the spatially flipped,
 * channel-swapped weight and pads d(k−1)−p (ORT's Conv is much faster than its ConvTranspose);
 * otherwise the transposed convolution with the same weight, sized back to x exactly.
 */
function convInputGrad(x: Tensor, y: Tensor, dy: Tensor, w: Tensor, attrs: Attrs): Tensor {
  const k = attrs.kernel_shape as number[];
  const { strides: s, pads: p, dilations: d, group } = convOpts(attrs);
  const nd = k.length;
  if (group === 1 && nd === 2 && s.every((v) => v === 1)) {
    const pads = [0, 1].map((i) => d[i] * (k[i] - 1) - p[i]).concat([0, 1].map((i) => d[i] * (k[i] - 1) - p[i + nd]));
    if (pads.every((v) => v >= 0)) {
      const rev = (n: number) => x.graph.int64s(Array.from({ length: n }, (_, i) => n - 1 - i));
      const flipped = k[0] * k[1] === 1 ? w : gather(gather(w, rev(k[0]), 2), rev(k[1]), 3);
      return conv(dy, transpose(flipped, [1, 0, 2, 3]), null, { pads, dilations: d });
    }
  }
  const outputPadding = x.dims
    .slice(2)
    .map((sz, i) => sz - (convTransposeOut(y.dims[i + 2], k[i], s[i], p[i], p[i + nd], d[i], 0) as number));
  return convTranspose(dy, w, { strides: s, pads: p, dilations: d, group, outputPadding });
}

export function convWeightGrad(
  x: Tensor,
  dy: Tensor,
  wDims: number[],
  o: { strides: number[]; pads: number[]; dilations: number[]; group: number },
  choose: (shape: ConvGradShape) => ConvGradPlan = heuristicPlan,
): Tensor {
  if (x.rank !== 4) throw new RangeError(`Conv weight gradient: only 2-D convolutions are supported, input is [${x.shape}]`);
  if (o.group > 1 && x.dims[1] === o.group) return depthwiseWeightGrad(x, dy, wDims, o);
  if (o.group > 1) {
    // Groups are independent convolutions: split channels, solve each, stack the weights.
    const C = x.dims[1] / o.group;
    const M = dy.dims[1] / o.group;
    const parts = Array.from({ length: o.group }, (_, g) =>
      convWeightGrad(
        slice(x, [g * C], [(g + 1) * C], [1]),
        slice(dy, [g * M], [(g + 1) * M], [1]),
        [M, ...wDims.slice(1)],
        { ...o, group: 1 },
        choose,
      ),
    );
    return concat(parts, 0);
  }
  const plan = choose({ x: x.dims, dy: dy.dims, w: wDims, ...o });
  const [M, C, kh, kw] = wDims;
  const [N, , OH, OW] = dy.dims;
  const P = N * OH * OW;
  // dyᵀ as [M, P], rows ordered (n, oh, ow) like the columns below.
  const dyT = reshape(transpose(dy, [1, 0, 2, 3]), [M, P]);
  if (plan === 'pointwise') {
    const cols = reshape(transpose(x, [0, 2, 3, 1]), [P, C]);
    return reshape(gemm(dyT, cols), [M, C, 1, 1]);
  }
  const taps: [number, number][] = [];
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) taps.push([i, j]);
  if (plan === 'correlate') {
    // Stride and dilation swap roles: dy's taps are `stride` apart over x.
    const corr = conv(transpose(x, [1, 0, 2, 3]), transpose(dy, [1, 0, 2, 3]), null, {
      pads: o.pads,
      strides: o.dilations,
      dilations: o.strides,
    });
    const [, , ch, cw] = corr.dims;
    const cropped = ch === kh && cw === kw ? corr : slice(corr, [0, 0], [kh, kw], [2, 3]);
    return transpose(cropped, [1, 0, 2, 3]);
  }
  if (plan === 'flat') {
    const [H, W] = x.dims.slice(2);
    const [dh, dw] = o.dilations;
    const Wp = W + o.pads[1] + o.pads[3];
    // One spare row at the bottom keeps the last tap's slice inside the tensor.
    const Hp = H + o.pads[0] + o.pads[2] + 1;
    const L = OH * Wp;
    const xf = reshape(transpose(pad(x, [0, 0, o.pads[0], o.pads[1], 0, 0, o.pads[2] + 1, o.pads[3]]), [0, 2, 3, 1]), [N, Hp * Wp, C]);
    // dy over the same flattened positions: OW real columns, Wp − OW zero ones.
    const dyf = reshape(pad(dy, [0, 0, 0, 0, 0, 0, 0, Wp - OW]), [N, M, L]);
    const dyT = reshape(transpose(dyf, [1, 0, 2]), [M, N * L]);
    const perTap = taps.map(([i, j]) => {
      const off = i * dh * Wp + j * dw;
      return unsqueeze(gemm(dyT, reshape(slice(xf, [off], [off + L], [1]), [N * L, C])), [2]);
    });
    return reshape(concat(perTap, 2), [M, C, kh, kw]);
  }
  const [sh, sw] = o.strides;
  const [dh, dw] = o.dilations;
  if (plan === 'cn-im2col') {
    const xc = pad(transpose(x, [1, 0, 2, 3]), [0, 0, o.pads[0], o.pads[1], 0, 0, o.pads[2], o.pads[3]]); // [C, N, Hp, Wp]
    const tap = ([i, j]: [number, number]) =>
      reshape(slice(xc, [i * dh, j * dw], [i * dh + (OH - 1) * sh + 1, j * dw + (OW - 1) * sw + 1], [2, 3], [sh, sw]), [C, P]);
    // One [kh·kw·C, P] column matrix (taps stacked as blocks) and one product.
    return transpose(reshape(gemm(concat(taps.map(tap), 0), dyT, { transB: true }), [kh, kw, C, M]), [3, 2, 0, 1]);
  }
  const xp = transpose(pad(x, [0, 0, o.pads[0], o.pads[1], 0, 0, o.pads[2], o.pads[3]]), [0, 2, 3, 1]); // NHWC
  const shifted = (i: number, j: number) =>
    slice(xp, [i * dh, j * dw], [i * dh + (OH - 1) * sh + 1, j * dw + (OW - 1) * sw + 1], [1, 2], [sh, sw]);
  if (plan === 'im2col') {
    // One [P, kh·kw·C] column matrix and one product.
    const cols = reshape(
      concat(
        taps.map(([i, j]) => shifted(i, j)),
        3,
      ),
      [P, kh * kw * C],
    );
    return transpose(reshape(gemm(dyT, cols), [M, kh, kw, C]), [0, 3, 1, 2]);
  }
  // 'shifted': one [M, C] product per tap, no column matrix.
  const perTap = taps.map(([i, j]) => unsqueeze(gemm(dyT, reshape(shifted(i, j), [P, C])), [2]));
  return reshape(concat(perTap, 2), [M, C, kh, kw]);
}

/**
 * A depthwise convolution's weight gradient (one input channel per group, MobileNet's and
 * ConvNeXt's 3×3, 5×5 and 7×7 layers): per tap, the shifted input times dy summed over the batch
 * and positions. Splitting it into one convolution per group, as for other grouped layers, would
 * emit hundreds of tiny convolutions.
 */
function depthwiseWeightGrad(
  x: Tensor,
  dy: Tensor,
  wDims: number[],
  o: { strides: number[]; pads: number[]; dilations: number[]; group: number },
): Tensor {
  const [M, , kh, kw] = wDims;
  const [N, G] = x.dims;
  const [, , OH, OW] = dy.dims;
  const mult = M / G;
  const [sh, sw] = o.strides;
  const [dh, dw] = o.dilations;
  const xp = unsqueeze(pad(x, [0, 0, o.pads[0], o.pads[1], 0, 0, o.pads[2], o.pads[3]]), [2]); // [N, G, 1, Hp, Wp]
  const dyg = reshape(dy, [N, G, mult, OH, OW]);
  const taps: Tensor[] = [];
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++) {
      const shifted = slice(xp, [i * dh, j * dw], [i * dh + (OH - 1) * sh + 1, j * dw + (OW - 1) * sw + 1], [3, 4], [sh, sw]);
      taps.push(reshape(reduceSum(mul(dyg, shifted), [0, 3, 4]), [M, 1]));
    }
  return reshape(concat(taps, 1), [M, 1, kh, kw]);
}
