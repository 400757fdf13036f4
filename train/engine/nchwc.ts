/**
 * onnxruntime's blocked (NCHWc) convolution for weights that train. Its graph optimiser rewrites
 * only Conv nodes whose weight is a constant initialiser, so a training graph (weights fed every
 * step) never gets MLAS's NCHWc kernels. `blockConvs` makes the rewrite itself: each chosen Conv
 * becomes ReorderInput → Conv of the `com.microsoft.nchwc` domain → ReorderOutput, with the weight
 * re-laid inside the graph from OIHW to MLAS's OIHWBiBo (what MlasReorderFilterOIHWBiBo does
 * to a constant: block b of output channels × block of input channels × kernel × Bi × Bo).
 *
 * The block size is MLAS's (8 with AVX2, 16 with AVX-512; NCHWc is off elsewhere). No API tells
 * it, so `nchwcBlockSize` finds it by experiment: the block whose result equals a plain Conv's.
 * bench/nchwc-probe.ts measures the kernels per shape; the plain path stays the default and the
 * reference (tests/train/engine/nchwc.test.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { cacheDir, writeFileAtomic } from '../../core/fs.js';
import { medianMs } from './profile.js';
import { encodeModel, type AttributeMsg, type ModelMsg, type NodeMsg, type TensorMsg } from '../../core/onnx/onnx-proto.js';

export const NCHWC_DOMAIN = 'com.microsoft.nchwc';

const ints = (name: string, v: number[]): AttributeMsg => ({ name, type: 7, ints: v });
const int64s = (name: string, v: number[]): TensorMsg => ({ name, dims: [v.length], data_type: 7, int64_data: v });
const attr = (n: NodeMsg, name: string) => n.attribute?.find((a) => a.name === name);

/** Which Conv nodes to rewrite, by `convKey` (their input and weight dims and attributes). */
export type ConvPick = (key: string) => boolean;

/** A convolution's identity for measuring and caching: input dims, weight dims, strides, pads, dilations. */
function convKey(n: NodeMsg, x: number[], w: number[]): string {
  const list = (name: string) => (attr(n, name)?.ints ?? []).map(Number).join(',');
  return `x${x.join('x')}_w${w.join('x')}_s${list('strides')}_p${list('pads')}_d${list('dilations')}${n.input[2] ? '_b' : ''}`;
}

/** The Conv nodes `blockConvs` could rewrite with this block size, by key, each with a one-node model of it. */
export function blockableConvs(model: ModelMsg, dims: Map<string, number[]>, block: number): Map<string, ModelMsg> {
  const out = new Map<string, ModelMsg>();
  for (const n of model.graph.node) {
    const c = blockable(n, dims, block);
    if (!c || out.has(c.key)) continue;
    const inputs = n.input.filter(Boolean).map((name) => valueInfo(name, dims.get(name) ?? []));
    const y = dims.get(n.output[0]);
    if (!y || inputs.some((v) => !v.type.tensor_type.shape.dim.length)) continue;
    out.set(c.key, {
      ir_version: 8,
      opset_import: [{ domain: '', version: 17 }],
      graph: { name: 'conv', node: [n], initializer: [], input: inputs, output: [valueInfo(n.output[0], y)] },
    });
  }
  return out;
}

function blockable(n: NodeMsg, dims: Map<string, number[]>, block: number): { key: string; w: number[] } | null {
  const w = dims.get(n.input[1] ?? '');
  const x = dims.get(n.input[0] ?? '');
  if (n.op_type !== 'Conv' || (n.domain ?? '') !== '' || !w || !x || w.length !== 4 || Number(attr(n, 'group')?.i ?? 1) !== 1) return null;
  if (w[0] % block || w[1] % block) return null;
  return { key: convKey(n, x, w), w };
}

const valueInfo = (name: string, d: number[]) => ({
  name,
  type: { tensor_type: { elem_type: 1, shape: { dim: d.map((v) => ({ dim_value: v })) } } },
});

/**
 * The model with every ungrouped 2-D Conv whose input and output channels are multiples of
 * `block` (and that `pick` accepts, by `convKey`) in blocked form. `dims` gives each tensor's shape by name.
 */
export function blockConvs(model: ModelMsg, dims: Map<string, number[]>, block: number, pick: ConvPick = () => true): ModelMsg {
  const node: NodeMsg[] = [];
  const initializer: TensorMsg[] = [...model.graph.initializer];
  let rewritten = 0;
  for (const n of model.graph.node) {
    const c = blockable(n, dims, block);
    if (!c || !pick(c.key)) {
      node.push(n);
      continue;
    }
    const [O, I, kh, kw] = c.w;
    const id = `nchwc${rewritten++}`;
    const blocked6 = `${id}_w6shape`;
    const oihw = `${id}_wshape`;
    initializer.push(int64s(blocked6, [O / block, block, I / block, block, kh, kw]), int64s(oihw, [O, I, kh, kw]));
    node.push(
      { op_type: 'ReorderInput', domain: NCHWC_DOMAIN, name: `${id}_in`, input: [n.input[0]], output: [`${id}_x`] },
      { op_type: 'Reshape', name: `${id}_w6`, input: [n.input[1], blocked6], output: [`${id}_w6`] },
      // [O/B, Bo, I/B, Bi, kh, kw] → [O/B, I/B, kh, kw, Bi, Bo]
      {
        op_type: 'Transpose',
        name: `${id}_wt`,
        input: [`${id}_w6`],
        output: [`${id}_wt`],
        attribute: [ints('perm', [0, 2, 4, 5, 3, 1])],
      },
      { op_type: 'Reshape', name: `${id}_w`, input: [`${id}_wt`, oihw], output: [`${id}_w`] },
      {
        op_type: 'Conv',
        domain: NCHWC_DOMAIN,
        name: `${id}_conv`,
        input: [`${id}_x`, `${id}_w`, ...n.input.slice(2)],
        output: [`${id}_y`],
        attribute: n.attribute,
      },
      {
        op_type: 'ReorderOutput',
        domain: NCHWC_DOMAIN,
        name: `${id}_out`,
        input: [`${id}_y`],
        output: n.output,
        attribute: [{ name: 'channels', type: 2, i: O }],
      },
    );
  }
  if (!rewritten) return model;
  return {
    ...model,
    opset_import: [...model.opset_import.filter((o) => o.domain !== NCHWC_DOMAIN), { domain: NCHWC_DOMAIN, version: 1 }],
    graph: { ...model.graph, node, initializer },
  };
}

