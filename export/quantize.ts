/**
 * Static int8 quantization of any ONNX image encoder, in QDQ form: the model stays a standard
 * ONNX graph in which QuantizeLinear/DequantizeLinear pairs mark what is 8-bit, and onnxruntime's
 * graph optimiser turns each `DQ → Conv/Gemm/MatMul → Q` group into an integer kernel
 * (QLinearConv, QGemm, …). What it writes, as onnxruntime's own `quantize_static` does:
 * - weights: int8, symmetric, per output channel for Conv (per tensor for Gemm/MatMul), stored as
 *   int8 initialisers with their scales;
 * - biases: int32 at scale = input scale × weight scale (zero point 0), as the integer kernels need;
 * - activations (the input and output of every quantized op): uint8, asymmetric, with the range
 *   measured on real images (calibration): min-max, or a percentile of the values (default: the
 *   measured choice, see `DEFAULT_CALIBRATION`).
 * Ops without constant weights, graph outputs and everything else stay float; `keptFloat` says
 * which quantizable nodes were left and why.
 */
import ort from 'onnxruntime-node';
import { DataType, encodeModel, type ModelMsg, type NodeMsg, type TensorMsg } from '../core/onnx/onnx-proto.js';
import { readTensor } from '../core/onnx/tensor.js';
import { UserError } from '../core/errors.js';
import { f32Tensor, pruneInitializers } from './model-transforms.js';

export type CalibrationMethod = 'minmax' | 'percentile';
/** Chosen by measurement (docs/benchmarks.md, "int8"): the kNN drop of each method on the convnet and ResNet-18. */
export const DEFAULT_CALIBRATION: CalibrationMethod = 'percentile';
/** The share of each activation's values inside its range with `percentile` calibration. */
export const DEFAULT_PERCENTILE = 99.999;

// ---- The arithmetic (ONNX QuantizeLinear / DequantizeLinear semantics) ----

/** Round half to even, as QuantizeLinear does. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** QuantizeLinear: saturate(round(x / scale) + zeroPoint) into [lo, hi]. */
export function quantizeValue(x: number, scale: number, zeroPoint: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, roundHalfEven(x / scale) + zeroPoint));
}

/** uint8 scale and zero point for values in [min, max] (the range always holds 0, so 0 is exact). */
export function activationParams(min: number, max: number): { scale: number; zeroPoint: number } {
  const lo = Math.min(0, min);
  const hi = Math.max(0, max);
  if (hi - lo < 1e-12) return { scale: 1, zeroPoint: 0 };
  const scale = Math.fround((hi - lo) / 255);
  return { scale, zeroPoint: Math.min(255, Math.max(0, roundHalfEven(-lo / scale))) };
}

/**
 * Symmetric int8 weights per channel: channel c of `w` (its `per` values at c·per when `axis` is
 * 0, else every `channels`-th value from c) gets scale max|w_c| / 127 and values in [-127, 127].
 */
export function quantizeWeights(w: Float32Array, channels: number, axis: 0 | 1): { q: Int8Array; scales: Float32Array } {
  const per = w.length / channels;
  const at = (c: number, k: number) => (axis === 0 ? c * per + k : k * channels + c);
  const scales = new Float32Array(channels);
  const q = new Int8Array(w.length);
  for (let c = 0; c < channels; c++) {
    let m = 0;
    for (let k = 0; k < per; k++) m = Math.max(m, Math.abs(w[at(c, k)]));
    const s = m > 0 ? Math.fround(m / 127) : 1;
    scales[c] = s;
    for (let k = 0; k < per; k++) q[at(c, k)] = quantizeValue(w[at(c, k)], s, 0, -127, 127);
  }
  return { q, scales };
}

// ---- Calibration ----

interface Range {
  min: number;
  max: number;
}

