/**
 * Layers as plain functions over a build context. A layer names its parameters under the current
 * scope ("stage2.block0.conv1.weight"); the context decides whether they are graph inputs
 * (training) or initialisers holding trained values (export), and collects the running-statistic
 * updates of BatchNorm in training mode.
 */
import { Graph, tensorData, type ParamRole, type Tensor } from './graph.js';
import * as o from './ops.js';
import { Rng } from '../../core/random.js';

/**
 * `pytorch`: nn.Conv2d's own default, U(±1/√fan_in). `kaiming-fan-out`: N(0, 2/fan_out), which
 * torchvision's ResNet sets explicitly. With BatchNorm after the conv the scale does not change
 * the function but sets the effective step size: under Adam the angular update is ∝ lr/‖w‖, and
 * fan-out Kaiming weights are √6 ≈ 2.4× larger than the default on a square 3×3 layer.
 */
export const CONV_INITS = ['pytorch', 'kaiming-fan-out'] as const;
export type ConvInit = (typeof CONV_INITS)[number];

export class Ctx {
  /** Extra named outputs a network exposes (e.g. ViT attention maps). */
  readonly taps = new Map<string, Tensor>();
  private scope: string[] = [];

  constructor(
    readonly g: Graph,
    readonly o: {
      /** BatchNorm uses batch statistics and updates running ones. */
      training: boolean;
      /** Seed for initial values; each parameter's init depends only on (seed, name). */
      seed?: number;
      /** Trained values by parameter name; when given they replace the initial values. */
      values?: Map<string, Float32Array>;
      /** BatchNorm momentum for running statistics (PyTorch convention: weight of the new batch). */
      bnMomentum?: number;
      /**
       * Builds an EMA teacher: parameters are named `teacher.<name>`, start equal to the student's
       * `<name>` (same initial values) and are not trained (role 'teacher'; see engine/teacher.ts).
       */
      teacher?: boolean;
      /** Training-mode BatchNorm as ORT's fused kernel (CPU, CUDA) or composed (WebGPU has none). */
      fusedBatchNorm?: boolean;
      /** Convolution weights' initialiser; unset, each backbone picks the one its PyTorch original has. */
      convInit?: ConvInit;
    },
  ) {}

  /** New values of buffers (BN running statistics), shared by every Ctx of the graph. */
  get bufferUpdates(): Map<string, Tensor> {
    return this.g.bufferUpdates;
  }

  get training(): boolean {
    return this.o.training;
  }

  /** This context with `convInit` set, unless the caller already chose one (same graph, same parameters). */
  withConvInit(convInit: ConvInit): Ctx {
    return this.o.convInit ? this : new Ctx(this.g, { ...this.o, convInit });
  }

  /** Runs `f` with `name` pushed on the parameter scope. */
  within<R>(name: string, f: () => R): R {
    this.scope.push(name);
    try {
      return f();
    } finally {
      this.scope.pop();
    }
  }

  fullName(name: string): string {
    return [...this.scope, name].join('.');
  }

  param(name: string, shape: number[], init: (rng: Rng, n: number) => Float32Array, role: ParamRole = 'weight'): Tensor {
    const own = this.fullName(name);
    const full = this.o.teacher ? `teacher.${own}` : own;
    const existing = this.g.params.get(full);
    if (existing) return existing.tensor; // shared weights (e.g. one encoder applied to two views)
    const n = shape.reduce((a, b) => a * b, 1);
    const trained = this.o.values?.get(full);
    if (trained && trained.length !== n)
      throw new RangeError(`parameter '${full}': stored value has ${trained.length} numbers, the network needs [${shape}] = ${n}`);
    // A teacher's initial values are its student's: hash the student's name.
    const data = trained ?? init(new Rng(hashName(own, this.o.seed ?? 0)), n);
    const teacherRole = role === 'buffer' ? 'buffer' : 'teacher';
    return this.g.param(full, tensorData('float32', shape, data), this.o.teacher ? teacherRole : role);
  }
}

function hashName(name: string, seed: number): number {
  let h = 2166136261 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0;
}

// ---------------------------------------------------------------- initialisers

