/**
 * The op table. Each ONNX op sslkit uses is defined once, with its emitter (the function that
 * builds the node), its shape rule and its vector-Jacobian rule side by side. Ops without a rule
 * (comparisons, casts, indices) carry no gradient. Derived ops (gelu, l2normalize, ...) are
 * compositions and need no rule of their own.
 */
import { defineOp, Tensor, tensorData, type Attrs, type GradEnv, type Shape, type Graph, type Node } from './graph.js';
import type { DType } from '../../core/onnx/onnx-proto.js';
import { broadcastShapes, convOut, convTransposeOut, normAxis, numel, sameShape } from './shape.js';
import { resizeMatrix, type ResizeOptions } from './resize-matrix.js';

type T = Tensor;
type TN = Tensor | number;

const graphOf = (...xs: unknown[]): Graph => {
  for (const x of xs) if (x instanceof Tensor) return x.graph;
  throw new TypeError('an op needs at least one tensor operand');
};
/** A node as the rules below see it: `inputs` are the op's required inputs, checked present; `optional` all of them, null where absent. */
interface RuleNode {
  inputs: T[];
  optional: (T | null)[];
  outputs: T[];
  attrs: Attrs;
}

/**
 * Registers an op whose first `required` inputs (default: all) must be present, so that its rules
 * read them without null checks; `dy` is the first output's gradient (zeros where only another
 * output has one) and `dys` every output's.
 */
function op(
  name: string,
  def: {
    required?: number;
    shape(ins: T[], attrs: Attrs): { shape: Shape; dtype: DType }[];
    nonDiff?: number[];
    vjp?(node: RuleNode, dy: T, dys: (T | null)[], env: GradEnv): (T | null)[];
  },
): void {
  const present = (ins: (T | null)[]): T[] => {
    const n = def.required ?? ins.length;
    const out: T[] = [];
    for (let i = 0; i < n; i++) {
      const t = ins[i];
      if (!t) throw new TypeError(`${name}: input ${i} is required`);
      out.push(t);
    }
    return out;
  };
  const { vjp } = def;
  defineOp(name, {
    shape: (ins, attrs) => def.shape(present(ins), attrs),
    nonDiff: def.nonDiff,
    vjp: vjp
      ? (node: Node, dys, env) => {
          const y = node.outputs[0];
          const dy = dys[0] ?? zeros(y.graph, y.dims, y.dtype);
          return vjp({ inputs: present(node.inputs), optional: node.inputs, outputs: node.outputs, attrs: node.attrs }, dy, dys, env);
        }
      : undefined,
  });
}

const lift = (g: Graph, x: TN, dtype: DType = 'float32'): T => (typeof x === 'number' ? g.scalar(x, dtype) : x);
const same = (ins: T[]) => [{ shape: ins[0].shape, dtype: ins[0].dtype }];
const emit1 = (op: string, ins: (T | null)[], attrs?: Attrs): T => graphOf(...ins).emit(op, ins, attrs)[0];

// ---------------------------------------------------------------- broadcasting arithmetic

/** Sums a gradient over the axes that broadcasting expanded, back to `shape`. */
export function unbroadcast(dy: T, shape: Shape): T {
  if (sameShape(dy.shape, shape)) return dy;
  const lead = dy.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < dy.rank; i++) if (i < lead || (shape[i - lead] === 1 && dy.shape[i] !== 1)) axes.push(i);
  const summed = axes.length ? reduceSum(dy, axes, true) : dy;
  return sameShape(summed.shape, shape) ? summed : reshape(summed, shape as number[]);
}

const binaryShape = (op: string) => (ins: T[]) => [{ shape: broadcastShapes(op, ins[0].shape, ins[1].shape), dtype: ins[0].dtype }];
const boolShape = (op: string) => (ins: T[]) => [{ shape: broadcastShapes(op, ins[0].shape, ins[1].shape), dtype: 'bool' as DType }];

function binary(op: string, a: TN, b: TN): T {
  const g = graphOf(a, b);
  const dt = a instanceof Tensor ? a.dtype : (b as T).dtype;
  return g.emit(op, [lift(g, a, dt), lift(g, b, dt)])[0];
}

op('Add', { shape: binaryShape('Add'), vjp: ({ inputs: [a, b] }, dy) => [unbroadcast(dy, a.shape), unbroadcast(dy, b.shape)] });
export const add = (a: TN, b: TN) => binary('Add', a, b);

op('Sub', {
  shape: binaryShape('Sub'),
  vjp: ({ inputs: [a, b] }, dy) => [unbroadcast(dy, a.shape), unbroadcast(neg(dy), b.shape)],
});
export const sub = (a: TN, b: TN) => binary('Sub', a, b);

op('Mul', {
  shape: binaryShape('Mul'),
  vjp: ({ inputs: [a, b] }, dy) => [unbroadcast(mul(dy, b), a.shape), unbroadcast(mul(dy, a), b.shape)],
});
export const mul = (a: TN, b: TN) => binary('Mul', a, b);

op('Div', {
  shape: binaryShape('Div'),
  vjp: ({ inputs: [a, b], outputs: [y] }, dy) => [unbroadcast(div(dy, b), a.shape), unbroadcast(neg(div(mul(dy, y), b)), b.shape)],
});
export const div = (a: TN, b: TN) => binary('Div', a, b);

op('Pow', {
  shape: (ins) => [{ shape: broadcastShapes('Pow', ins[0].shape, ins[1].shape), dtype: ins[0].dtype }],
  vjp: ({ inputs: [a, b], outputs: [y] }, dy) => [
    unbroadcast(mul(dy, mul(b, pow(a, sub(b, 1)))), a.shape),
    unbroadcast(mul(dy, mul(y, log(a))), b.shape),
  ],
});
export const pow = (a: TN, b: TN) => binary('Pow', a, b);

