/**
 * The graph builder: symbolic tensors with shapes and dtypes, joined by name into ONNX nodes.
 * A model, its reverse-mode gradient and its optimiser update are all built with this one API
 * and serialised to a single ONNX ModelProto that onnxruntime runs.
 */
import {
  DataType,
  type DType,
  type AttributeMsg,
  type ModelMsg,
  type NodeMsg,
  type TensorMsg,
  type ValueInfoMsg,
  irVersionForOpset,
} from '../../core/onnx/onnx-proto.js';
import { SSLKIT_VERSION } from '../../core/version.js';

export type Dim = number | string;
export type Shape = Dim[];
/** Keys that start with '_' are builder metadata for shape and gradient rules, never written. */
export type AttrValue = number | string | number[] | string[] | TensorData | object | undefined;
export type Attrs = Record<string, AttrValue>;

/** Constant data with its dtype and shape (initialisers and tensor attributes). */
export interface TensorData {
  dtype: DType;
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array;
}

/** The opset every sslkit graph is written against (LayerNormalization needs 17). */
export const OPSET = 17;

export class Tensor {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly shape: Shape,
    readonly dtype: DType,
    /** The node that computes this tensor; undefined for inputs, parameters and constants. */
    readonly producer?: Node,
  ) {}
  get rank(): number {
    return this.shape.length;
  }
  /** Numeric shape; throws naming the tensor when a dimension is symbolic. */
  get dims(): number[] {
    return this.shape.map((d, i) => {
      if (typeof d !== 'number') throw new TypeError(`tensor '${this.name}': dimension ${i} is symbolic ('${d}'), a number was expected`);
      return d;
    });
  }
  get size(): number {
    return this.dims.reduce((a, b) => a * b, 1);
  }
}

export interface Node {
  op: string;
  inputs: (Tensor | null)[];
  outputs: Tensor[];
  attrs: Attrs;
  /** Set for Identity nodes that block gradients (stop-gradient). */
  stopGradient?: boolean;
}

/** A registered operator: its shape rule and (where differentiable) its vector-Jacobian rule. */
export interface OpDef {
  /** Output shapes and dtypes from the input tensors and attributes. */
  shape(inputs: (Tensor | null)[], attrs: Attrs): { shape: Shape; dtype: DType }[];
  /** Given the output gradients (null where none flows), one gradient per input, or null. */
  vjp?(node: Node, dOut: (Tensor | null)[], env: GradEnv): (Tensor | null)[];
  /** Inputs that never carry gradients (indices, shapes, masks). */
  nonDiff?: number[];
}

/** What gradient rules may consult while grad() runs: passed in by the caller, never module state. */
export interface GradEnv {
  /** Picks the conv weight-gradient formulation per layer shape (engine/conv-grad.ts, ConvGradPlanner). */
  convGrads?: { choose(shape: ConvShape): string };
}

/** A 2-D convolution's shapes and attributes, as the weight-gradient planner keys them. */
export interface ConvShape {
  x: number[];
  dy: number[];
  w: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
  group: number;
}

export const OPS: Record<string, OpDef> = {};
export function defineOp(op: string, def: OpDef): void {
  OPS[op] = def;
}

/** Adds the gradient rule of an op whose shape rule is defined elsewhere (rules that need modules above ops.ts). */
export function defineVjp(op: string, vjp: NonNullable<OpDef['vjp']>): void {
  if (!OPS[op]) throw new TypeError(`defineVjp: op '${op}' is not defined`);
  OPS[op].vjp = vjp;
}

export type ParamRole = 'weight' | 'bias' | 'norm' | 'buffer' | 'teacher';

