/**
 * Any ONNX image encoder as a backbone (`sslkit train --init MODEL.onnx`): its float initialisers
 * become the run's parameters (named as in the file, starting from the file's values) and its
 * nodes become the engine's ops, each with its gradient rule. Shape arithmetic (Shape, Gather,
 * Concat, … on constants, as torch.onnx writes for a dynamic batch) is folded here, for the
 * concrete input shape of each build. Inference-form BatchNormalization trains as BatchNorm,
 * starting from the file's running statistics. An op the engine cannot differentiate is an
 * error naming the op and the node, never a silent wrong gradient.
 */
import fs from 'node:fs';
import { decodeModel, type AttributeMsg, type ModelMsg, type NodeMsg, type TensorMsg } from '../../core/onnx/onnx-proto.js';
import { readTensor, type TensorValues } from '../../core/onnx/tensor.js';
import { UserError } from '../../core/errors.js';
import { Graph, tensorData, type Tensor } from '../engine/graph.js';
import { batchNormWith, Ctx } from '../engine/nn.js';
import * as o from '../engine/ops.js';
import type { Backbone } from './types.js';
import { FOLD } from './onnx-fold.js';

/** A value known while importing: an engine tensor, or a constant folded here. */
type Val = Tensor | TensorValues;
const isConst = (v: Val): v is TensorValues => !('graph' in v);

export interface ImportedModel {
  file: string;
  model: ModelMsg;
  /** The image input: its name and declared shape (numbers, or names for dynamic axes). */
  input: { name: string; shape: (number | string)[] };
  output: { name: string; shape: (number | string)[] };
  /** Initialisers by name (decoded lazily by the builder). */
  initializers: Map<string, TensorMsg>;
  /** The nodes that read each value: op and input position. */
  consumers: Map<string, { node: NodeMsg; index: number }[]>;
  opset: number;
}

const cache = new Map<string, { mtimeMs: number; m: ImportedModel }>();

/** Reads and checks an ONNX encoder once per file version. */
export function readImported(file: string): ImportedModel {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new UserError(`${file}: no such file (the ONNX encoder to start from)`);
  }
  const hit = cache.get(file);
  if (hit && hit.mtimeMs === st.mtimeMs) return hit.m;
  const model = decodeModel(fs.readFileSync(file), file);
  const g = model.graph;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const inputs = g.input.filter((i) => !inits.has(i.name));
  if (inputs.length !== 1)
    throw new UserError(
      `${file}: an image encoder has one input, this model has ${inputs.length} (${inputs.map((i) => i.name).join(', ')})`,
    );
  const dims = (vi: (typeof g.input)[number]) =>
    (vi.type?.tensor_type?.shape?.dim ?? []).map((d, i) =>
      d.dim_value !== undefined && Number(d.dim_value) > 0 ? Number(d.dim_value) : (d.dim_param ?? `d${i}`),
    );
  const input = { name: inputs[0].name, shape: dims(inputs[0]) };
  if (input.shape.length !== 4)
    throw new UserError(`${file}: input '${input.name}' is [${input.shape}]; an NCHW image input [N, C, H, W] is expected`);
  if (typeof input.shape[1] !== 'number') throw new UserError(`${file}: input '${input.name}' has no fixed channel count`);
  const out = g.output.find((t) => t.name === 'embeddings') ?? g.output[0];
  if (!out) throw new UserError(`${file}: the model has no output`);
  const opset = model.opset_import.find((x) => !x.domain || x.domain === 'ai.onnx')?.version ?? 0;
  for (const n of g.node)
    if (n.domain && n.domain !== 'ai.onnx')
      throw new UserError(`${file}: node '${n.name || n.output[0]}' is ${n.domain}.${n.op_type}; only standard ONNX ops can be trained`);
  const consumers = new Map<string, { node: NodeMsg; index: number }[]>();
  for (const node of g.node)
    node.input.forEach((name, index) => name && consumers.set(name, [...(consumers.get(name) ?? []), { node, index }]));
  const m: ImportedModel = { file, model, input, output: { name: out.name, shape: dims(out) }, initializers: inits, consumers, opset };
  cache.set(file, { mtimeMs: st.mtimeMs, m });
  return m;
}