// ---------------------------------------------------------------- elementwise unary

op('Neg', { shape: same, vjp: (_, dy) => [neg(dy)] });
export const neg = (x: T) => emit1('Neg', [x]);

op('Abs', { shape: same, vjp: ({ inputs: [x] }, dy) => [mul(dy, sign(x))] });
export const abs = (x: T) => emit1('Abs', [x]);

op('Sqrt', { shape: same, vjp: ({ outputs: [y] }, dy) => [div(mul(dy, 0.5), y)] });
export const sqrt = (x: T) => emit1('Sqrt', [x]);

op('Exp', { shape: same, vjp: ({ outputs: [y] }, dy) => [mul(dy, y)] });
export const exp = (x: T) => emit1('Exp', [x]);

op('Log', { shape: same, vjp: ({ inputs: [x] }, dy) => [div(dy, x)] });
export const log = (x: T) => emit1('Log', [x]);

op('Relu', { shape: same, vjp: ({ outputs: [y] }, dy) => [where(greater(y, 0), dy, 0)] });
export const relu = (x: T) => emit1('Relu', [x]);

op('Sigmoid', { shape: same, vjp: ({ outputs: [y] }, dy) => [mul(dy, mul(y, sub(1, y)))] });
export const sigmoid = (x: T) => emit1('Sigmoid', [x]);

op('Tanh', { shape: same, vjp: ({ outputs: [y] }, dy) => [mul(dy, sub(1, mul(y, y)))] });
export const tanh = (x: T) => emit1('Tanh', [x]);

op('Softplus', { shape: same, vjp: ({ inputs: [x] }, dy) => [mul(dy, sigmoid(x))] });
export const softplus = (x: T) => emit1('Softplus', [x]);

op('Erf', { shape: same, vjp: ({ inputs: [x] }, dy) => [mul(dy, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI)))] });
export const erf = (x: T) => emit1('Erf', [x]);

/** GELU (exact, erf form), composed so that it exports at opset 17 (ONNX Gelu needs 20). */
export const gelu = (x: T) => mul(mul(x, 0.5), add(erf(mul(x, Math.SQRT1_2)), 1));

op('Clip', {
  required: 1,
  shape: same,
  nonDiff: [1, 2],
  vjp: ({ inputs: [x], optional: [, lo, hi] }, dy) => {
    let mask: T = dy;
    if (lo) mask = where(less(x, lo), 0, mask);
    if (hi) mask = where(greater(x, hi), 0, mask);
    return [mask, null, null];
  },
});
export function clip(x: T, min?: number, max?: number): T {
  const g = x.graph;
  return g.emit('Clip', [x, min === undefined ? null : g.scalar(min, x.dtype), max === undefined ? null : g.scalar(max, x.dtype)])[0];
}

op('Identity', { shape: same, vjp: (_, dy) => [dy] });
export const identity = (x: T) => emit1('Identity', [x]);

/** Passes x forward unchanged and blocks its gradient (sg(x) in the method tables). */
export function stopGradient(x: T): T {
  const y = x.graph.emit('Identity', [x])[0];
  if (y.producer) y.producer.stopGradient = true;
  return y;
}

// ---------------------------------------------------------------- no-gradient helpers

op('Sign', { shape: same });
export const sign = (x: T) => emit1('Sign', [x]);
op('Greater', { shape: boolShape('Greater') });
export const greater = (a: TN, b: TN) => binary('Greater', a, b);
op('Less', { shape: boolShape('Less') });
export const less = (a: TN, b: TN) => binary('Less', a, b);
op('Equal', { shape: boolShape('Equal') });
export const equal = (a: TN, b: TN) => binary('Equal', a, b);
op('Not', { shape: same });
export const not = (x: T) => emit1('Not', [x]);
op('Cast', {
  shape: (ins, a) => [{ shape: ins[0].shape, dtype: a._dtype as DType }],
  vjp: ({ inputs: [x] }, dy) => [x.dtype.startsWith('float') ? cast(dy, x.dtype) : null],
});
const ONNX_DT: Record<string, number> = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11 };
export const cast = (x: T, to: DType) => x.graph.emit('Cast', [x], { to: ONNX_DT[to], _dtype: to })[0];
op('Where', {
  shape: (ins) => [{ shape: broadcastShapes('Where', ins[0].shape, ins[1].shape, ins[2].shape), dtype: ins[1].dtype }],
  nonDiff: [0],
  vjp: ({ inputs: [c, a, b] }, dy) => [null, unbroadcast(where(c, dy, 0), a.shape), unbroadcast(where(c, 0, dy), b.shape)],
});
export function where(c: T, a: TN, b: TN): T {
  const g = c.graph;
  const dt = a instanceof Tensor ? a.dtype : b instanceof Tensor ? b.dtype : 'float32';
  return g.emit('Where', [c, lift(g, a, dt), lift(g, b, dt)])[0];
}

// ---------------------------------------------------------------- shape ops

