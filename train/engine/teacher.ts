/**
 * Teachers. An EMA teacher lives inside the step graph: its parameters are state inputs
 * `teacher.<name>` whose new values, θ_t ← m·θ_t + (1 − m)·θ_s (with the student's updated θ_s),
 * are outputs; m is a scalar input fed each step from a cosine schedule to 1 (BYOL, DINO, MoCo).
 * A frozen teacher is any ONNX image encoder file, run in its own onnxruntime session; its
 * embeddings enter the step graph as inputs (distillation, BoWNet).
 */
import fs from 'node:fs';
import ort from 'onnxruntime-node';
import type { Graph, Tensor } from './graph.js';
import * as o from './ops.js';
import { UserError } from '../../core/errors.js';
import { createSession, type Device } from '../../core/runtime/session.js';

/** New values of every teacher parameter, from the student's updated parameters. */
export function emaUpdate(g: Graph, studentNext: Map<string, Tensor>): { momentum: Tensor; next: Map<string, Tensor> } {
  const momentum = g.input('teacher_momentum', []);
  const next = new Map<string, Tensor>();
  for (const [name, p] of g.params) {
    if (p.role !== 'teacher') continue;
    const student = name.slice('teacher.'.length);
    const s = studentNext.get(student);
    if (!s) throw new TypeError(`teacher parameter '${name}' has no trained student parameter '${student}'`);
    next.set(name, o.add(o.mul(p.tensor, momentum), o.mul(s, o.sub(1, momentum))));
  }
  return { momentum, next };
}

/** A frozen encoder from an ONNX file: float image input [N, C, H, W], embedding output [N, D]. */
export class FrozenTeacher {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly input: string,
    readonly output: string,
    readonly inputShape: (number | string)[],
  ) {}

  static async load(file: string, o: { device?: Device; threads?: number } = {}): Promise<FrozenTeacher> {
    if (!fs.existsSync(file)) throw new UserError(`${file}: teacher model not found`);
    let session: ort.InferenceSession;
    try {
      ({ session } = await createSession(fs.readFileSync(file), { device: o.device ?? 'cpu', threads: o.threads }));
    } catch (e) {
      throw new UserError(`${file}: not a loadable ONNX model (${(e as Error).message.split('\n')[0]})`, { cause: e });
    }
    const meta = session.inputMetadata.find((m) => m.isTensor && m.type === 'float32' && m.shape.length === 4);
    if (!meta || !meta.isTensor)
      throw new UserError(`${file}: the teacher needs a float32 image input [N, C, H, W]; inputs are ${session.inputNames.join(', ')}`);
    return new FrozenTeacher(session, meta.name, session.outputNames[0], [...meta.shape]);
  }

  /** Embeddings [n, D] of normalised NCHW images. */
  async embed(images: Float32Array, dims: number[]): Promise<{ data: Float32Array; dim: number }> {
    for (let i = 1; i < 4; i++) {
      const want = this.inputShape[i];
      if (typeof want === 'number' && want !== dims[i])
        throw new UserError(`teacher expects input [N, ${this.inputShape.slice(1).join(', ')}], the views are [${dims.join(', ')}]`);
    }
    const out = await this.session.run({ [this.input]: new ort.Tensor('float32', images, dims) });
    const t = out[this.output];
    const shape = t.dims as number[];
    // [N, D], [N, D, 1, 1] or [N, T, D] (CLS token first): take a [N, D] embedding.
    const dim = shape.length === 3 ? shape[2] : shape.slice(1).reduce((a, b) => a * b, 1);
    const data = t.data as Float32Array;
    if (shape.length === 3) {
      const cls = new Float32Array(dims[0] * dim);
      for (let i = 0; i < dims[0]; i++) cls.set(data.subarray(i * shape[1] * dim, i * shape[1] * dim + dim), i * dim);
      return { data: cls, dim };
    }
    return { data, dim };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