let blockSize: Promise<number | null> | undefined;

/** MLAS's NCHWc block size on this processor, found once by experiment; null where the kernels are not there. */
export function nchwcBlockSize(): Promise<number | null> {
  return (blockSize ??= findBlockSize());
}

async function findBlockSize(): Promise<number | null> {
  const C = 64;
  const feeds = {
    X: new ort.Tensor(
      'float32',
      Float32Array.from({ length: C * 16 }, (_, i) => Math.sin(i * 0.7)),
      [1, C, 4, 4],
    ),
    W: new ort.Tensor(
      'float32',
      Float32Array.from({ length: C * C * 9 }, (_, i) => Math.cos(i * 0.3)),
      [C, C, 3, 3],
    ),
  };
  const model: ModelMsg = {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'probe',
      node: [{ op_type: 'Conv', input: ['X', 'W'], output: ['Y'], attribute: [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])] }],
      initializer: [],
      input: [valueInfo('X', [1, C, 4, 4]), valueInfo('W', [C, C, 3, 3])],
      output: [valueInfo('Y', [1, C, 4, 4])],
    },
  };
  const dims = new Map([
    ['X', [1, C, 4, 4]],
    ['W', [C, C, 3, 3]],
  ]);
  const run = async (m: ModelMsg) => {
    const s = await ort.InferenceSession.create(encodeModel(m), { intraOpNumThreads: 1 });
    try {
      return (await s.run(feeds)).Y.data as Float32Array;
    } finally {
      await s.release();
    }
  };
  const ref = await run(model);
  for (const b of [8, 16, 4, 32]) {
    let y: Float32Array;
    try {
      y = await run(blockConvs(model, dims, b));
    } catch {
      return null; // no NCHWc kernels in this build or on this processor
    }
    if (y.every((v, i) => Math.abs(v - ref[i]) <= 1e-4 * (1 + Math.abs(ref[i])))) return b;
  }
  return null;
}

const cacheFile = () => path.join(cacheDir(), 'nchwc-plans.json');

/** Median time of a model's run on deterministic data, in ms. */
async function timeModel(m: ModelMsg, threads: number, runs = 5): Promise<number> {
  const s = await ort.InferenceSession.create(encodeModel(m), { intraOpNumThreads: threads });
  try {
    const feeds: Record<string, ort.Tensor> = {};
    for (const v of m.graph.input) {
      const d = (v.type?.tensor_type?.shape?.dim ?? []).map((x) => Number(x.dim_value));
      const n = d.reduce((a, b) => a * b, 1);
      feeds[v.name] = new ort.Tensor(
        'float32',
        Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37)),
        d,
      );
    }
    return await medianMs(() => s.run(feeds), runs);
  } finally {
    await s.release();
  }
}

/**
 * Chooses, per convolution of `model`, the plain or the blocked kernel by timing both on this
 * machine (the blocked one wins on small maps and loses on large ones, bench/nchwc-probe.ts);
 * cached in the user cache by shape, thread count and block size, so each shape is measured once.
 */
export async function tuneNchwc(
  model: ModelMsg,
  dims: Map<string, number[]>,
  block: number,
  o: { threads: number; log?: (l: string) => void },
): Promise<ConvPick> {
  let cache: Record<string, boolean> = {};
  try {
    cache = JSON.parse(fs.readFileSync(cacheFile(), 'utf8')) as Record<string, boolean>;
  } catch {
    // none yet
  }
  const chosen = new Map<string, boolean>();
  let measured = 0;
  for (const [key, one] of blockableConvs(model, dims, block)) {
    const ck = `${key}_t${o.threads}_b${block}`;
    if (cache[ck] === undefined) {
      // One at a time: concurrent runs would measure each other.
      cache[ck] = (await timeModel(blockConvs(one, dims, block), o.threads)) < (await timeModel(one, o.threads));
      measured++;
    }
    chosen.set(key, cache[ck]);
  }
  if (measured) {
    o.log?.(
      `convolutions: measured ${measured} shape(s) plain against blocked (NCHWc), ${[...chosen.values()].filter(Boolean).length} of ${chosen.size} blocked; cached in ${cacheFile()}`,
    );
    try {
      writeFileAtomic(cacheFile(), [JSON.stringify(cache, null, 1)]);
    } catch {
      // an unwritable cache only means measuring again next time
    }
  }
  return (key) => chosen.get(key) === true;
}
