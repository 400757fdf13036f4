/**
 * The values of an ONNX TensorProto (an initialiser or a Constant's value) as plain typed arrays,
 * whichever of its fields the writer used (raw_data, float_data, int64_data, …).
 */
import { dtypeOfCode, type DType, type TensorMsg } from './onnx-proto.js';
import { UserError } from '../errors.js';

export interface TensorValues {
  dtype: DType;
  dims: number[];
  /** Floats as float32; integers (int64, int32, uint8, int8, bool) as numbers in a Float64Array. */
  data: Float32Array | Float64Array;
}

// A copy with its own buffer: protobufjs may hand out views into the whole file (Node Buffers).
const copy = (raw: Uint8Array) => new Uint8Array(raw).buffer;

export function readTensor(t: TensorMsg, source = 'model'): TensorValues {
  const dtype = dtypeOfCode(t.data_type);
  const dims = (t.dims ?? []).map(Number);
  if (!dtype) throw new UserError(`${source}: tensor '${t.name}' has ONNX data type ${t.data_type}, which sslkit does not read`);
  const raw = t.raw_data && t.raw_data.length ? t.raw_data : null;
  let data: Float32Array | Float64Array;
  if (dtype === 'float32') data = raw ? new Float32Array(copy(raw)) : Float32Array.from(t.float_data ?? []);
  else if (dtype === 'float64') data = Float32Array.from(raw ? new Float64Array(copy(raw)) : (t.double_data ?? []));
  else if (dtype === 'int64')
    data = raw
      ? Float64Array.from(new BigInt64Array(copy(raw)), (v) => Number(v))
      : Float64Array.from(t.int64_data ?? [], (v) => (typeof v === 'number' ? v : v.toNumber()));
  else if (dtype === 'int32') data = raw ? Float64Array.from(new Int32Array(copy(raw))) : Float64Array.from(t.int32_data ?? []);
  else if (dtype === 'uint8' || dtype === 'bool') data = raw ? Float64Array.from(raw) : Float64Array.from(t.int32_data ?? []);
  else if (dtype === 'int8') data = raw ? Float64Array.from(new Int8Array(copy(raw))) : Float64Array.from(t.int32_data ?? []);
  else throw new UserError(`${source}: tensor '${t.name}' is ${dtype}, which sslkit does not read as a value`);
  const n = dims.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new UserError(`${source}: tensor '${t.name}' has shape [${dims}] (${n} values) but holds ${data.length}`);
  return { dtype: dtype === 'float64' ? 'float32' : dtype, dims, data };
}
