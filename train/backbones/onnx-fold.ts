/**
 * Constant folding for an imported ONNX graph (onnx-import.ts): the shape arithmetic that
 * torch.onnx writes for a dynamic batch (Shape → Gather → Unsqueeze → Concat → Reshape, the ViT's
 * ConstantOfShape/Equal/Where), computed in JS once the build's input shape is known, so the
 * engine's graph holds plain constants there.
 */
import { UserError } from '../../core/errors.js';
import type { TensorValues } from '../../core/onnx/tensor.js';

type Fold = (ins: (TensorValues | null)[], a: Record<string, unknown>, where: string) => TensorValues;
const fromNumbers = (dtype: TensorValues['dtype'], dims: number[], v: ArrayLike<number>): TensorValues => ({
  dtype,
  dims,
  data: dtype === 'float32' ? Float32Array.from(v) : Float64Array.from(v),
});

function elementwise(f: (x: number, y: number) => number, intDiv = false): Fold {
  return ([x, y], _a, where) => {
    const [p, q] = [x!, y!];
    const n = Math.max(p.data.length, q.data.length);
    if (p.data.length !== n && p.data.length !== 1) throw new UserError(`${where}: cannot fold shapes [${p.dims}] and [${q.dims}]`);
    if (q.data.length !== n && q.data.length !== 1) throw new UserError(`${where}: cannot fold shapes [${p.dims}] and [${q.dims}]`);
    const dims = p.data.length >= q.data.length ? p.dims : q.dims;
    const isInt = p.dtype !== 'float32';
    return fromNumbers(
      p.dtype,
      dims,
      Array.from({ length: n }, (_, i) => {
        const v = f(p.data[p.data.length === 1 ? 0 : i], q.data[q.data.length === 1 ? 0 : i]);
        return isInt && intDiv ? Math.trunc(v) : v;
      }),
    );
  };
}

export const FOLD: Record<string, Fold> = {
  Identity: ([x]) => x!,
  Constant: (_ins, a, where) => {
    if (a.value) return a.value as TensorValues;
    if (a.value_float !== undefined) return fromNumbers('float32', [], [a.value_float as number]);
    if (a.value_floats) return fromNumbers('float32', [(a.value_floats as number[]).length], a.value_floats as number[]);
    if (a.value_int !== undefined) return fromNumbers('int64', [], [a.value_int as number]);
    if (a.value_ints) return fromNumbers('int64', [(a.value_ints as number[]).length], a.value_ints as number[]);
    throw new UserError(`${where}: Constant without a value sslkit reads`);
  },
  Cast: ([x], a) => fromNumbers(a.to === 1 || a.to === 11 ? 'float32' : 'int64', x!.dims, x!.data),
  Add: elementwise((p, q) => p + q),
  Sub: elementwise((p, q) => p - q),
  Mul: elementwise((p, q) => p * q),
  Div: elementwise((p, q) => p / q, true),
  Sqrt: ([x]) => fromNumbers(x!.dtype, x!.dims, Array.from(x!.data, Math.sqrt)),
  Gather: ([x, idx], a) => {
    const ax = (a.axis as number) ?? 0;
    const d = x!.dims;
    const axis = ax < 0 ? ax + d.length : ax;
    const outer = d.slice(0, axis).reduce((p, q) => p * q, 1);
    const inner = d.slice(axis + 1).reduce((p, q) => p * q, 1);
    const out: number[] = [];
    for (let b = 0; b < outer; b++)
      for (const i0 of idx!.data) {
        const i = i0 < 0 ? i0 + d[axis] : i0;
        for (let k = 0; k < inner; k++) out.push(x!.data[(b * d[axis] + i) * inner + k]);
      }
    return fromNumbers(x!.dtype, [...d.slice(0, axis), ...idx!.dims, ...d.slice(axis + 1)], out);
  },
  Unsqueeze: ([x, axesIn], a) => {
    const axes = (a.axes as number[]) ?? Array.from(axesIn!.data);
    const dims = x!.dims.slice();
    const r = dims.length + axes.length;
    for (const ax of axes.map((v) => (v < 0 ? v + r : v)).sort((p, q) => p - q)) dims.splice(ax, 0, 1);
    return { ...x!, dims };
  },
  Squeeze: ([x, axesIn], a) => {
    const axes = (
      (a.axes as number[]) ?? (axesIn ? Array.from(axesIn.data) : x!.dims.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0))
    ).map((v) => (v < 0 ? v + x!.dims.length : v));
    return { ...x!, dims: x!.dims.filter((_, i) => !axes.includes(i)) };
  },
  Concat: (ins) => {
    const parts = ins.filter((t): t is TensorValues => !!t);
    const data = parts.flatMap((t) => Array.from(t.data));
    return fromNumbers(parts[0].dtype, [data.length], data);
  },
  Slice: ([x, st, en, ax, sp], _a, where) => {
    if (x!.dims.length !== 1) throw new UserError(`${where}: folding a Slice of a [${x!.dims}] constant is not supported`);
    if (ax && ax.data[0] !== 0 && ax.data[0] !== -1) throw new UserError(`${where}: bad Slice axis`);
    const n = x!.data.length;
    const step = sp ? sp.data[0] : 1;
    const norm = (v: number, hi: number) => Math.min(Math.max(v < 0 ? v + n : v, step > 0 ? 0 : -1), hi);
    const s = norm(st!.data[0], step > 0 ? n : n - 1);
    const e = norm(en!.data[0], step > 0 ? n : n - 1);
    const out: number[] = [];
    for (let i = s; step > 0 ? i < e : i > e; i += step) out.push(x!.data[i]);
    return fromNumbers(x!.dtype, [out.length], out);
  },
  ConstantOfShape: ([shape], a) => {
    const v = (a.value as TensorValues | undefined) ?? fromNumbers('float32', [1], [0]);
    const dims = Array.from(shape!.data);
    return fromNumbers(v.dtype, dims, new Array(dims.reduce((p, q) => p * q, 1)).fill(v.data[0]));
  },
  Reshape: ([x, shape]) => {
    const want = Array.from(shape!.data).map((d, i) => (d === 0 ? x!.dims[i] : d));
    const known = want.filter((d) => d !== -1).reduce((p, q) => p * q, 1);
    return { ...x!, dims: want.map((d) => (d === -1 ? x!.data.length / known : d)) };
  },
  Equal: elementwise((p, q) => Number(p === q)),
  Where: ([c, x, y], _a, where) => {
    const n = Math.max(c!.data.length, x!.data.length, y!.data.length);
    for (const t of [c!, x!, y!])
      if (t.data.length !== n && t.data.length !== 1) throw new UserError(`${where}: cannot fold shapes that broadcast`);
    const at = (t: TensorValues, i: number) => t.data[t.data.length === 1 ? 0 : i];
    const dims = [c!, x!, y!].find((t) => t.data.length === n)!.dims;
    return fromNumbers(
      x!.dtype,
      dims,
      Array.from({ length: n }, (_, i) => (at(c!, i) ? at(x!, i) : at(y!, i))),
    );
  },
};
