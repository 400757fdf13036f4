/**
 * The EMA teacher lives inside the step graph: its parameters are state inputs `teacher.<name>`
 * whose new values, θ_t ← m·θ_t + (1 − m)·θ_s (with the student's updated θ_s), are outputs; m is
 * a scalar input fed each step from a cosine schedule to 1 (BYOL, MoCo, DINO, OBoW). A frozen
 * teacher (distill, bownet) is any ONNX encoder run by the method's runtime (methods/distill.ts).
 */
import type { Graph, Tensor } from './graph.js';
import * as o from './ops.js';

/** New values of every teacher parameter, from the student's updated parameters. */
export function emaUpdate(
  g: Graph,
  studentNext: Map<string, Tensor>,
): { momentum: Tensor; next: Map<string, Tensor>; feeds: (momentum: number) => Record<string, number> } {
  const momentum = g.input('teacher_momentum', []);
  const next = new Map<string, Tensor>();
  for (const [name, p] of g.params) {
    if (p.role !== 'teacher') continue;
    const student = name.slice('teacher.'.length);
    const s = studentNext.get(student);
    if (!s) throw new TypeError(`teacher parameter '${name}' has no trained student parameter '${student}'`);
    next.set(name, o.add(o.mul(p.tensor, momentum), o.mul(s, o.sub(1, momentum))));
  }
  return { momentum, next, feeds: (m) => ({ teacher_momentum: m }) };
}