function attrValue(a: AttributeMsg): unknown {
  if (a.t) return readTensor(a.t);
  if (a.floats && a.floats.length) return a.floats;
  if (a.ints && a.ints.length) return a.ints.map(Number);
  if (a.s) return new TextDecoder().decode(a.s);
  if (a.f !== undefined) return a.f;
  if (a.i !== undefined) return Number(a.i);
  return undefined;
}

function attrsOf(n: NodeMsg): Record<string, unknown> {
  return Object.fromEntries((n.attribute ?? []).map((a) => [a.name, attrValue(a)]));
}

const numel = (d: number[]) => d.reduce((a, b) => a * b, 1);

/** The ops covered, for the error message. */
export const IMPORTABLE_OPS = [
  'Conv',
  'Gemm',
  'MatMul',
  'BatchNormalization',
  'LayerNormalization',
  'Relu',
  'Gelu',
  'HardSwish',
  'HardSigmoid',
  'Sigmoid',
  'Tanh',
  'Erf',
  'Clip',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Pow',
  'Sqrt',
  'Exp',
  'Log',
  'Neg',
  'Abs',
  'Softmax',
  'LogSoftmax',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'ReduceMean',
  'ReduceSum',
  'Flatten',
  'Reshape',
  'Transpose',
  'Concat',
  'Slice',
  'Gather',
  'Squeeze',
  'Unsqueeze',
  'Expand',
  'Identity',
  'Dropout',
  'Constant',
  'Shape',
  'Cast',
  'ConstantOfShape',
];

/**
 * Float initialisers with more than one value are parameters; single values (GELU's √2, …) stay
 * constants. Read from the header (type and dims), so that no tensor is decoded to ask.
 */
const isParamInit = (m: ImportedModel, name: string) => {
  const t = m.initializers.get(name);
  return !!t && (t.data_type === 1 || t.data_type === 11) && (t.dims ?? []).reduce((a, b) => a * Number(b), 1) > 1;
};

/**
 * How a parameter trains, from the first node that reads it (through Identity aliases):
 * BatchNorm's running statistics are buffers, norm scales and shifts are not decayed, nor is
 * any vector (biases, layer scales); matrices and kernels are decayed weights.
 */
function paramRole(m: ImportedModel, name: string, dims: number[]): 'weight' | 'bias' | 'norm' | 'buffer' {
  const use = m.consumers.get(name)?.[0];
  if (use?.node.op_type === 'Identity') return paramRole(m, use.node.output[0], dims);
  if (use?.node.op_type === 'BatchNormalization') return use.index >= 3 ? 'buffer' : 'norm';
  if (use?.node.op_type === 'LayerNormalization') return 'norm';
  return dims.length <= 1 ? 'bias' : 'weight';
}

export interface ImportBuild {
  features: Tensor;
  featureMap?: Tensor;
  /** Parameter names (file initialiser names) read by each node, in the file's order, by node name. */
  paramsByNode: [string, string[]][];
}

/** The parameter prefix of the BatchNorm inserted after a convolution whose weight is `weight` (--insert-batchnorm). */
export const insertedBatchNorm = (weight: string) => `${weight}.bn`;
/** Ctx taps that hold each inserted BatchNorm's input, by its prefix (the calibration reads them). */
export const INSERTED_TAP = 'inserted-bn:';
export const INSERTED_EPS = 1e-5;

/**
 * Builds the imported graph on `x` in the engine (`ctx` decides training/eval mode and the values).
 * `insertBatchNorm`: every convolution that no BatchNormalization follows (BatchNorm folded at
 * export) gets one, starting as the identity (running mean 0, variance 1 − ε, scale 1, shift 0)
 * until calibrateInsertedBatchNorm (train/init.ts) gives it the data's statistics.
 */
