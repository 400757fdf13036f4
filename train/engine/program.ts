/**
 * A built graph compiled into an onnxruntime session: feed named arrays, get named arrays back.
 * Build a step graph once per shape and run it many times (session creation costs 50-100 ms and
 * the first run grows the memory arena).
 */
import ort from 'onnxruntime-node';
import { encodeModel, type DType, type ModelMsg } from '../../core/onnx/onnx-proto.js';
import { createSession, type SessionOptions } from '../../core/runtime/session.js';
import type { Graph, Tensor } from './graph.js';
import { blockConvs, tuneNchwc } from './nchwc.js';

export type HostArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
export type Feeds = Record<string, HostArray | number>;

const ORT_TYPE: Partial<Record<DType, ort.Tensor.Type>> = {
  float32: 'float32',
  float64: 'float64',
  int64: 'int64',
  int32: 'int32',
  bool: 'bool',
  uint8: 'uint8',
};

/**
 * Convolutions on onnxruntime's blocked kernels (nchwc.ts) with MLAS's block size: every one that
 * qualifies, or with `tune` each where it measures faster than the plain kernel.
 */
export interface NchwcOptions {
  block: number;
  tune?: { threads: number; log?: (l: string) => void };
}

export class Program {
  private constructor(
    readonly session: ort.InferenceSession,
    readonly provider: string,
    private readonly inputs: Map<string, Tensor>,
    readonly outputNames: string[],
  ) {}

  static async compile(g: Graph, o: SessionOptions & { model?: ModelMsg; nchwc?: NchwcOptions } = {}): Promise<Program> {
    let model = o.model ?? g.toModel();
    if (o.nchwc) {
      const dims = tensorDims(g);
      const pick = o.nchwc.tune ? await tuneNchwc(model, dims, o.nchwc.block, o.nchwc.tune) : undefined;
      model = blockConvs(model, dims, o.nchwc.block, pick);
    }
    // Training graphs keep many large activations: no memory pattern (session.ts says why).
    const { session, provider } = await createSession(encodeModel(model), { memPattern: false, ...o });
    const inputs = new Map(g.usedInputs().map((t) => [t.name, t]));
    return new Program(
      session,
      provider,
      inputs,
      g.outputs.map((t) => t.name),
    );
  }

  /** Names of the inputs the compiled graph actually reads. */
  get inputNames(): string[] {
    return [...this.inputs.keys()];
  }

  async run(feeds: Feeds): Promise<Record<string, HostArray>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of this.inputs) {
      const v = feeds[name];
      if (v === undefined) throw new TypeError(`run: no value fed for input '${name}'`);
      const dims = t.dims;
      const type = ORT_TYPE[t.dtype];
      if (!type) throw new TypeError(`run: input '${name}' has unsupported dtype ${t.dtype}`);
      const data = typeof v === 'number' ? scalarArray(t.dtype, v) : v;
      const n = dims.reduce((a, b) => a * b, 1);
      if (data.length !== n) throw new RangeError(`run: input '${name}' expects ${n} values [${dims}], got ${data.length}`);
      ortFeeds[name] = new ort.Tensor(type, data as Float32Array, dims);
    }
    const out = await this.session.run(ortFeeds);
    const result: Record<string, HostArray> = {};
    for (const name of this.outputNames) result[name] = out[name].data as HostArray;
    return result;
  }

  /** Ends onnxruntime's profiling (compiled with `profile`) and writes its file. */
  endProfiling(): void {
    this.session.endProfiling();
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Every tensor's dims by name: the graph's inputs and each live node's inputs and outputs. */
function tensorDims(g: Graph): Map<string, number[]> {
  const dims = new Map<string, number[]>();
  const add = (t: Tensor | null) => {
    if (t && t.shape.every((d) => typeof d === 'number')) dims.set(t.name, t.dims);
  };
  g.inputs.forEach(add);
  for (const n of g.liveNodes()) {
    n.inputs.forEach(add);
    n.outputs.forEach(add);
  }
  return dims;
}

function scalarArray(dtype: DType, v: number): HostArray {
  if (dtype === 'int64') return BigInt64Array.of(BigInt(v));
  if (dtype === 'float64') return Float64Array.of(v);
  if (dtype === 'int32') return Int32Array.of(v);
  return Float32Array.of(v);
}