op('Reshape', {
  shape: (ins, a) => {
    const x = ins[0];
    const target = (a._shape as number[]).slice();
    const shape: Shape = target.map((d, i) => (d === 0 ? x.shape[i] : d));
    // Symbolic dimensions (a dynamic batch) must be carried over with 0, or be what -1 stands for.
    const symIn = x.shape.filter((d) => typeof d !== 'number');
    const symOut = shape.filter((d) => typeof d !== 'number');
    const uncopied = symIn.filter((d) => !symOut.includes(d));
    const numIn = numel(x.shape.filter((d) => typeof d === 'number') as number[]);
    const neg = shape.indexOf(-1);
    if (neg >= 0) {
      const rest = numel(shape.filter((d, i) => i !== neg && typeof d === 'number') as number[]);
      if (uncopied.length === 0) shape[neg] = numIn / rest;
      else if (uncopied.length === 1 && numIn === rest) shape[neg] = uncopied[0];
      else throw new RangeError(`Reshape: cannot infer -1 in [${target}] from [${x.shape}]`);
    } else if (uncopied.length)
      throw new RangeError(`Reshape: symbolic dimension '${uncopied[0]}' of [${x.shape}] is not carried into [${target}]`);
    const numOut = numel(shape.filter((d) => typeof d === 'number') as number[]);
    if (uncopied.length === 0 && neg < 0 && numOut !== numIn)
      throw new RangeError(`Reshape: cannot reshape [${x.shape}] (${numIn} values) to [${target}]`);
    return [{ shape, dtype: x.dtype }];
  },
  nonDiff: [1],
  vjp: ({ inputs: [x] }, dy) => [reshape(dy, x.dims), null],
});
/** Reshape; 0 copies the input's dimension and -1 is inferred, as in ONNX. */
export function reshape(x: T, shape: number[]): T {
  return x.graph.emit('Reshape', [x, x.graph.int64s(shape)], { _shape: shape })[0];
}
export const flatten = (x: T) => reshape(x, [0, -1]);

op('Unsqueeze', {
  shape: (ins, a) => {
    const shape = ins[0].shape.slice();
    const axes = (a._axes as number[]).map((ax) => normAxis(ax, shape.length + (a._axes as number[]).length)).sort((p, q) => p - q);
    for (const ax of axes) shape.splice(ax, 0, 1);
    return [{ shape, dtype: ins[0].dtype }];
  },
  nonDiff: [1],
  vjp: ({ inputs: [x] }, dy) => [reshape(dy, x.dims), null],
});
export const unsqueeze = (x: T, axes: number[]) => x.graph.emit('Unsqueeze', [x, x.graph.int64s(axes)], { _axes: axes })[0];

op('Transpose', {
  shape: (ins, a) => [{ shape: (a.perm as number[]).map((p) => ins[0].shape[p]), dtype: ins[0].dtype }],
  vjp: ({ attrs }, dy) => {
    const perm = attrs.perm as number[];
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [transpose(dy, inv)];
  },
});
export const transpose = (x: T, perm: number[]) => x.graph.emit('Transpose', [x], { perm })[0];
/** Swaps the last two axes. */
export const transposeLast = (x: T) => transpose(x, [...Array(x.rank - 2).keys(), x.rank - 1, x.rank - 2]);

op('Expand', {
  shape: (ins, a) => [{ shape: broadcastShapes('Expand', ins[0].shape, a._shape as number[]), dtype: ins[0].dtype }],
  nonDiff: [1],
  vjp: ({ inputs: [x] }, dy) => [unbroadcast(dy, x.shape), null],
});
export const expand = (x: T, shape: number[]) => x.graph.emit('Expand', [x, x.graph.int64s(shape)], { _shape: shape })[0];
/** A zero tensor of a shape without storing it: Expand of a scalar. */
export const zeros = (g: Graph, shape: number[], dtype: DType = 'float32') => expand(g.scalar(0, dtype), shape);

op('Concat', {
  shape: (ins, a) => {
    const ax = normAxis(a.axis as number, ins[0].rank);
    const shape = ins[0].shape.slice();
    shape[ax] = ins.reduce((s, t) => s + (t.shape[ax] as number), 0);
    return [{ shape, dtype: ins[0].dtype }];
  },
  vjp: ({ inputs, attrs }, dy) => {
    const ax = normAxis(attrs.axis as number, dy.rank);
    let at = 0;
    return inputs.map((t) => {
      const len = t.shape[ax] as number;
      const part = slice(dy, [at], [at + len], [ax]);
      at += len;
      return part;
    });
  },
});
export const concat = (xs: T[], axis: number) => (xs.length === 1 ? xs[0] : graphOf(...xs).emit('Concat', xs, { axis })[0]);

op('Split', {
  shape: (ins, a) => {
    const ax = normAxis(a.axis as number, ins[0].rank);
    return (a._sizes as number[]).map((len) => ({ shape: ins[0].shape.map((d, i) => (i === ax ? len : d)), dtype: ins[0].dtype }));
  },
  nonDiff: [1],
  vjp: ({ outputs, attrs }, _dy, dys) => {
    const g = outputs[0].graph;
    const parts = outputs.map((o, i) => dys[i] ?? zeros(g, o.dims, o.dtype));
    return [concat(parts, attrs.axis as number), null];
  },
});
export function split(x: T, sizes: number[], axis: number): T[] {
  return x.graph.emit('Split', [x, x.graph.int64s(sizes)], { axis, _sizes: sizes });
}

