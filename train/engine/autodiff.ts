/**
 * Reverse-mode differentiation over the graph builder's nodes. Nodes are recorded in creation
 * order, which is a topological order, so the backward walk is a reverse scan. Gradients flow only
 * along paths from the wanted tensors to the loss, stop at stop-gradient nodes, and are summed for
 * values used more than once. An op without a rule on such a path is an error that names it.
 */
import { OPS, type GradEnv, type Tensor } from './graph.js';
import { add, zeros } from './ops.js';
import { sameShape } from './shape.js';
import './conv-grad.js'; // Conv's and ConvTranspose's gradient rules

/**
 * Gradients of `loss` (a scalar, or any tensor when `seed` is its cotangent) w.r.t. `wrt`. `env`
 * reaches every gradient rule (the conv weight-gradient planner).
 */
export function grad(loss: Tensor, wrt: Tensor[], seed?: Tensor, env: GradEnv = {}): Tensor[] {
  const g = loss.graph;
  if (!seed && loss.rank !== 0 && loss.size !== 1)
    throw new RangeError(`grad: the loss '${loss.name}' has shape [${loss.shape}]; a scalar (or a seed) is needed`);

  // Forward: which tensors depend on a wanted one through differentiable inputs.
  const needs = new Set(wrt.map((t) => t.name));
  for (const node of g.nodes) {
    if (node.stopGradient) continue;
    const nonDiff = OPS[node.op].nonDiff ?? [];
    if (node.inputs.some((t, i) => t && !nonDiff.includes(i) && needs.has(t.name)))
      for (const o of node.outputs) if (o.dtype.startsWith('float')) needs.add(o.name);
  }
  if (!needs.has(loss.name)) return wrt.map((p) => zeros(g, p.dims, p.dtype));

  const grads = new Map<string, Tensor>([[loss.name, seed ?? g.scalar(1, loss.dtype)]]);
  const nodes = g.nodes.slice(); // rules append nodes; walk only the forward ones
  for (let k = nodes.length - 1; k >= 0; k--) {
    const node = nodes[k];
    if (node.stopGradient) continue;
    const dOut = node.outputs.map((o) => grads.get(o.name) ?? null);
    if (dOut.every((d) => d === null)) continue;
    const nonDiff = OPS[node.op].nonDiff ?? [];
    const wanted = node.inputs.map((t, i) => !!t && !nonDiff.includes(i) && needs.has(t.name));
    if (!wanted.some(Boolean)) continue;
    const rule = OPS[node.op].vjp;
    if (!rule) throw new TypeError(`grad: op '${node.op}' (output '${node.outputs[0].name}') has no gradient rule`);
    const dIn = rule(node, dOut, env);
    node.inputs.forEach((t, i) => {
      const d = dIn[i];
      if (!wanted[i] || !t || !d) return;
      if (!sameShape(d.shape, t.shape))
        throw new RangeError(`grad: rule for '${node.op}' gave input ${i} a gradient of shape [${d.shape}], expected [${t.shape}]`);
      const prev = grads.get(t.name);
      grads.set(t.name, prev ? add(prev, d) : d);
    });
  }
  return wrt.map((p) => grads.get(p.name) ?? zeros(g, p.dims, p.dtype));
}
