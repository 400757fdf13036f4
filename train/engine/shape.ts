/** Shape arithmetic shared by the op table's shape and gradient rules. */
import type { Dim, Shape } from './graph.js';

/** NumPy broadcasting; symbolic dimensions broadcast with 1 and with themselves. */
export function broadcastShapes(op: string, ...shapes: Shape[]): Shape {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const k = s.length - rank + i;
      if (k < 0) continue;
      const e = s[k];
      if (e === 1) continue;
      if (d === 1) d = e;
      else if (d !== e)
        throw new RangeError(`${op}: shapes ${shapes.map((x) => `[${x}]`).join(' and ')} do not broadcast (axis ${i}: ${d} vs ${e})`);
    }
    out.push(d);
  }
  return out;
}

export const normAxis = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export const numel = (s: number[]): number => s.reduce((a, b) => a * b, 1);

/** Output size of a convolution or pooling window along one axis (floor mode). */
export function convOut(op: string, size: Dim, k: number, stride: number, padBegin: number, padEnd: number, dilation: number): Dim {
  if (typeof size !== 'number') return size;
  const out = Math.floor((size + padBegin + padEnd - ((k - 1) * dilation + 1)) / stride) + 1;
  if (out < 1)
    throw new RangeError(`${op}: window ${k} (dilation ${dilation}) does not fit input size ${size} with pads ${padBegin},${padEnd}`);
  return out;
}

/** Output size of a transposed convolution along one axis. */
export function convTransposeOut(
  size: Dim,
  k: number,
  stride: number,
  padBegin: number,
  padEnd: number,
  dilation: number,
  outputPadding: number,
): Dim {
  if (typeof size !== 'number') return size;
  return stride * (size - 1) + outputPadding + ((k - 1) * dilation + 1) - padBegin - padEnd;
}