op('Slice', {
  shape: (ins, a) => {
    const x = ins[0];
    const shape = x.shape.slice();
    const r = resolveSlice(x.shape, a._starts as number[], a._ends as number[], a._axes as number[], a._steps as number[]);
    for (const s of r) shape[s.axis] = Math.max(0, Math.ceil((s.end - s.start) / s.step));
    return [{ shape, dtype: x.dtype }];
  },
  nonDiff: [1, 2, 3, 4],
  vjp: ({ inputs: [x], attrs }, dy) => {
    const r = resolveSlice(x.dims, attrs._starts as number[], attrs._ends as number[], attrs._axes as number[], attrs._steps as number[]);
    if (r.some((s) => s.step !== 1)) throw new RangeError('Slice: gradient is implemented for step 1 only');
    const pads = new Array(2 * x.rank).fill(0);
    for (const s of r) {
      pads[s.axis] = s.start;
      pads[s.axis + x.rank] = (x.shape[s.axis] as number) - s.end;
    }
    return [pad(dy, pads), null, null, null, null];
  },
});
function resolveSlice(dims: Shape, starts: number[], ends: number[], axes: number[], steps: number[]) {
  return axes.map((ax, i) => {
    const axis = normAxis(ax, dims.length);
    const n = dims[axis];
    if (typeof n !== 'number') throw new RangeError(`Slice: axis ${axis} is symbolic ('${n}'); only numeric axes can be sliced`);
    const step = steps[i];
    // ONNX clamps to [0, n] for positive steps and to [−1, n−1] for negative ones.
    const [lo, hi] = step > 0 ? [0, n] : [-1, n - 1];
    const clampIdx = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, lo), hi);
    return { axis, start: clampIdx(starts[i]), end: clampIdx(ends[i]), step };
  });
}
export function slice(x: T, starts: number[], ends: number[], axes: number[], steps?: number[]): T {
  const g = x.graph;
  const st = steps ?? axes.map(() => 1);
  return g.emit('Slice', [x, g.int64s(starts), g.int64s(ends), g.int64s(axes), g.int64s(st)], {
    _starts: starts,
    _ends: ends,
    _axes: axes,
    _steps: st,
  })[0];
}

op('Pad', {
  shape: (ins, a) => {
    const p = a._pads as number[];
    const r = ins[0].rank;
    return [{ shape: ins[0].dims.map((d, i) => d + p[i] + p[i + r]), dtype: ins[0].dtype }];
  },
  nonDiff: [1, 2],
  vjp: ({ inputs: [x], attrs }, dy) => {
    const p = attrs._pads as number[];
    const dims = x.dims;
    const begin = dims.map((_, i) => p[i]);
    return [
      slice(
        dy,
        begin,
        dims.map((d, i) => p[i] + d),
        dims.map((_, i) => i),
      ),
      null,
      null,
    ];
  },
});
/** Constant (zero) padding; pads = [begin per axis..., end per axis...]. */
export function pad(x: T, pads: number[]): T {
  const g = x.graph;
  if (pads.every((p) => p === 0)) return x;
  return g.emit('Pad', [x, g.int64s(pads)], { mode: 'constant', _pads: pads })[0];
}

op('Gather', {
  shape: (ins, a) => {
    const ax = normAxis(a.axis as number, ins[0].rank);
    const shape = [...ins[0].shape.slice(0, ax), ...ins[1].shape, ...ins[0].shape.slice(ax + 1)];
    return [{ shape, dtype: ins[0].dtype }];
  },
  nonDiff: [1],
  vjp: ({ inputs: [x, idx], attrs }, dy) => {
    const ax = normAxis(attrs.axis as number, x.rank);
    if (ax !== 0) {
      // Move the gathered axis to the front, scatter there, and move it back.
      const perm = [ax, ...[...Array(x.rank).keys()].filter((i) => i !== ax)];
      const xt = x.dims;
      const dxT = scatterAddRows(
        transpose(
          dy,
          [...Array(idx.rank).keys()]
            .map((i) => i + ax)
            .concat(
              [...Array(ax).keys()],
              [...Array(x.rank - ax - 1).keys()].map((i) => i + ax + idx.rank),
            ),
        ),
        idx,
        perm.map((p) => xt[p]),
      );
      return [
        transpose(
          dxT,
          perm.map((_, i) => perm.indexOf(i)),
        ),
        null,
      ];
    }
    return [scatterAddRows(dy, idx, x.dims), null];
  },
});
export const gather = (x: T, indices: T, axis = 0) => x.graph.emit('Gather', [x, indices], { axis })[0];

/** dx[idx[i]] += dy[i] for the rows of a [rows, ...] tensor (Gather's adjoint). */
function scatterAddRows(dy: T, idx: T, shape: number[]): T {
  const g = dy.graph;
  const flatIdx = reshape(idx, [-1, 1]);
  const upd = reshape(dy, [-1, ...shape.slice(1)]);
  return g.emit('ScatterND', [zeros(g, shape, dy.dtype), flatIdx, upd], { reduction: 'add' })[0];
}
op('ScatterND', { shape: same, nonDiff: [1] });

op('ScatterElements', { shape: same, nonDiff: [1] });

// ---------------------------------------------------------------- reductions

function reduceShape(ins: T[], a: Attrs) {
  const x = ins[0];
  const axes = (a._axes as number[]).map((ax) => normAxis(ax, x.rank));
  const keep = a.keepdims !== 0;
  const shape: Shape = [];
  x.shape.forEach((d, i) => {
    if (!axes.includes(i)) shape.push(d);
    else if (keep) shape.push(1);
  });
  return [{ shape, dtype: x.dtype }];
}
/** dy of a reduction, reshaped to keepdims form and expanded back over the input. */
function expandBack(node: RuleNode, dy: T): T {
  const x = node.inputs[0];
  const axes = (node.attrs._axes as number[]).map((ax) => normAxis(ax, x.rank));
  const kept = x.dims.map((d, i) => (axes.includes(i) ? 1 : d));
  return expand(node.attrs.keepdims === 0 ? reshape(dy, kept) : dy, x.dims);
}
const reducedCount = (node: RuleNode) => {
  const x = node.inputs[0];
  return (node.attrs._axes as number[]).reduce((c, ax) => c * (x.shape[normAxis(ax, x.rank)] as number), 1);
};
function reduce(op: string, x: T, axes: number[], keepdims: boolean): T {
  const g = x.graph;
  const attrs: Attrs = { keepdims: keepdims ? 1 : 0, _axes: axes };
  // Opset 13+ takes ReduceSum's axes as an input; the others take an attribute until opset 18.
  if (op === 'ReduceSum') return g.emit(op, [x, g.int64s(axes)], attrs)[0];
  return g.emit(op, [x], { ...attrs, axes })[0];
}
const allAxes = (x: T) => [...Array(x.rank).keys()];

