/**
 * What an ONNX file is (`sslkit inspect model.onnx`, and every loader's first check): inputs, outputs, opset, node count, parameter count and metadata
 * of any ONNX file (sslkit's or a foreign one), without running it.
 */
import fs from 'node:fs';
import { decodeModel, dtypeOfCode, type ValueInfoMsg } from './onnx-proto.js';
import { UserError } from '../errors.js';

export interface ModelInfo {
  file: string;
  bytes: number;
  producer: string;
  irVersion: number;
  opset: number;
  inputs: { name: string; dtype: string; shape: (number | string)[] }[];
  outputs: { name: string; dtype: string; shape: (number | string)[] }[];
  nodes: number;
  opCounts: Record<string, number>;
  parameters: number;
  metadata: Record<string, string>;
}

function io(v: ValueInfoMsg) {
  const t = v.type?.tensor_type;
  return {
    name: v.name,
    dtype: (t?.elem_type !== undefined && dtypeOfCode(t.elem_type)) || `type ${t?.elem_type ?? '?'}`,
    shape: (t?.shape?.dim ?? []).map((d) => (d.dim_param ? d.dim_param : d.dim_value !== undefined ? Number(d.dim_value) : '?')),
  };
}

export function inspectModel(file: string): ModelInfo {
  if (!fs.existsSync(file)) throw new UserError(`${file}: no such file`);
  const bytes = fs.readFileSync(file);
  if (bytes.length === 0) throw new UserError(`${file}: empty file, not an ONNX model`);
  const m = decodeModel(bytes, file);
  const inits = new Set(m.graph.initializer.map((t) => t.name));
  const opCounts: Record<string, number> = {};
  for (const n of m.graph.node) opCounts[n.op_type] = (opCounts[n.op_type] ?? 0) + 1;
  return {
    file,
    bytes: bytes.length,
    producer: [m.producer_name, m.producer_version].filter(Boolean).join(' ') || 'unknown',
    irVersion: Number(m.ir_version),
    opset: Number(m.opset_import.find((o) => !o.domain)?.version ?? m.opset_import[0].version),
    inputs: m.graph.input.filter((v) => !inits.has(v.name)).map(io),
    outputs: m.graph.output.map(io),
    nodes: m.graph.node.length,
    opCounts,
    parameters: m.graph.initializer.reduce((a, t) => a + t.dims.reduce((x, y) => x * Number(y), 1), 0),
    metadata: Object.fromEntries((m.metadata_props ?? []).map((p) => [p.key, p.value])),
  };
}

export function formatModelInfo(i: ModelInfo): string {
  const lines = [
    `${i.file}  (${(i.bytes / 1024).toFixed(1)} KiB, ${i.producer}, IR ${i.irVersion}, opset ${i.opset})`,
    `  nodes       ${i.nodes}  (${Object.entries(i.opCounts)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')})`,
    `  parameters  ${i.parameters.toLocaleString('en-US')}`,
    ...i.inputs.map((t) => `  input       ${t.name}  ${t.dtype} [${t.shape.join(', ')}]`),
    ...i.outputs.map((t) => `  output      ${t.name}  ${t.dtype} [${t.shape.join(', ')}]`),
  ];
  const keys = Object.keys(i.metadata);
  if (keys.length) {
    lines.push('  metadata');
    const w = Math.max(...keys.map((k) => k.length));
    for (const k of keys) lines.push(`    ${k.padEnd(w)}  ${i.metadata[k]}`);
  } else lines.push('  metadata    (none)');
  return lines.join('\n');
}