/** The values' [min, max] with `percentile` of them inside (a histogram of 4096 bins over the full range). */
function percentileRange(values: Float32Array[], full: Range, percentile: number): Range {
  const bins = 4096;
  const width = (full.max - full.min) / bins || 1;
  const hist = new Float64Array(bins);
  let total = 0;
  for (const v of values)
    for (let i = 0; i < v.length; i++) {
      hist[Math.min(bins - 1, Math.floor((v[i] - full.min) / width))]++;
      total++;
    }
  const cut = (total * (100 - percentile)) / 200; // half the outside share at each end
  let lo = 0;
  for (let acc = 0; lo < bins - 1 && acc + hist[lo] <= cut; lo++) acc += hist[lo];
  let hi = bins - 1;
  for (let acc = 0; hi > lo && acc + hist[hi] <= cut; hi--) acc += hist[hi];
  return { min: full.min + lo * width, max: full.min + (hi + 1) * width };
}

/** Runs the float model on the calibration images with every tensor in `names` as an extra output, and measures each one's range. */
async function calibrate(model: ModelMsg, names: string[], o: QuantizeOptions): Promise<Map<string, Range>> {
  const extra = names.filter((n) => !model.graph.output.some((t) => t.name === n));
  const probe: ModelMsg = {
    ...model,
    graph: {
      ...model.graph,
      output: [...model.graph.output, ...extra.map((name) => ({ name, type: { tensor_type: { elem_type: DataType.float32 } } }))],
    },
  };
  const session = await ort.InferenceSession.create(encodeModel(probe), { graphOptimizationLevel: 'disabled' });
  const [c, h, w] = o.shape;
  const per = c * h * w;
  const batch = o.batch ?? 16;
  const full = new Map<string, Range>(names.map((n) => [n, { min: Infinity, max: -Infinity }]));
  // Values are kept (subsampled to at most ~2 M per tensor) for the percentile.
  const kept = new Map<string, Float32Array[]>(names.map((n) => [n, []]));
  const method = o.method ?? DEFAULT_CALIBRATION;
  try {
    for (let s = 0; s < o.n; s += batch) {
      const m = Math.min(batch, o.n - s);
      const out = await session.run(
        { [o.inputName]: new ort.Tensor('float32', o.images.subarray(s * per, (s + m) * per), [m, c, h, w]) },
        names,
      );
      for (const name of names) {
        const v = out[name].data as Float32Array;
        const r = full.get(name)!;
        for (let i = 0; i < v.length; i++) {
          if (v[i] < r.min) r.min = v[i];
          if (v[i] > r.max) r.max = v[i];
        }
        if (method === 'percentile') {
          const step = Math.max(1, Math.ceil((v.length * o.n) / m / 2_000_000));
          kept
            .get(name)!
            .push(step === 1 ? Float32Array.from(v) : Float32Array.from({ length: Math.floor(v.length / step) }, (_, i) => v[i * step]));
        }
      }
    }
  } finally {
    await session.release();
  }
  if (method === 'minmax') return full;
  return new Map(names.map((n) => [n, percentileRange(kept.get(n)!, full.get(n)!, o.percentile ?? DEFAULT_PERCENTILE)]));
}

// ---- The rewrite ----

export interface QuantizeOptions {
  /** Calibration images, preprocessed as the model wants them: n × [C, H, W]. */
  images: Float32Array;
  n: number;
  shape: [number, number, number];
  inputName: string;
  method?: CalibrationMethod;
  percentile?: number;
  batch?: number;
}

export interface QuantizeReport {
  /** Quantized nodes by op type. */
  quantized: Record<string, number>;
  /** Quantizable nodes left in float, and why. */
  keptFloat: { node: string; op: string; why: string }[];
  /** Activation tensors given a uint8 range. */
  activations: number;
  method: CalibrationMethod;
  percentile?: number;
}

const QUANTIZABLE = new Set(['Conv', 'Gemm', 'MatMul']);
const attr = (n: NodeMsg, name: string) => n.attribute?.find((a) => a.name === name);

/** How a quantizable node's weight is scaled (per output channel for Conv, one scale for Gemm/MatMul), or why it cannot be. */
function weightPlan(n: NodeMsg, w: TensorMsg | undefined): { channels: number; perChannel: boolean } | string {
  if (!w) return 'its weights are not a constant initialiser';
  if (w.data_type !== DataType.float32) return `its weights are ${w.data_type === DataType.float16 ? 'float16' : 'not float32'}`;
  if (n.op_type === 'Conv') {
    if (w.dims.length < 3) return 'a Conv weight of fewer than 3 dimensions';
    return { channels: w.dims[0], perChannel: true };
  }
  if (w.dims.length !== 2) return `a ${n.op_type} weight that is not a matrix`;
  // Gemm/MatMul: onnxruntime's integer GEMM kernels take one scale for the whole weight.
  return { channels: 1, perChannel: false };
}