op('ReduceSum', { shape: reduceShape, nonDiff: [1], vjp: (n, dy) => [expandBack(n, dy), null] });
export const reduceSum = (x: T, axes: number[] = allAxes(x), keepdims = false) => reduce('ReduceSum', x, axes, keepdims);

op('ReduceMean', { shape: reduceShape, vjp: (n, dy) => [div(expandBack(n, dy), reducedCount(n))] });
export const reduceMean = (x: T, axes: number[] = allAxes(x), keepdims = false) => reduce('ReduceMean', x, axes, keepdims);

op('ReduceSumSquare', { shape: reduceShape, vjp: (n, dy) => [mul(expandBack(n, dy), mul(n.inputs[0], 2))] });
export const reduceSumSquare = (x: T, axes: number[] = allAxes(x), keepdims = false) => reduce('ReduceSumSquare', x, axes, keepdims);

op('ReduceL2', {
  shape: reduceShape,
  // d‖x‖ = x/‖x‖; the max() keeps a zero norm from producing NaN (its subgradient 0 is taken).
  vjp: (n, dy) => [mul(n.inputs[0], expandBack(n, div(dy, maxScalar(n.outputs[0], 1e-30))))],
});
export const reduceL2 = (x: T, axes: number[] = allAxes(x), keepdims = false) => reduce('ReduceL2', x, axes, keepdims);

op('ReduceMax', {
  shape: reduceShape,
  // Ties share the gradient equally.
  vjp: (n, dy) => {
    const x = n.inputs[0];
    const yk = expandBack(n, n.outputs[0]);
    const mask = cast(equal(x, yk), x.dtype);
    const axes = n.attrs._axes as number[];
    const count = reduceSum(mask, axes, true);
    return [div(mul(mask, expandBack(n, dy)), count)];
  },
});
export const reduceMax = (x: T, axes: number[] = allAxes(x), keepdims = false) => reduce('ReduceMax', x, axes, keepdims);

/**
 * Max's and Min's gradient: to the input that wins, and on a tie half to each, as PyTorch's
 * maximum/minimum do (ReduceMax likewise shares a tie among the tied elements).
 */
function pickBackward(a: T, b: T, dy: T, aWins: T): [T, T] {
  const wa = where(equal(a, b), 0.5, where(aWins, 1, 0));
  return [unbroadcast(mul(dy, wa), a.shape), unbroadcast(mul(dy, sub(1, wa)), b.shape)];
}

op('Max', {
  shape: binaryShape('Max'),
  vjp: ({ inputs: [a, b] }, dy) => pickBackward(a, b, dy, greater(a, b)),
});
export const maximum = (a: TN, b: TN) => binary('Max', a, b);
const maxScalar = (x: T, v: number) => maximum(x, v);
op('Min', {
  shape: binaryShape('Min'),
  vjp: ({ inputs: [a, b] }, dy) => pickBackward(a, b, dy, less(a, b)),
});
export const minimum = (a: TN, b: TN) => binary('Min', a, b);

op('Softmax', {
  shape: same,
  vjp: ({ outputs: [y], attrs }, dy) => [mul(y, sub(dy, reduceSum(mul(dy, y), [attrs.axis as number], true)))],
});
export const softmax = (x: T, axis = -1) => x.graph.emit('Softmax', [x], { axis })[0];

op('LogSoftmax', {
  shape: same,
  vjp: ({ outputs: [y], attrs }, dy) => [sub(dy, mul(exp(y), reduceSum(dy, [attrs.axis as number], true)))],
});
export const logSoftmax = (x: T, axis = -1) => x.graph.emit('LogSoftmax', [x], { axis })[0];

// ---------------------------------------------------------------- matrix products

op('MatMul', {
  shape: (ins) => {
    const [a, b] = [ins[0], ins[1]];
    if (a.rank < 2 || b.rank < 2) throw new RangeError(`MatMul: operands must have rank >= 2, got [${a.shape}] and [${b.shape}]`);
    if (a.shape[a.rank - 1] !== b.shape[b.rank - 2]) throw new RangeError(`MatMul: inner dimensions differ: [${a.shape}] @ [${b.shape}]`);
    const batch = broadcastShapes('MatMul', a.shape.slice(0, -2), b.shape.slice(0, -2));
    return [{ shape: [...batch, a.shape[a.rank - 2], b.shape[b.rank - 1]], dtype: a.dtype }];
  },
  vjp: ({ inputs: [a, b] }, dy) => {
    if (a.rank === 2 && b.rank === 2) return [gemm(dy, b, { transB: true }), gemm(a, dy, { transA: true })];
    if (b.rank === 2) {
      // Shared weight: fold the batch axes into rows so dB is one product.
      const k = a.shape[a.rank - 1] as number;
      const n = b.shape[1] as number;
      const dA = matmul(dy, transposeLast(b));
      const dB = gemm(reshape(a, [-1, k]), reshape(dy, [-1, n]), { transA: true });
      return [dA, dB];
    }
    return [unbroadcast(matmul(dy, transposeLast(b)), a.shape), unbroadcast(matmul(transposeLast(a), dy), b.shape)];
  },
});
export const matmul = (a: T, b: T) => a.graph.emit('MatMul', [a, b])[0];

