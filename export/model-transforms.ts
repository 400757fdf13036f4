/**
 * Rewrites of a written model (ModelMsg), so they apply to any ONNX file, not only sslkit's:
 * folding eval-mode BatchNormalization into the convolution before it, and storing float weights
 * in half precision.
 */
import { DataType, type ModelMsg, type NodeMsg, type TensorMsg } from '../core/onnx/onnx-proto.js';
import { toHalf } from './fp16.js';
import { readTensor } from '../core/onnx/tensor.js';

export function floatData(t: TensorMsg): Float32Array | null {
  if (t.data_type !== DataType.float32) return null;
  return readTensor(t).data as Float32Array;
}

export const f32Tensor = (name: string, dims: number[], data: Float32Array): TensorMsg => ({
  name,
  dims,
  data_type: DataType.float32,
  raw_data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
});

/** Drops initialisers that no node reads and no output names. */
export function pruneInitializers(model: ModelMsg): ModelMsg {
  const used = new Set<string>();
  for (const n of model.graph.node) for (const i of n.input) used.add(i);
  for (const o of model.graph.output) used.add(o.name);
  return { ...model, graph: { ...model.graph, initializer: model.graph.initializer.filter((t) => used.has(t.name)) } };
}

const attr = (n: NodeMsg, name: string) => n.attribute?.find((a) => a.name === name);

/**
 * Conv → BatchNormalization(eval) with constant weights becomes one Conv:
 * W' = W·s, b' = (b − μ)·s + β with s = γ/√(σ² + ε) per output channel. Returns the model and how
 * many BN nodes were folded.
 */
export function foldBatchNorm(model: ModelMsg): { model: ModelMsg; folded: number } {
  const inits = new Map(model.graph.initializer.map((t) => [t.name, t]));
  const producer = new Map<string, number>();
  const uses = new Map<string, number>();
  model.graph.node.forEach((n, i) => {
    for (const o of n.output) producer.set(o, i);
    for (const x of n.input) uses.set(x, (uses.get(x) ?? 0) + 1);
  });
  for (const o of model.graph.output) uses.set(o.name, (uses.get(o.name) ?? 0) + 1);
  const nodes: (NodeMsg | null)[] = model.graph.node.map((n) => ({ ...n }));
  const added: TensorMsg[] = [];
  let folded = 0;
  nodes.forEach((bn, bi) => {
    if (!bn || bn.op_type !== 'BatchNormalization' || bn.output.length !== 1 || Number(attr(bn, 'training_mode')?.i ?? 0) !== 0) return;
    const ci = producer.get(bn.input[0]);
    const conv = ci === undefined ? null : nodes[ci];
    if (!conv || conv.op_type !== 'Conv' || uses.get(conv.output[0]) !== 1) return;
    const [gamma, beta, mean, variance] = bn.input
      .slice(1)
      .map((n) => inits.get(n))
      .map((t) => (t ? floatData(t) : null));
    const w = inits.get(conv.input[1]);
    const wData = w ? floatData(w) : null;
    const bData = conv.input[2]
      ? inits.get(conv.input[2])
        ? floatData(inits.get(conv.input[2])!)
        : null
      : new Float32Array(w?.dims[0] ?? 0);
    if (!gamma || !beta || !mean || !variance || !w || !wData || !bData) return;
    const eps = attr(bn, 'epsilon')?.f ?? 1e-5;
    const M = w.dims[0];
    const per = wData.length / M;
    const w2 = new Float32Array(wData.length);
    const b2 = new Float32Array(M);
    for (let m = 0; m < M; m++) {
      const s = gamma[m] / Math.sqrt(variance[m] + eps);
      for (let k = 0; k < per; k++) w2[m * per + k] = wData[m * per + k] * s;
      b2[m] = (bData[m] - mean[m]) * s + beta[m];
    }
    const wName = `${conv.input[1]}_bnfold${bi}`;
    const bName = `${conv.input[1]}_bnfold${bi}_bias`;
    added.push(f32Tensor(wName, w.dims, w2), f32Tensor(bName, [M], b2));
    nodes[ci!] = { ...conv, input: [conv.input[0], wName, bName], output: [bn.output[0]] };
    nodes[bi] = null;
    folded++;
  });
  const out: ModelMsg = {
    ...model,
    graph: { ...model.graph, node: nodes.filter((n): n is NodeMsg => n !== null), initializer: [...model.graph.initializer, ...added] },
  };
  return { model: pruneInitializers(out), folded };
}

/**
 * Every float32 initialiser stored as float16 and cast back to float32 where it is read: half
 * the file size; computation stays in float32 (onnxruntime's CPU provider has few fp16 kernels).
 */
export function halfPrecisionWeights(model: ModelMsg): ModelMsg {
  const casts: NodeMsg[] = [];
  const initializer = model.graph.initializer.map((t) => {
    const data = floatData(t);
    if (!data) return t;
    const half = toHalf(data);
    const name = `${t.name}_fp16`;
    casts.push({
      op_type: 'Cast',
      name: `cast_${t.name}`,
      input: [name],
      output: [t.name],
      attribute: [{ name: 'to', type: 2, i: DataType.float32 }],
    });
    return { name, dims: t.dims, data_type: DataType.float16, raw_data: new Uint8Array(half.buffer) };
  });
  return { ...model, graph: { ...model.graph, node: [...casts, ...model.graph.node], initializer } };
}