export function buildImported(m: ImportedModel, ctx: Ctx, x: Tensor, opts: { insertBatchNorm?: boolean } = {}): ImportBuild {
  const g = ctx.g;
  const vals = new Map<string, Val>();
  const constTensors = new Map<string, Tensor>();
  const where = (n: NodeMsg) => `${m.file}: node '${n.name || n.output[0]}' (${n.op_type})`;
  vals.set(m.input.name, x);
  const paramsByNode: [string, string[]][] = [];

  const initVal = (name: string): TensorValues => readTensor(m.initializers.get(name)!, m.file);
  // A parameter `name` starting from initialiser `from` (decoded only when the context needs a start value).
  const param = (name: string, from = name): Tensor => {
    const dims = (m.initializers.get(from)!.dims ?? []).map(Number);
    return ctx.param(name, dims, () => Float32Array.from(initVal(from).data), paramRole(m, name, dims));
  };

  for (const n of m.model.graph.node) {
    const a = attrsOf(n);
    const used: string[] = [];
    // torch.onnx stores equal parameters once and names the others with Identity nodes: each is
    // still its own parameter (the module's), starting from the shared values. The nodes that read
    // it record it (get() below), not this Identity, which torch writes at the top of the graph.
    if (n.op_type === 'Identity' && !vals.has(n.input[0]) && isParamInit(m, n.input[0])) {
      vals.set(n.output[0], param(n.output[0], n.input[0]));
      continue;
    }
    // Input i as a value: a computed one, a folded constant, or an initialiser.
    const get = (i: number): Val | null => {
      const name = n.input[i];
      if (!name) return null;
      const v = vals.get(name);
      if (v) {
        if (!isConst(v) && ctx.g.params.has(name)) used.push(name);
        return v;
      }
      if (m.initializers.has(name)) {
        if (!isParamInit(m, name)) return initVal(name);
        used.push(name);
        return param(name);
      }
      throw new UserError(`${where(n)}: input '${name}' is produced by no earlier node (is the graph topologically sorted?)`);
    };
    const tensor = (i: number): Tensor => {
      const v = get(i);
      if (!v) throw new UserError(`${where(n)}: input ${i} is missing`);
      if (!isConst(v)) return v;
      const key = n.input[i];
      let t = constTensors.get(key);
      if (!t) {
        if (v.dtype !== 'float32' && v.dtype !== 'int64') throw new UserError(`${where(n)}: constant '${key}' is ${v.dtype}`);
        t = g.constant(tensorData(v.dtype, v.dims, v.data), 'imported_const');
        constTensors.set(key, t);
      }
      return t;
    };
    const ints = (i: number): number[] | undefined => {
      const v = get(i);
      if (!v) return undefined;
      if (!isConst(v))
        throw new UserError(`${where(n)}: input ${i} ('${n.input[i]}') must be a constant here, it is computed from the image`);
      return Array.from(v.data);
    };
    const out = (...vs: Val[]) => vs.forEach((v, i) => n.output[i] && vals.set(n.output[i], v));

    const allConst = n.input.every((nm) => !nm || (vals.has(nm) ? isConst(vals.get(nm)!) : m.initializers.has(nm) && !isParamInit(m, nm)));
    if (n.op_type !== 'Shape' && allConst && n.op_type in FOLD) {
      out(
        FOLD[n.op_type]!(
          n.input.map((_, i) => get(i) as TensorValues | null),
          a,
          where(n),
        ),
      );
      continue;
    }
    const rule = RULES[n.op_type];
    if (!rule)
      throw new UserError(
        `${where(n)}: sslkit has no gradient rule for ${n.op_type}${n.op_type in FOLD ? ' on values computed from the image' : ''}, so this model cannot be trained ` +
          `(covered: ${IMPORTABLE_OPS.join(', ')}; on constants also ${Object.keys(FOLD)
            .filter((k) => !IMPORTABLE_OPS.includes(k))
            .join(', ')})`,
      );
    try {
      let vs = rule({ n, a, get, tensor, ints, ctx, g, where: where(n), opset: m.opset });
      if (
        opts.insertBatchNorm &&
        n.op_type === 'Conv' &&
        !m.consumers.get(n.output[0])?.some((c) => c.node.op_type === 'BatchNormalization')
      )
        vs = [insertBatchNorm(ctx, n.input[1], vs[0] as Tensor)];
      out(...vs);
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`${where(n)}: ${(e as Error).message}`, { cause: e });
    }
    if (used.length) paramsByNode.push([n.name || n.output[0], used]);
  }
  const y = vals.get(m.output.name);
  if (!y || isConst(y)) throw new UserError(`${m.file}: output '${m.output.name}' does not depend on the input`);
  if (y.rank === 2) return { features: y, paramsByNode };
  if (y.rank === 4) {
    // A feature map, or [N, D, 1, 1]: pooled to [N, D].
    return { features: o.reshape(o.globalAveragePool(y), [0, -1]), featureMap: y, paramsByNode };
  }
  if (y.rank === 3) return { features: o.reshape(o.slice(y, [0], [1], [1]), [0, -1]), paramsByNode }; // the first (CLS) token
  throw new UserError(`${m.file}: output '${m.output.name}' is [${y.shape}]; [N, D], [N, T, D] or [N, C, H, W] is expected`);
}