/**
 * The model in QDQ int8 form, calibrated on `o.images`. Throws a UserError when nothing in it can
 * be quantized (no Conv, Gemm or MatMul with constant weights) or its opset is below 13.
 */
export async function quantizeModel(model: ModelMsg, o: QuantizeOptions): Promise<{ model: ModelMsg; report: QuantizeReport }> {
  const opset = model.opset_import.find((x) => !x.domain || x.domain === 'ai.onnx')?.version ?? 0;
  if (opset < 13)
    throw new UserError(
      `the model is opset ${opset}: per-channel int8 needs opset 13 or later (re-export it with a newer opset, e.g. torch.onnx.export(..., opset_version=17))`,
    );
  if (model.graph.node.some((n) => n.op_type === 'QuantizeLinear' || n.op_type === 'DequantizeLinear' || n.op_type.startsWith('QLinear')))
    throw new UserError('the model is already quantized (it has QuantizeLinear/DequantizeLinear or QLinear nodes)');
  const inits = new Map(model.graph.initializer.map((t) => [t.name, t]));
  const outputs = new Set(model.graph.output.map((t) => t.name));
  const report: QuantizeReport = {
    quantized: {},
    keptFloat: [],
    activations: 0,
    method: o.method ?? DEFAULT_CALIBRATION,
    ...((o.method ?? DEFAULT_CALIBRATION) === 'percentile' ? { percentile: o.percentile ?? DEFAULT_PERCENTILE } : {}),
  };
  const plans = new Map<NodeMsg, { channels: number; perChannel: boolean }>();
  for (const n of model.graph.node) {
    if (!QUANTIZABLE.has(n.op_type) || (n.domain && n.domain !== 'ai.onnx')) continue;
    const plan = inits.has(n.input[0]) ? 'its input is a constant, not an activation' : weightPlan(n, inits.get(n.input[1]));
    if (typeof plan === 'string') report.keptFloat.push({ node: n.name || n.output[0], op: n.op_type, why: plan });
    else if (n.op_type === 'Gemm' && Number(attr(n, 'transA')?.i ?? 0) === 1)
      report.keptFloat.push({ node: n.name || n.output[0], op: n.op_type, why: 'Gemm with transA' });
    else plans.set(n, plan);
  }
  if (!plans.size)
    throw new UserError(
      `nothing to quantize: the model has no Conv, Gemm or MatMul with constant float weights${report.keptFloat.length ? ` (${report.keptFloat.map((k) => `${k.node}: ${k.why}`).join('; ')})` : ''}`,
    );
  // Activations: each quantized op's input and (unless it is a graph output) its output.
  const acts = new Set<string>();
  for (const n of plans.keys()) {
    acts.add(n.input[0]);
    if (!outputs.has(n.output[0])) acts.add(n.output[0]);
  }
  const ranges = await calibrate(model, [...acts], o);
  report.activations = acts.size;

  const added: TensorMsg[] = [];
  const head: NodeMsg[] = [];
  const scaleOf = new Map<string, number>();
  const qdq = (t: string): NodeMsg[] => {
    const r = ranges.get(t)!;
    const { scale, zeroPoint } = activationParams(r.min, r.max);
    scaleOf.set(t, scale);
    added.push(f32Tensor(`${t}_scale`, [], Float32Array.of(scale)), {
      name: `${t}_zero_point`,
      dims: [],
      data_type: DataType.uint8,
      raw_data: Uint8Array.of(zeroPoint),
    });
    return [
      { op_type: 'QuantizeLinear', name: `${t}_QuantizeLinear`, input: [t, `${t}_scale`, `${t}_zero_point`], output: [`${t}_quantized`] },
      {
        op_type: 'DequantizeLinear',
        name: `${t}_DequantizeLinear`,
        input: [`${t}_quantized`, `${t}_scale`, `${t}_zero_point`],
        output: [`${t}_dequantized`],
      },
    ];
  };
  const graphInputs = new Set(model.graph.input.map((t) => t.name));
  for (const t of acts) if (graphInputs.has(t)) head.push(...qdq(t));
  const body: NodeMsg[] = [];
  for (const n of model.graph.node) {
    const node: NodeMsg = { ...n, input: n.input.map((x) => (acts.has(x) ? `${x}_dequantized` : x)) };
    const plan = plans.get(n);
    if (plan) {
      const id = n.name || n.output[0];
      const w = readTensor(inits.get(n.input[1])!).data as Float32Array;
      // Weights are [out, …] (Conv, Gemm): channel c is the c-th block; per tensor, one block.
      const { q, scales } = quantizeWeights(w, plan.channels, 0);
      const wName = `${id}_weight`;
      added.push(
        { name: `${wName}_quantized`, dims: inits.get(n.input[1])!.dims, data_type: DataType.int8, raw_data: new Uint8Array(q.buffer) },
        f32Tensor(`${wName}_scale`, plan.perChannel ? [scales.length] : [], scales),
        {
          name: `${wName}_zero_point`,
          dims: plan.perChannel ? [scales.length] : [],
          data_type: DataType.int8,
          raw_data: new Uint8Array(scales.length),
        },
      );
      head.push({
        op_type: 'DequantizeLinear',
        name: `${wName}_DequantizeLinear`,
        input: [`${wName}_quantized`, `${wName}_scale`, `${wName}_zero_point`],
        output: [`${wName}_dequantized`],
        attribute: plan.perChannel ? [{ name: 'axis', type: 2, i: 0 }] : [],
      });
      node.input[1] = `${wName}_dequantized`;
      const bias = n.input[2] ? inits.get(n.input[2]) : undefined;
      if (bias && bias.data_type === DataType.float32 && (n.op_type === 'Conv' || n.op_type === 'Gemm')) {
        // int32 at scale s_input · s_weight[c]: what QLinearConv / QGemm add into their int32 sums.
        const b = readTensor(bias).data as Float32Array;
        // Set when the input's QuantizeLinear was written: before this node, as the graph is in topological order.
        const sIn = scaleOf.get(n.input[0])!;
        const bScales = Float32Array.from(b, (_, c) => Math.fround(sIn * scales[plan.perChannel ? c : 0]));
        if (b.length === bScales.length && bias.dims.length === 1) {
          const bq = Int32Array.from(b, (v, c) => quantizeValue(v, bScales[c], 0, -(2 ** 31), 2 ** 31 - 1));
          const bName = `${id}_bias`;
          added.push(
            { name: `${bName}_quantized`, dims: bias.dims, data_type: DataType.int32, raw_data: new Uint8Array(bq.buffer) },
            f32Tensor(`${bName}_scale`, [bScales.length], bScales),
            {
              name: `${bName}_zero_point`,
              dims: [bScales.length],
              data_type: DataType.int32,
              raw_data: new Uint8Array(4 * bScales.length),
            },
          );
          head.push({
            op_type: 'DequantizeLinear',
            name: `${bName}_DequantizeLinear`,
            input: [`${bName}_quantized`, `${bName}_scale`, `${bName}_zero_point`],
            output: [`${bName}_dequantized`],
            attribute: [{ name: 'axis', type: 2, i: 0 }],
          });
          node.input[2] = `${bName}_dequantized`;
        }
      }
      report.quantized[n.op_type] = (report.quantized[n.op_type] ?? 0) + 1;
    }
    body.push(node);
    for (const out of n.output) if (acts.has(out)) body.push(...qdq(out));
  }
  // Graph outputs stay the float tensors their nodes write; a graph output that is also a quantized
  // activation keeps its float producer and its readers read the dequantized copy.
  const quantized: ModelMsg = {
    ...model,
    graph: { ...model.graph, node: [...head, ...body], initializer: [...model.graph.initializer, ...added] },
  };
  return { model: pruneInitializers(quantized), report };
}