op('Gemm', {
  required: 2,
  shape: (ins, at) => {
    const [a, b] = [ins[0], ins[1]];
    const m = at.transA ? a.shape[1] : a.shape[0];
    const n = at.transB ? b.shape[0] : b.shape[1];
    return [{ shape: [m, n], dtype: a.dtype }];
  },
  vjp: ({ inputs: [a, b], optional: [, , c], attrs }, dy) => {
    const alpha = (attrs.alpha as number) ?? 1;
    const beta = (attrs.beta as number) ?? 1;
    const tA = !!attrs.transA;
    const tB = !!attrs.transB;
    // y = alpha·op(A)·op(B) + beta·C
    const dA = tA ? gemm(b, dy, { transA: tB, transB: true, alpha }) : gemm(dy, b, { transB: !tB, alpha });
    const dB = tB ? gemm(dy, a, { transA: true, transB: tA, alpha }) : gemm(a, dy, { transA: !tA, alpha });
    const dC = c ? unbroadcast(beta === 1 ? dy : mul(dy, beta), c.shape) : null;
    return [dA, dB, dC];
  },
});
export function gemm(a: T, b: T, o: { transA?: boolean; transB?: boolean; alpha?: number; beta?: number; c?: T } = {}): T {
  const attrs: Attrs = {};
  if (o.transA) attrs.transA = 1;
  if (o.transB) attrs.transB = 1;
  if (o.alpha !== undefined && o.alpha !== 1) attrs.alpha = o.alpha;
  if (o.beta !== undefined && o.beta !== 1) attrs.beta = o.beta;
  return a.graph.emit('Gemm', o.c ? [a, b, o.c] : [a, b], attrs)[0];
}

// ---------------------------------------------------------------- convolution and pooling

export interface ConvOptions {
  strides?: number[];
  pads?: number[];
  dilations?: number[];
  group?: number;
}
function convAttrs(o: ConvOptions, k: number[]) {
  const nd = k.length;
  return {
    kernel_shape: k,
    strides: o.strides ?? new Array(nd).fill(1),
    pads: o.pads ?? new Array(2 * nd).fill(0),
    dilations: o.dilations ?? new Array(nd).fill(1),
    group: o.group ?? 1,
  };
}

op('Conv', {
  required: 2,
  shape: (ins, a) => {
    const [x, w] = [ins[0], ins[1]];
    const k = a.kernel_shape as number[];
    const s = a.strides as number[];
    const p = a.pads as number[];
    const d = a.dilations as number[];
    const nd = k.length;
    if (x.shape[1] !== (w.shape[1] as number) * (a.group as number))
      throw new RangeError(
        `Conv: input has ${x.shape[1]} channels, weight [${w.shape}] with group ${a.group} expects ${(w.shape[1] as number) * (a.group as number)}`,
      );
    const spatial = x.shape.slice(2).map((sz, i) => convOut('Conv', sz, k[i], s[i], p[i], p[i + nd], d[i]));
    return [{ shape: [x.shape[0], w.shape[0], ...spatial], dtype: x.dtype }];
  },
});
// Conv's and ConvTranspose's gradient rules are in conv-grad.ts (autodiff.ts loads them).

export function conv(x: T, w: T, b: T | null, o: ConvOptions = {}): T {
  return x.graph.emit('Conv', b ? [x, w, b] : [x, w], convAttrs(o, w.dims.slice(2)))[0];
}

op('ConvTranspose', {
  required: 2,
  shape: (ins, a) => {
    const [x, w] = [ins[0], ins[1]];
    const k = a.kernel_shape as number[];
    const s = a.strides as number[];
    const p = a.pads as number[];
    const d = a.dilations as number[];
    const op = a.output_padding as number[];
    const nd = k.length;
    const spatial = x.shape.slice(2).map((sz, i) => convTransposeOut(sz, k[i], s[i], p[i], p[i + nd], d[i], op[i]));
    return [{ shape: [x.shape[0], (w.shape[1] as number) * (a.group as number), ...spatial], dtype: x.dtype }];
  },
});
export function convTranspose(x: T, w: T, o: ConvOptions & { outputPadding?: number[]; bias?: T } = {}): T {
  const k = w.dims.slice(2);
  const attrs: Attrs = { ...convAttrs(o, k), output_padding: o.outputPadding ?? new Array(k.length).fill(0) };
  return x.graph.emit('ConvTranspose', o.bias ? [x, w, o.bias] : [x, w], attrs)[0];
}

function poolShape(op: string) {
  return (ins: T[], a: Attrs) => {
    const x = ins[0];
    const k = a.kernel_shape as number[];
    const s = a.strides as number[];
    const p = a.pads as number[];
    const nd = k.length;
    const spatial = x.shape.slice(2).map((sz, i) => convOut(op, sz, k[i], s[i], p[i], p[i + nd], 1));
    const out = { shape: [x.shape[0], x.shape[1], ...spatial], dtype: x.dtype };
    return op === 'MaxPool' ? [out, { shape: out.shape, dtype: 'int64' as DType }] : [out];
  };
}
export interface PoolOptions {
  strides?: number[];
  pads?: number[];
}