function insertBatchNorm(ctx: Ctx, weight: string, y: Tensor): Tensor {
  const C = y.shape[1] as number;
  const name = insertedBatchNorm(weight);
  const p = (suffix: string, v: number, role: 'norm' | 'buffer') =>
    ctx.param(`${name}.${suffix}`, [C], () => new Float32Array(C).fill(v), role);
  const t = batchNormWith(
    ctx,
    y,
    p('weight', 1, 'norm'),
    p('bias', 0, 'norm'),
    p('running_mean', 0, 'buffer'),
    p('running_var', 1 - INSERTED_EPS, 'buffer'),
    {
      eps: INSERTED_EPS,
    },
  );
  if (!ctx.training) ctx.taps.set(`${INSERTED_TAP}${name}`, y);
  return t;
}

interface RuleCtx {
  n: NodeMsg;
  a: Record<string, unknown>;
  get(i: number): Val | null;
  tensor(i: number): Tensor;
  ints(i: number): number[] | undefined;
  ctx: Ctx;
  g: Graph;
  where: string;
  opset: number;
}

const unary = (op: string) => (r: RuleCtx) => [r.g.emit(op, [r.tensor(0)])[0]];
const binary = (f: (x: Tensor, y: Tensor) => Tensor) => (r: RuleCtx) => [f(r.tensor(0), r.tensor(1))];
const fixedDims = (t: Tensor, where: string) => {
  const s = t.shape;
  if (s.some((d) => typeof d !== 'number')) throw new UserError(`${where}: needs the fixed shape of [${s}]`);
  return s as number[];
};
const hardSigmoid = (x: Tensor, alpha: number, beta: number) => o.clip(o.add(o.mul(x, alpha), beta), 0, 1);
const axesOf = (r: RuleCtx, i: number): number[] | undefined => (r.a.axes as number[] | undefined) ?? r.ints(i);