export const init = {
  /** Kaiming normal (fan_out, ReLU), torchvision's choice for convolutions. */
  kaimingNormal: (fanOut: number) => (rng: Rng, n: number) => Float32Array.from({ length: n }, () => rng.normal() * Math.sqrt(2 / fanOut)),
  /** PyTorch's default for Linear/Conv: U(−1/√fan_in, 1/√fan_in). */
  uniformFanIn: (fanIn: number) => (rng: Rng, n: number) => {
    const b = 1 / Math.sqrt(fanIn);
    return Float32Array.from({ length: n }, () => rng.uniform(-b, b));
  },
  truncNormal: (std: number) => (rng: Rng, n: number) =>
    Float32Array.from({ length: n }, () => {
      let v: number;
      do v = rng.normal();
      while (Math.abs(v) > 2);
      return v * std;
    }),
  constant: (value: number) => (_rng: Rng, n: number) => new Float32Array(n).fill(value),
};

// ---------------------------------------------------------------- layers

export interface Conv2dOptions {
  kernel: number;
  stride?: number;
  padding?: number;
  bias?: boolean;
  groups?: number;
}

export function conv2d(ctx: Ctx, name: string, x: Tensor, outChannels: number, c: Conv2dOptions): Tensor {
  return ctx.within(name, () => {
    const inC = x.shape[1] as number;
    const k = c.kernel;
    const groups = c.groups ?? 1;
    const fanIn = (inC * k * k) / groups;
    const wInit = ctx.o.convInit === 'pytorch' ? init.uniformFanIn(fanIn) : init.kaimingNormal((outChannels * k * k) / groups);
    const w = ctx.param('weight', [outChannels, inC / groups, k, k], wInit);
    const b = c.bias ? ctx.param('bias', [outChannels], init.uniformFanIn(fanIn), 'bias') : null;
    const p = c.padding ?? 0;
    return o.conv(x, w, b, { strides: [c.stride ?? 1, c.stride ?? 1], pads: [p, p, p, p], group: groups });
  });
}

/** BatchNorm over axis 1 of [N, C] or [N, C, H, W]; optionally without the affine part. */
export function batchNorm(ctx: Ctx, name: string, x: Tensor, o2: { affine?: boolean; eps?: number } = {}): Tensor {
  return ctx.within(name, () => {
    const C = x.shape[1] as number;
    const affine = o2.affine ?? true;
    const gamma = affine
      ? ctx.param('weight', [C], init.constant(1), 'norm')
      : ctx.g.constant(tensorData('float32', [C], new Float32Array(C).fill(1)), 'bn_one');
    const beta = affine
      ? ctx.param('bias', [C], init.constant(0), 'norm')
      : ctx.g.constant(tensorData('float32', [C], new Float32Array(C)), 'bn_zero');
    const runMean = ctx.param('running_mean', [C], init.constant(0), 'buffer');
    const runVar = ctx.param('running_var', [C], init.constant(1), 'buffer');
    return batchNormWith(ctx, x, gamma, beta, runMean, runVar, { eps: o2.eps });
  });
}

/**
 * BatchNorm with given parameter tensors: batch statistics and running-statistic updates in
 * training (PyTorch's convention), the running statistics in eval mode. `batchNorm` creates its
 * parameters; an imported encoder brings its own.
 */
export function batchNormWith(
  ctx: Ctx,
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  runMean: Tensor,
  runVar: Tensor,
  o2: { eps?: number; momentum?: number } = {},
): Tensor {
  const C = x.shape[1] as number;
  const r = o.batchNorm(x, gamma, beta, runMean, runVar, { training: ctx.training, eps: o2.eps, fused: ctx.o.fusedBatchNorm });
  if (ctx.training) {
    // running = (1 − m)·running + m·batch, with the unbiased batch variance, as PyTorch does; the
    // context's momentum (BN re-estimation) wins over the layer's own.
    const m = ctx.o.bnMomentum ?? o2.momentum ?? 0.1;
    const n = x.size / C;
    const mean = o.stopGradient(r.mean!);
    const unbiased = o.mul(o.stopGradient(r.var!), n / Math.max(n - 1, 1));
    ctx.bufferUpdates.set(runMean.name, o.add(o.mul(runMean, 1 - m), o.mul(mean, m)));
    ctx.bufferUpdates.set(runVar.name, o.add(o.mul(runVar, 1 - m), o.mul(unbiased, m)));
  }
  return r.y;
}

export function layerNorm(ctx: Ctx, name: string, x: Tensor, eps = 1e-6): Tensor {
  return ctx.within(name, () => {
    const D = x.shape[x.rank - 1] as number;
    const gamma = ctx.param('weight', [D], init.constant(1), 'norm');
    const beta = ctx.param('bias', [D], init.constant(0), 'norm');
    return o.layerNorm(x, gamma, beta, { eps });
  });
}

