/**
 * The weight gradient of a 2-D convolution, the hot spot of a training step. ORT has no ConvGrad
 * kernel, so it is written with standard ops; the fastest formulation depends on the layer's
 * shape (ENGINE-NOTES.md), so each shape gets a plan, chosen by measurement (conv-grad-tuner.ts).
 *
 *   dW[m, c, i, j] = Σ_{n, oh, ow} dy[n, m, oh, ow] · x_pad[n, c, oh·s + i·d, ow·s + j·d]
 *
 * Plans: 'im2col' (shifted NHWC slices concatenated, one product), 'shifted' (one product per
 * tap, no column matrix), 'pointwise' (1×1: one product), 'correlate' (the textbook conv over
 * transposed tensors: x as [C, N, H, W] correlated with dy as [M, N, OH, OW] weights), 'flat'
 * (stride 1: positions flattened over the padded width, so every tap is one contiguous slice; dy
 * gets zero columns where a flattened window wraps past the row end).
 */
import type { Tensor } from './graph.js';
import { concat, conv, gemm, pad, reshape, slice, transpose, unsqueeze } from './ops.js';

export type ConvGradPlan = 'im2col' | 'shifted' | 'pointwise' | 'correlate' | 'flat';
export const CONV_GRAD_PLANS: ConvGradPlan[] = ['im2col', 'shifted', 'pointwise', 'correlate', 'flat'];

export interface ConvGradShape {
  x: number[];
  dy: number[];
  w: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
  group: number;
}

export const convGradKey = (s: ConvGradShape): string =>
  `x${s.x.join('x')}_w${s.w.join('x')}_s${s.strides.join(',')}_p${s.pads.join(',')}_d${s.dilations.join(',')}_g${s.group}`;

/** Plans chosen by measurement, by shape key; shapes not in here use the heuristic. */
export const convGradPlans = new Map<string, ConvGradPlan>();
/** Every shape the builder met since the last reset (the tuner measures these). */
export const convGradShapesSeen = new Map<string, ConvGradShape>();

let override: ConvGradPlan | undefined;
/** Forces one plan for every shape where it applies (tests and the tuner); undefined restores. */
export function setConvGradOverride(plan: ConvGradPlan | undefined): void {
  override = plan;
}

export function planApplies(plan: ConvGradPlan, s: ConvGradShape): boolean {
  if (plan === 'pointwise') return s.w[2] === 1 && s.w[3] === 1 && s.pads.every((p) => p === 0) && s.strides.every((v) => v === 1);
  if (plan === 'flat') return s.strides.every((v) => v === 1) && s.w[2] * s.w[3] > 1;
  return true;
}

function heuristicPlan(s: ConvGradShape): ConvGradPlan {
  if (planApplies('pointwise', s)) return 'pointwise';
  const rows = s.dy[0] * s.dy[2] * s.dy[3];
  // A large map makes the column tensor huge; the shifted products avoid building it.
  return rows * s.x[1] * s.w[2] * s.w[3] > 16e6 ? 'shifted' : 'im2col';
}

export function convWeightGrad(
  x: Tensor,
  dy: Tensor,
  wDims: number[],
  o: { strides: number[]; pads: number[]; dilations: number[]; group: number },
  forcePlan?: ConvGradPlan,
): Tensor {
  if (x.rank !== 4) throw new RangeError(`Conv weight gradient: only 2-D convolutions are supported, input is [${x.shape}]`);
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
        forcePlan,
      ),
    );
    return concat(parts, 0);
  }
  const shape: ConvGradShape = { x: x.dims, dy: dy.dims, w: wDims, ...o };
  const key = convGradKey(shape);
  convGradShapesSeen.set(key, shape);
  const forced = forcePlan ?? override;
  const plan = forced && planApplies(forced, shape) ? forced : (convGradPlans.get(key) ?? heuristicPlan(shape));
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