const RULES: Record<string, (r: RuleCtx) => Val[]> = {
  Identity: (r) => [r.get(0)!],
  Dropout: (r) => [r.get(0)!], // inference: the identity
  Cast: (r) => {
    const x = r.tensor(0);
    if (x.dtype === 'float32' && r.a.to === 1) return [x];
    throw new UserError(`${r.where}: casts of computed values to other types are not trainable`);
  },
  Shape: (r) => {
    const v = r.get(0)!;
    const dims = isConst(v) ? v.dims : fixedDims(v, r.where);
    const s = ((r.a.start as number) ?? 0) < 0 ? dims.length + (r.a.start as number) : ((r.a.start as number) ?? 0);
    const e = r.a.end === undefined ? dims.length : (r.a.end as number) < 0 ? dims.length + (r.a.end as number) : (r.a.end as number);
    const sl = dims.slice(s, e);
    return [{ dtype: 'int64', dims: [sl.length], data: Float64Array.from(sl) }];
  },
  Relu: unary('Relu'),
  Sigmoid: unary('Sigmoid'),
  Tanh: unary('Tanh'),
  Erf: unary('Erf'),
  Sqrt: unary('Sqrt'),
  Exp: unary('Exp'),
  Log: unary('Log'),
  Neg: unary('Neg'),
  Abs: unary('Abs'),
  Softplus: unary('Softplus'),
  Add: binary(o.add),
  Sub: binary(o.sub),
  Mul: binary(o.mul),
  Div: binary(o.div),
  Pow: binary(o.pow),
  Gelu: (r) => {
    const x = r.tensor(0);
    if (r.a.approximate === 'tanh') {
      const inner = o.mul(o.add(x, o.mul(o.mul(o.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
      return [o.mul(o.mul(x, 0.5), o.add(o.tanh(inner), 1))];
    }
    return [o.gelu(x)];
  },
  HardSigmoid: (r) => [hardSigmoid(r.tensor(0), (r.a.alpha as number) ?? 0.2, (r.a.beta as number) ?? 0.5)],
  HardSwish: (r) => {
    const x = r.tensor(0);
    return [o.mul(x, hardSigmoid(x, 1 / 6, 0.5))];
  },
  Clip: (r) => {
    const lo = r.opset >= 11 ? r.ints(1)?.[0] : (r.a.min as number | undefined);
    const hi = r.opset >= 11 ? r.ints(2)?.[0] : (r.a.max as number | undefined);
    return [o.clip(r.tensor(0), lo, hi)];
  },
  Softmax: (r) => [o.softmax(r.tensor(0), (r.a.axis as number) ?? (r.opset >= 13 ? -1 : 1))],
  LogSoftmax: (r) => [o.logSoftmax(r.tensor(0), (r.a.axis as number) ?? (r.opset >= 13 ? -1 : 1))],
  MatMul: binary(o.matmul),
  Gemm: (r) => [
    o.gemm(r.tensor(0), r.tensor(1), {
      transA: !!r.a.transA,
      transB: !!r.a.transB,
      alpha: r.a.alpha as number | undefined,
      beta: r.a.beta as number | undefined,
      c: r.get(2) ? r.tensor(2) : undefined,
    }),
  ],
  Conv: (r) => {
    const x = r.tensor(0);
    const w = r.tensor(1);
    const k = (r.a.kernel_shape as number[]) ?? w.dims.slice(2);
    const strides = (r.a.strides as number[]) ?? k.map(() => 1);
    const dilations = (r.a.dilations as number[]) ?? k.map(() => 1);
    const pads = autoPads(r, fixedDims(x, r.where).slice(2), k, strides, dilations) ?? (r.a.pads as number[]) ?? [...k, ...k].map(() => 0);
    return [o.conv(x, w, r.get(2) ? r.tensor(2) : null, { strides, pads, dilations, group: (r.a.group as number) ?? 1 })];
  },
  MaxPool: (r) => pool(r, 'MaxPool'),
  AveragePool: (r) => pool(r, 'AveragePool'),
  GlobalAveragePool: (r) => [o.globalAveragePool(r.tensor(0))],
  ReduceMean: (r) => reduce(r, o.reduceMean),
  ReduceSum: (r) => reduce(r, o.reduceSum),
  Flatten: (r) => {
    const x = r.tensor(0);
    const ax = ((r.a.axis as number) ?? 1) < 0 ? x.rank + (r.a.axis as number) : ((r.a.axis as number) ?? 1);
    if (ax === 1) return [o.reshape(x, [0, -1])];
    const d = fixedDims(x, r.where);
    return [o.reshape(x, [numel(d.slice(0, ax)), -1])];
  },
  Reshape: (r) => {
    const x = r.tensor(0);
    const shape = r.ints(1)!;
    if (r.a.allowzero) throw new UserError(`${r.where}: Reshape with allowzero=1 is not supported`);
    return [o.reshape(x, shape)];
  },
  Transpose: (r) => {
    const x = r.tensor(0);
    return [o.transpose(x, (r.a.perm as number[]) ?? [...Array(x.rank).keys()].reverse())];
  },
  Concat: (r) => [
    o.concat(
      r.n.input.map((_, i) => r.tensor(i)),
      r.a.axis as number,
    ),
  ],
  Slice: (r) => {
    const x = r.tensor(0);
    const starts = r.opset >= 10 ? r.ints(1)! : (r.a.starts as number[]);
    const ends = r.opset >= 10 ? r.ints(2)! : (r.a.ends as number[]);
    const axes = (r.opset >= 10 ? r.ints(3) : (r.a.axes as number[])) ?? starts.map((_, i) => i);
    const steps = (r.opset >= 10 ? r.ints(4) : undefined) ?? starts.map(() => 1);
    // int64 extremes (INT64_MAX for "to the end") come through as ±9.2e18: clamp to something exact.
    const clamp = (v: number) => Math.max(-(2 ** 31), Math.min(2 ** 31, v));
    return [o.slice(x, starts.map(clamp), ends.map(clamp), axes, steps)];
  },
  Gather: (r) => {
    const x = r.tensor(0);
    const idx = r.get(1)!;
    if (!isConst(idx)) throw new UserError(`${r.where}: Gather with computed indices is not trainable`);
    const ax = ((r.a.axis as number) ?? 0) < 0 ? x.rank + (r.a.axis as number) : ((r.a.axis as number) ?? 0);
    const size = x.shape[ax] as number;
    const norm = Float64Array.from(idx.data, (i) => (i < 0 ? i + size : i));
    const t = r.g.constant(tensorData('int64', idx.dims, norm), 'gather_idx');
    return [o.gather(x, t, ax)];
  },
  Unsqueeze: (r) => [o.unsqueeze(r.tensor(0), axesOf(r, 1)!)],
  Squeeze: (r) => {
    const x = r.tensor(0);
    const d = x.shape;
    const axes = (axesOf(r, 1) ?? d.map((s, i) => (s === 1 ? i : -1)).filter((i) => i >= 0)).map((ax) => (ax < 0 ? ax + d.length : ax));
    return [
      o.reshape(
        x,
        d.map((s, i) => (axes.includes(i) ? -2 : typeof s === 'number' ? s : 0)).filter((s) => s !== -2),
      ),
    ];
  },
  Expand: (r) => {
    const x = r.tensor(0);
    const shape = r.ints(1)!;
    const xs = fixedDims(x, r.where);
    const rank = Math.max(xs.length, shape.length);
    const pad = (s: number[]) => [...Array(rank - s.length).fill(1), ...s];
    const [a, b] = [pad(xs), pad(shape)];
    return [
      o.expand(
        x,
        a.map((d, i) => (d === 1 ? b[i] : d)),
      ),
    ];
  },
  BatchNormalization: (r) => {
    if (r.n.output.length > 1 && r.n.output.slice(1).some(Boolean))
      throw new UserError(
        `${r.where}: a training-mode BatchNormalization (exported with training=TRAINING); export the model in eval mode`,
      );
    const [x, gamma, beta, mean, variance] = [0, 1, 2, 3, 4].map((i) => r.tensor(i));
    // ONNX's momentum weighs the running value (PyTorch's 0.1 is written as 0.9).
    return [
      batchNormWith(r.ctx, x, gamma, beta, mean, variance, {
        eps: (r.a.epsilon as number) ?? 1e-5,
        momentum: 1 - ((r.a.momentum as number) ?? 0.9),
      }),
    ];
  },
  LayerNormalization: (r) => {
    const x = r.tensor(0);
    const gamma = r.tensor(1);
    const beta = r.get(2) ? r.tensor(2) : o.mul(gamma, 0);
    return [o.layerNorm(x, gamma, beta, { axis: (r.a.axis as number) ?? -1, eps: (r.a.epsilon as number) ?? 1e-5 })];
  },
};

function autoPads(r: RuleCtx, size: number[], k: number[], s: number[], d: number[]): number[] | undefined {
  const mode = (r.a.auto_pad as string | undefined) ?? 'NOTSET';
  if (mode === 'NOTSET') return undefined;
  if (mode === 'VALID') return [...k, ...k].map(() => 0);
  // SAME_UPPER / SAME_LOWER: output = ceil(in / stride); the extra pad goes at the end (upper) or start (lower).
  const total = size.map((n, i) => Math.max(0, (Math.ceil(n / s[i]) - 1) * s[i] + (k[i] - 1) * d[i] + 1 - n));
  const lo = total.map((t) => (mode === 'SAME_UPPER' ? Math.floor(t / 2) : Math.ceil(t / 2)));
  return [...lo, ...total.map((t, i) => t - lo[i])];
}

function pool(r: RuleCtx, op: 'MaxPool' | 'AveragePool'): Val[] {
  const x = r.tensor(0);
  const k = r.a.kernel_shape as number[];
  if (r.a.ceil_mode) throw new UserError(`${r.where}: ${op} with ceil_mode=1 is not supported`);
  if (((r.a.dilations as number[]) ?? []).some((v) => v !== 1)) throw new UserError(`${r.where}: dilated ${op} is not supported`);
  if (r.n.output.length > 1 && r.n.output[1]) throw new UserError(`${r.where}: ${op}'s Indices output is not supported`);
  const strides = (r.a.strides as number[]) ?? k.map(() => 1);
  const pads =
    autoPads(
      r,
      fixedDims(x, r.where).slice(2),
      k,
      strides,
      k.map(() => 1),
    ) ??
    (r.a.pads as number[]) ??
    [...k, ...k].map(() => 0);
  if (op === 'MaxPool') return [o.maxPool(x, k, { strides, pads })];
  return [o.averagePool(x, k, { strides, pads, countIncludePad: !!r.a.count_include_pad })];
}

function reduce(r: RuleCtx, f: (x: Tensor, axes?: number[], keep?: boolean) => Tensor): Val[] {
  const x = r.tensor(0);
  const axes = axesOf(r, 1);
  const keep = (r.a.keepdims as number | undefined) ?? 1;
  if (!axes || axes.length === 0) {
    if (r.a.noop_with_empty_axes) return [x];
    return [f(x, [...Array(x.rank).keys()], !!keep)];
  }
  return [f(x, axes, !!keep)];
}

/** A backbone over an imported ONNX encoder (the `onnx:FILE` backbone name; `onnx+bn:FILE` inserts BatchNorm). */
export function importedBackbone(file: string, o: { insertBatchNorm?: boolean } = {}): Backbone {
  const m = readImported(file);
  let dim: number | undefined;
  return {
    name: `onnx:${file}`,
    get dim() {
      if (dim === undefined) dim = probeDim(m);
      return dim;
    },
    build: (ctx, x) => {
      const r = buildImported(m, ctx, x, o);
      return { features: r.features, featureMap: r.featureMap };
    },
    imported: {
      parameters: () => importedParamsByNode(m).paramsByNode.flatMap(([, names]) => names),
      parametersUpTo: (node) => {
        const byNode = importedParamsByNode(m).paramsByNode;
        const all = m.model.graph.node.map((n) => n.name || n.output[0]);
        const at = all.indexOf(node);
        if (at < 0)
          throw new UserError(
            `--freeze ${node}: ${file} has no node of that name (the first are ${all.slice(0, 5).join(', ')}; \`sslkit inspect ${file}\` lists them)`,
          );
        const upTo = new Set(all.slice(0, at + 1));
        return byNode.filter(([n]) => upTo.has(n)).flatMap(([, names]) => names);
      },
    },
  };
}

/** The embedding size: from the declared output, else by building the graph once for one image. */
function probeDim(m: ImportedModel): number {
  const s = m.output.shape;
  if (s.length === 2 && typeof s[1] === 'number') return s[1];
  if (s.length === 4 && typeof s[1] === 'number') return s[1];
  return importedParamsByNode(m).dim;
}

const probes = new WeakMap<ImportedModel, { dim: number; paramsByNode: [string, string[]][] }>();

/**
 * The parameters each node reads and the embedding size, from one eval-mode build for one image
 * (at the declared size, 64 pixels where it is dynamic), once per file version: every build of a
 * run (the step graph, its re-build after tuning, the config's dim) asks again.
 */
function importedParamsByNode(m: ImportedModel): { dim: number; paramsByNode: [string, string[]][] } {
  let p = probes.get(m);
  if (!p) {
    const g = new Graph('infer');
    const [, c, h, w] = m.input.shape;
    const x = g.input('probe', [1, c as number, typeof h === 'number' ? h : 64, typeof w === 'number' ? w : 64]);
    const r = buildImported(m, new Ctx(g, { training: false }), x);
    p = { dim: r.features.dims[1], paramsByNode: r.paramsByNode };
    probes.set(m, p);
  }
  return p;
}