export interface Param {
  tensor: Tensor;
  init: TensorData;
  /**
   * weight: decayed; bias/norm: excluded from weight decay and LARS adaptation; buffer: not
   * trained (BN statistics); teacher: not trained, follows its student by EMA.
   */
  role: ParamRole;
}

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Tensor[] = [];
  readonly outputs: Tensor[] = [];
  readonly initializers = new Map<string, TensorData>();
  /** Trainable parameters and buffers, by name, in creation order. */
  readonly params = new Map<string, Param>();
  /** New values of buffers (BN running statistics) that the graph computes, by buffer name. */
  readonly bufferUpdates = new Map<string, Tensor>();
  private counter = 0;
  private readonly names = new Set<string>();
  private readonly scalarCache = new Map<string, Tensor>();

  constructor(
    /**
     * 'train': parameters are graph inputs, fed and updated each step;
     * 'infer': parameters are initialisers (ORT pre-packs constant weights, and this is the export form).
     */
    readonly mode: 'train' | 'infer' = 'train',
  ) {}

  uniqueName(base: string): string {
    let name = base;
    while (this.names.has(name)) name = `${base}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  input(name: string, shape: Shape, dtype: DType = 'float32'): Tensor {
    if (this.names.has(name)) throw new TypeError(`graph input '${name}' is defined twice`);
    this.names.add(name);
    const t = new Tensor(this, name, shape, dtype);
    this.inputs.push(t);
    return t;
  }

  /** A named parameter or buffer with its initial value. */
  param(name: string, init: TensorData, role: ParamRole = 'weight'): Tensor {
    if (this.params.has(name)) throw new TypeError(`parameter '${name}' is defined twice`);
    const t = this.mode === 'train' ? this.input(name, init.shape, init.dtype) : this.initializer(name, init);
    this.params.set(name, { tensor: t, init, role });
    return t;
  }

  initializer(name: string, data: TensorData): Tensor {
    const n = data.shape.reduce((a, b) => a * b, 1);
    if (n !== data.data.length)
      throw new RangeError(`initializer '${name}': shape [${data.shape}] holds ${n} values, data has ${data.data.length}`);
    const uname = this.uniqueName(name);
    this.initializers.set(uname, data);
    return new Tensor(this, uname, data.shape, data.dtype);
  }

  constant(data: TensorData, name = 'const'): Tensor {
    return this.initializer(name, data);
  }

  /** A scalar constant, shared by every use of the same value and dtype. */
  scalar(value: number, dtype: DType = 'float32'): Tensor {
    const key = `${dtype}:${value}`;
    let t = this.scalarCache.get(key);
    if (!t) {
      t = this.constant(tensorData(dtype, [], [value]), `c_${dtype}`);
      this.scalarCache.set(key, t);
    }
    return t;
  }

  int64s(values: number[]): Tensor {
    const key = `i64s:${values.join(',')}`;
    let t = this.scalarCache.get(key);
    if (!t) {
      t = this.constant(tensorData('int64', [values.length], values), 'c_int64s');
      this.scalarCache.set(key, t);
    }
    return t;
  }

  /** Emits a node; its outputs' shapes come from the op's shape rule. */
  emit(op: string, inputs: (Tensor | null)[], attrs: Attrs = {}, outputNames?: string[]): Tensor[] {
    const def = OPS[op];
    if (!def) throw new TypeError(`unknown op '${op}': register it with defineOp`);
    for (const t of inputs) if (t && t.graph !== this) throw new TypeError(`op ${op}: input '${t.name}' belongs to another graph`);
    const specs = def.shape(inputs, attrs);
    const node: Node = { op, inputs, outputs: [], attrs };
    node.outputs = specs.map(
      (s, i) => new Tensor(this, outputNames?.[i] ?? this.uniqueName(`${op}_${this.nodes.length}_${i}`), s.shape, s.dtype, node),
    );
    if (outputNames) for (const n of outputNames) this.names.add(n);
    this.nodes.push(node);
    return node.outputs;
  }

  /** Marks tensors as graph outputs under the given names (an Identity renames when needed). */
  output(t: Tensor, name?: string): Tensor {
    let out = t;
    if (name && name !== t.name) {
      if (this.names.has(name)) throw new TypeError(`graph output '${name}' clashes with an existing name`);
      out = this.emit('Identity', [t], {}, [name])[0];
    } else if (this.inputs.includes(t) || this.initializers.has(t.name) || this.outputs.includes(t)) {
      out = this.emit('Identity', [t])[0];
    }
    this.outputs.push(out);
    return out;
  }

  toModel(opts: { opset?: number; docString?: string; metadata?: Record<string, string>; graphName?: string } = {}): ModelMsg {
    const opset = opts.opset ?? OPSET;
    const live = this.liveNodes();
    const used = new Set<string>();
    for (const n of live) for (const t of n.inputs) if (t) used.add(t.name);
    for (const t of this.outputs) used.add(t.name);
    const nodes: NodeMsg[] = live.map((n, i) => ({
      op_type: n.op,
      name: `n${i}_${n.op}`,
      input: n.inputs.map((t) => t?.name ?? ''),
      output: n.outputs.map((t) => t.name),
      attribute: encodeAttrs(n.attrs),
    }));
    return {
      ir_version: irVersionForOpset(opset),
      opset_import: [{ domain: '', version: opset }],
      producer_name: 'sslkit',
      producer_version: SSLKIT_VERSION,
      doc_string: opts.docString,
      graph: {
        name: opts.graphName ?? 'sslkit',
        node: nodes,
        initializer: [...this.initializers].filter(([n]) => used.has(n)).map(([n, d]) => encodeTensor(n, d)),
        input: this.inputs.filter((t) => used.has(t.name)).map(valueInfo),
        output: this.outputs.map(valueInfo),
      },
      metadata_props: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
    };
  }

  /** Nodes that some graph output depends on (dead branches are not written). */
  liveNodes(): Node[] {
    const need = new Set(this.outputs.map((t) => t.name));
    const keep: boolean[] = new Array(this.nodes.length).fill(false);
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i];
      if (n.outputs.some((t) => need.has(t.name))) {
        keep[i] = true;
        for (const t of n.inputs) if (t) need.add(t.name);
      }
    }
    return this.nodes.filter((_, i) => keep[i]);
  }

  /** Inputs that the live graph reads (unused parameters are dropped from the model). */
  usedInputs(): Tensor[] {
    const used = new Set<string>();
    for (const n of this.liveNodes()) for (const t of n.inputs) if (t) used.add(t.name);
    for (const t of this.outputs) used.add(t.name);
    return this.inputs.filter((t) => used.has(t.name));
  }
}

export function tensorData(dtype: DType, shape: number[], values: ArrayLike<number> | TensorData['data']): TensorData {
  let data: TensorData['data'];
  if (dtype === 'float32') data = values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
  else if (dtype === 'float64') data = Float64Array.from(values as ArrayLike<number>);
  else if (dtype === 'int64')
    data = values instanceof BigInt64Array ? values : BigInt64Array.from(Array.from(values as ArrayLike<number>, (v) => BigInt(v)));
  else if (dtype === 'int32') data = Int32Array.from(values as ArrayLike<number>);
  else if (dtype === 'bool' || dtype === 'uint8') data = Uint8Array.from(values as ArrayLike<number>);
  else if (dtype === 'float16') data = values as Uint16Array;
  else throw new TypeError(`tensorData: unsupported dtype ${dtype}`);
  return { dtype, shape, data };
}

function encodeTensor(name: string, d: TensorData): TensorMsg {
  const buf = d.data;
  return {
    name,
    dims: d.shape,
    data_type: DataType[d.dtype],
    raw_data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength),
  };
}

function valueInfo(t: Tensor): ValueInfoMsg {
  return {
    name: t.name,
    type: {
      tensor_type: {
        elem_type: DataType[t.dtype],
        shape: { dim: t.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

function encodeAttrs(attrs: Attrs): AttributeMsg[] {
  const out: AttributeMsg[] = [];
  for (const name of Object.keys(attrs).sort()) {
    const v = attrs[name];
    if (v === undefined || name.startsWith('_')) continue;
    if (typeof v === 'number') {
      if (Number.isInteger(v) && !FLOAT_ATTRS.has(name)) out.push({ name, type: 2, i: v });
      else out.push({ name, type: 1, f: v });
    } else if (typeof v === 'string') out.push({ name, type: 3, s: new TextEncoder().encode(v) });
    else if (Array.isArray(v)) {
      if (v.length > 0 && typeof v[0] === 'string')
        out.push({ name, type: 8, strings: (v as string[]).map((s) => new TextEncoder().encode(s)) });
      else out.push({ name, type: 7, ints: v as number[] });
    } else out.push({ name, type: 4, t: encodeTensor(name, v as TensorData) });
  }
  return out;
}

/** Attributes that ONNX types as float even when the value happens to be integral. */
const FLOAT_ATTRS = new Set(['alpha', 'beta', 'epsilon', 'momentum', 'gamma', 'bias', 'lambd', 'extrapolation_value', 'cubic_coeff_a']);