op('MaxPool', {
  shape: poolShape('MaxPool'),
  // The Indices output addresses the flattened input; scatter-add dy there.
  vjp: ({ inputs: [x], outputs: [, idx] }, dy) => {
    const g = x.graph;
    const flat = g.emit('ScatterElements', [zeros(g, [x.size], x.dtype), reshape(idx, [-1]), reshape(dy, [-1])], {
      axis: 0,
      reduction: 'add',
    })[0];
    return [reshape(flat, x.dims)];
  },
});
export function maxPool(x: T, kernel: number[], o: PoolOptions = {}): T {
  const nd = kernel.length;
  return x.graph.emit('MaxPool', [x], { kernel_shape: kernel, strides: o.strides ?? kernel, pads: o.pads ?? new Array(2 * nd).fill(0) })[0];
}

op('AveragePool', {
  shape: poolShape('AveragePool'),
  vjp: ({ inputs: [x], attrs }, dy) => {
    // A depthwise transposed convolution with a box kernel spreads each window's mean back;
    // with count_include_pad=0 each window divides by its own count, so divide dy first.
    const k = attrs.kernel_shape as number[];
    const s = attrs.strides as number[];
    const p = attrs.pads as number[];
    const C = x.shape[1] as number;
    const g = x.graph;
    const box = g.constant(tensorData('float32', [C, 1, ...k], new Float32Array(C * numel(k)).fill(1)), 'avgpool_box');
    const counts = g.constant(
      tensorData(
        'float32',
        [1, 1, ...dy.dims.slice(2)],
        windowCounts(x.dims.slice(2), dy.dims.slice(2), k, s, p, !!attrs.count_include_pad),
      ),
      'avgpool_counts',
    );
    const scaled = div(dy, counts);
    const nd = k.length;
    const outputPadding = x.dims
      .slice(2)
      .map((sz, i) => sz - (convTransposeOut(dy.dims[i + 2], k[i], s[i], p[i], p[i + nd], 1, 0) as number));
    return [convTranspose(scaled, box, { strides: s, pads: p, group: C, outputPadding })];
  },
});
export function averagePool(x: T, kernel: number[], o: PoolOptions & { countIncludePad?: boolean } = {}): T {
  const nd = kernel.length;
  return x.graph.emit('AveragePool', [x], {
    kernel_shape: kernel,
    strides: o.strides ?? kernel,
    pads: o.pads ?? new Array(2 * nd).fill(0),
    count_include_pad: o.countIncludePad ? 1 : 0,
  })[0];
}
/** How many input cells (optionally counting padding) each pooling window covers. */
function windowCounts(inSize: number[], outSize: number[], k: number[], s: number[], p: number[], includePad: boolean): Float32Array {
  const nd = k.length;
  const per = outSize.map((o, i) =>
    Array.from({ length: o }, (_, j) => {
      if (includePad) return k[i];
      const start = j * s[i] - p[i];
      return Math.min(start + k[i], inSize[i]) - Math.max(start, 0);
    }),
  );
  const out = new Float32Array(numel(outSize));
  if (nd === 1) per[0].forEach((c, j) => (out[j] = c));
  else for (let a = 0; a < outSize[0]; a++) for (let b = 0; b < outSize[1]; b++) out[a * outSize[1] + b] = per[0][a] * per[1][b];
  return out;
}

op('GlobalAveragePool', {
  shape: (ins) => [{ shape: [...ins[0].shape.slice(0, 2), ...ins[0].shape.slice(2).map(() => 1)], dtype: ins[0].dtype }],
  vjp: ({ inputs: [x] }, dy) => [expand(div(dy, numel(x.dims.slice(2))), x.dims)],
});
export const globalAveragePool = (x: T) => emit1('GlobalAveragePool', [x]);

op('Resize', {
  required: 1,
  shape: (ins, a) => [{ shape: [...ins[0].shape.slice(0, 2), ...(a._sizes as number[]).slice(2)], dtype: ins[0].dtype }],
  nonDiff: [1, 2, 3],
  vjp: ({ inputs: [x], attrs }, dy) => {
    // Resize is separable and linear in x: y = A_h · x · A_wᵀ per plane, so dx = A_hᵀ · dy · A_w.
    const g = x.graph;
    const [H, W] = x.dims.slice(2);
    const [OH, OW] = dy.dims.slice(2);
    const opts = attrs._resize as ResizeOptions;
    const Ah = g.constant(tensorData('float32', [OH, H], resizeMatrix(H, OH, opts)), 'resize_h');
    const Aw = g.constant(tensorData('float32', [OW, W], resizeMatrix(W, OW, opts)), 'resize_w');
    return [matmul(transposeLast(expand(Ah, [1, 1, OH, H])), matmul(dy, Aw)), null, null, null];
  },
});
/** Resizes the spatial axes of an NCHW tensor to [outH, outW] (nearest or linear, as ONNX). */
export function resize(x: T, outHW: number[], opts: ResizeOptions): T {
  const g = x.graph;
  const sizes = [...(x.shape.slice(0, 2) as number[]), ...outHW];
  const attrs: Attrs = {
    mode: opts.mode,
    coordinate_transformation_mode: opts.coordinateTransformationMode,
    _sizes: sizes,
    _resize: opts,
  };
  if (opts.mode === 'nearest') attrs.nearest_mode = opts.nearestMode ?? 'round_prefer_floor';
  return g.emit('Resize', [x, null, null, g.int64s(sizes)], attrs)[0];
}

// ---------------------------------------------------------------- normalisation layers