/** y = x·Wᵀ + b over the last axis; W is [out, in] as in PyTorch (so exported weights line up). */
export function linear(
  ctx: Ctx,
  name: string,
  x: Tensor,
  out: number,
  c: { bias?: boolean; init?: (rng: Rng, n: number) => Float32Array } = {},
): Tensor {
  return ctx.within(name, () => {
    const inF = x.shape[x.rank - 1] as number;
    const w = ctx.param('weight', [out, inF], c.init ?? init.uniformFanIn(inF));
    const b = (c.bias ?? true) ? ctx.param('bias', [out], init.uniformFanIn(inF), 'bias') : null;
    if (x.rank === 2) return o.gemm(x, w, { transB: true, c: b ?? undefined });
    const y = o.matmul(x, o.transpose(w, [1, 0]));
    return b ? o.add(y, b) : y;
  });
}

export interface MlpOptions {
  /** Hidden widths, then the output width: [2048, 128] is d→2048→128. */
  dims: number[];
  /** BatchNorm after every hidden linear layer (and after the last when lastNorm). */
  norm?: 'batch' | 'none';
  lastNorm?: boolean;
  lastNormAffine?: boolean;
  activation?: 'relu' | 'gelu';
  lastBias?: boolean;
}

/** The projection/prediction head every method shares (lightly's ProjectionHead). */
export function mlp(ctx: Ctx, name: string, x: Tensor, c: MlpOptions): Tensor {
  return ctx.within(name, () => {
    let h = x;
    c.dims.forEach((d, i) => {
      const last = i === c.dims.length - 1;
      const useNorm = c.norm === 'batch' && (!last || c.lastNorm);
      h = linear(ctx, `${i}`, h, d, { bias: last ? (c.lastBias ?? !useNorm) : !useNorm });
      if (useNorm) h = batchNorm(ctx, `${i}.bn`, h, { affine: last ? (c.lastNormAffine ?? true) : true });
      if (!last) h = c.activation === 'gelu' ? o.gelu(h) : o.relu(h);
    });
    return h;
  });
}

/** The basic residual block (two 3×3 convolutions; a 1×1 projection when the shape changes). */
export function basicBlock(ctx: Ctx, name: string, x: Tensor, out: number, stride: number): Tensor {
  return ctx.within(name, () => {
    const inC = x.shape[1] as number;
    let h = o.relu(batchNorm(ctx, 'bn1', conv2d(ctx, 'conv1', x, out, { kernel: 3, stride, padding: 1 })));
    h = batchNorm(ctx, 'bn2', conv2d(ctx, 'conv2', h, out, { kernel: 3, padding: 1 }));
    const shortcut = stride !== 1 || inC !== out ? batchNorm(ctx, 'down.bn', conv2d(ctx, 'down.conv', x, out, { kernel: 1, stride })) : x;
    return o.relu(o.add(h, shortcut));
  });
}

/** Multi-head self-attention over [N, T, D]; returns the output and the attention weights [N, H, T, T]. */
export function selfAttention(ctx: Ctx, name: string, x: Tensor, heads: number): { y: Tensor; attn: Tensor } {
  return ctx.within(name, () => {
    // N may be symbolic (dynamic batch): reshapes carry it with 0 or infer it with -1.
    const [T, D] = x.shape.slice(1) as number[];
    const hd = D / heads;
    const qkv = linear(ctx, 'qkv', x, 3 * D, { init: init.truncNormal(0.02) });
    // [N, T, 3, H, hd] → [3, N, H, T, hd]
    const parts = o.transpose(o.reshape(qkv, [0, 0, 3, heads, hd]), [2, 0, 3, 1, 4]);
    const [q, k, v] = o.split(parts, [1, 1, 1], 0).map((t) => o.reshape(t, [-1, heads, T, hd]));
    const attn = o.softmax(o.mul(o.matmul(q, o.transposeLast(k)), 1 / Math.sqrt(hd)), -1);
    const ctxv = o.reshape(o.transpose(o.matmul(attn, v), [0, 2, 1, 3]), [0, 0, D]);
    return { y: linear(ctx, 'proj', ctxv, D, { init: init.truncNormal(0.02) }), attn };
  });
}
