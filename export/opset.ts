/**
 * Writing a graph at another opset. sslkit builds against opset 17; from 18 on the reductions
 * other than ReduceSum take their axes as an input instead of an attribute, which this rewrites.
 * LayerNormalization needs 17, so a graph with it cannot go lower; other graphs can go to 13.
 */
import { DataType, type ModelMsg } from '../core/onnx/onnx-proto.js';
import { irVersionForOpset } from '../core/onnx/onnx-proto.js';
import { UserError } from '../core/errors.js';

const AXES_TO_INPUT_AT_18 = new Set([
  'ReduceMean',
  'ReduceMax',
  'ReduceMin',
  'ReduceProd',
  'ReduceSumSquare',
  'ReduceL1',
  'ReduceL2',
  'ReduceLogSum',
  'ReduceLogSumExp',
]);
/** Lowest opset each op needs in the form sslkit writes it. */
const MIN_OPSET: Record<string, number> = { LayerNormalization: 17 };
export const MAX_OPSET = 21;

export function minOpset(model: ModelMsg): number {
  return Math.max(13, ...model.graph.node.map((n) => MIN_OPSET[n.op_type] ?? 13));
}

export function setOpset(model: ModelMsg, opset: number): ModelMsg {
  const min = minOpset(model);
  if (opset < min || opset > MAX_OPSET) {
    // The op that sets the floor, when one does (otherwise the floor is 13, sslkit's own).
    const needs = model.graph.node.find((n) => MIN_OPSET[n.op_type] === min)?.op_type;
    throw new UserError(
      `opset ${opset} is not possible for this graph: it can be written at opsets ${min}-${MAX_OPSET}` +
        (opset < min ? (needs ? ` (${needs} needs ${min})` : ` (sslkit writes its ops in their opset-13 form or later)`) : ''),
    );
  }
  const graph = { ...model.graph, node: model.graph.node.map((n) => ({ ...n })), initializer: [...model.graph.initializer] };
  if (opset >= 18) {
    graph.node.forEach((n, i) => {
      if (!AXES_TO_INPUT_AT_18.has(n.op_type)) return;
      const axes = n.attribute?.find((a) => a.name === 'axes');
      if (!axes) return;
      const name = `axes_${i}_${n.op_type}`;
      const ints = axes.ints ?? [];
      graph.initializer.push({
        name,
        dims: [ints.length],
        data_type: DataType.int64,
        raw_data: new Uint8Array(BigInt64Array.from(ints.map((v) => BigInt(v))).buffer),
      });
      n.input = [n.input[0], name];
      n.attribute = n.attribute!.filter((a) => a.name !== 'axes');
    });
  }
  return { ...model, ir_version: irVersionForOpset(opset), opset_import: [{ domain: '', version: opset }], graph };
}