op('BatchNormalization', {
  shape: (ins, a) => {
    const x = ins[0];
    const c = { shape: [x.shape[1]], dtype: x.dtype };
    return a.training_mode ? [{ shape: x.shape, dtype: x.dtype }, c, c] : [{ shape: x.shape, dtype: x.dtype }];
  },
  nonDiff: [3, 4],
  vjp: ({ inputs: [x, gamma, , rmean, rvar], outputs, attrs }, dy) => {
    const eps = attrs.epsilon as number;
    const axes = [0, ...Array.from({ length: x.rank - 2 }, (_, i) => i + 2)];
    const chan = [1, x.shape[1] as number, ...Array(x.rank - 2).fill(1)];
    // Training mode normalises with the batch statistics (with momentum 0 ORT returns them as the
    // "running" outputs); eval mode with the running ones, which are constants here.
    const [mean, variance] = attrs.training_mode ? [outputs[1], outputs[2]] : [rmean, rvar];
    // Every pass over the full activation costs; work per channel where possible. With
    // σ⁻¹ = 1/√(var+ε) and S = Σ dy, P = Σ dy·x over the reduced axes:
    //   dβ = S,  dγ = Σ dy·x̂ = σ⁻¹(P − μS)
    //   train: dx = γσ⁻¹·(dy − S/n − x̂·dγ/n) = A·dy + B·x + C with per-channel
    //          A = γσ⁻¹, B = −γσ⁻²·dγ/n, C = −γσ⁻¹·S/n − B·μ
    //   eval:  dx = γσ⁻¹·dy
    const invStd = div(1, sqrt(add(variance, eps)));
    const A = mul(gamma, invStd);
    const dBeta = reduceSum(dy, axes);
    const dGamma = mul(invStd, sub(reduceSum(mul(dy, x), axes), mul(mean, dBeta)));
    let dx: T;
    if (attrs.training_mode) {
      const n = x.size / (x.shape[1] as number);
      const B = neg(div(mul(mul(A, invStd), dGamma), n));
      const C = sub(neg(div(mul(A, dBeta), n)), mul(B, mean));
      dx = add(add(mul(dy, reshape(A, chan)), mul(x, reshape(B, chan))), reshape(C, chan));
    } else dx = mul(dy, reshape(A, chan));
    return [dx, dGamma, dBeta, null, null];
  },
});
/**
 * BatchNormalization over axis 1. In training mode it returns the output and the batch mean and
 * (biased) variance; the caller folds those into running statistics.
 */
export function batchNorm(
  x: T,
  gamma: T,
  beta: T,
  runMean: T,
  runVar: T,
  o: {
    training: boolean;
    eps?: number;
    /**
     * Training mode as ORT's fused BatchNormalization kernel (fast on CPU) or composed from
     * reductions and elementwise ops: onnxruntime's WebGPU provider has no training-mode kernel.
     */
    fused?: boolean;
  },
): { y: T; mean?: T; var?: T } {
  const eps = o.eps ?? 1e-5;
  const g = x.graph;
  if (!o.training) return { y: g.emit('BatchNormalization', [x, gamma, beta, runMean, runVar], { epsilon: eps })[0] };
  if (o.fused === false) {
    const axes = [0, ...Array.from({ length: x.rank - 2 }, (_, i) => i + 2)];
    const chan = [1, x.dims[1], ...Array(x.rank - 2).fill(1)];
    const mean = reduceMean(x, axes, true);
    const centred = sub(x, mean);
    const variance = reduceMean(mul(centred, centred), axes, true);
    const y = add(mul(div(centred, sqrt(add(variance, eps))), reshape(gamma, chan)), reshape(beta, chan));
    return { y, mean: reshape(mean, [x.dims[1]]), var: reshape(variance, [x.dims[1]]) };
  }
  // ORT's kernel writes its running-stat outputs in place over the mean/var inputs, even when
  // those are fed graph inputs or constant-folded initialisers shared by several BN nodes; with
  // momentum 0 the inputs affect no output. So give each node private zeros computed from its own
  // running mean (nothing to fold, nothing to share) and never the real running statistics.
  const scratch = mul(runMean, 0);
  const [y, mean, variance] = g.emit('BatchNormalization', [x, gamma, beta, scratch, mul(runVar, 0)], {
    epsilon: eps,
    momentum: 0,
    training_mode: 1,
  });
  return { y, mean, var: variance };
}

op('LayerNormalization', {
  required: 2,
  shape: (ins, a) => {
    const x = ins[0];
    const ax = normAxis(a.axis as number, x.rank);
    const stat = x.shape.map((d, i) => (i < ax ? d : 1));
    return [
      { shape: x.shape, dtype: x.dtype },
      { shape: stat, dtype: x.dtype },
      { shape: stat, dtype: x.dtype },
    ];
  },
  vjp: ({ inputs: [x, gamma], optional: [, , beta], outputs: [, mean, invStd], attrs }, dy) => {
    const ax = normAxis(attrs.axis as number, x.rank);
    const axes = Array.from({ length: x.rank - ax }, (_, i) => i + ax);
    const xhat = mul(sub(x, mean), invStd);
    const dxhat = mul(dy, gamma);
    const dx = mul(invStd, sub(sub(dxhat, reduceMean(dxhat, axes, true)), mul(xhat, reduceMean(mul(dxhat, xhat), axes, true))));
    return [dx, unbroadcast(mul(dy, xhat), gamma.shape), beta ? unbroadcast(dy, beta.shape) : null];
  },
});
/** LayerNorm over the trailing axes from `axis` on. */
export function layerNorm(x: T, gamma: T, beta: T, o: { axis?: number; eps?: number } = {}): T {
  return x.graph.emit('LayerNormalization', [x, gamma, beta], { axis: o.axis ?? -1, epsilon: o.eps ?? 1e-5 })[0];
}

// ---------------------------------------------------------------- compositions (no rules needed)

/** x / max(‖x‖₂, eps) along an axis. */
export function l2normalize(x: T, axis = -1, eps = 1e-12): T {
  return div(x, maximum(reduceL2(x, [axis], true), eps));
}

export const square = (x: T) => mul(x, x);
