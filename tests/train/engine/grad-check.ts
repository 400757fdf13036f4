/**
 * Central finite differences against the engine's reverse-mode gradients.
 *
 * For a function f of some inputs, the check builds L = Σ R ⊙ f(x) with a fixed random R, asks
 * the engine for ∂L/∂x, and compares the directional derivative ⟨∂L/∂x, v⟩ with
 * (L(x + εv) − L(x − εv)) / 2ε for random directions v. L is summed in float64 in JS from the
 * float32 outputs, so the finite difference's error is the float32 rounding of f (≈1e-7 relative
 * per element, ≈1e-7·√n·|f|/ε in L) plus the O(ε²) truncation: with ε = 1e-2 on O(1) inputs both
 * stay below 1e-3 of the derivative's scale, while a wrong rule is off by O(1).
 */
import { Graph, type GradEnv, type Tensor } from '../../../train/engine/graph.js';
import { grad } from '../../../train/engine/autodiff.js';
import { mul, reduceSum } from '../../../train/engine/ops.js';
import { Program } from '../../../train/engine/program.js';
import { Rng } from '../../../core/random.js';

export interface GradCase {
  name: string;
  inputs: Record<string, number[]>;
  /** Builds the op under test from the graph inputs. */
  f: (x: Record<string, Tensor>) => Tensor;
  /** Inputs to differentiate (all by default). */
  wrt?: string[];
  /** Custom sampler for input values (e.g. away from a kink). */
  sample?: (rng: Rng, name: string, index: number) => number;
  eps?: number;
  tol?: number;
  /** What the gradient rules see (e.g. a planner forcing one conv weight-gradient plan). */
  env?: GradEnv;
}

export interface GradReport {
  worst: number;
  details: string[];
}

export async function checkGradient(c: GradCase, seed = 1): Promise<GradReport> {
  const rng = new Rng(seed);
  const g = new Graph('train');
  const xs: Record<string, Tensor> = {};
  const values: Record<string, Float32Array> = {};
  for (const [name, shape] of Object.entries(c.inputs)) {
    xs[name] = g.input(name, shape);
    const n = shape.reduce((a, b) => a * b, 1);
    values[name] = Float32Array.from({ length: n }, (_, i) => (c.sample ? c.sample(rng, name, i) : rng.normal()));
  }
  const y = c.f(xs);
  // Layers built with a Ctx add their parameters as graph inputs: feed their initial values, and
  // let `wrt` name them.
  for (const [name, prm] of g.params) {
    xs[name] = prm.tensor;
    values[name] = prm.init.data as Float32Array;
  }
  const R = g.input('R', y.dims);
  const Rv = Float32Array.from({ length: y.size }, () => rng.normal());
  const loss = reduceSum(mul(y, R));
  const wrt = c.wrt ?? Object.keys(c.inputs);
  const grads = grad(
    loss,
    wrt.map((k) => xs[k]),
    undefined,
    c.env,
  );
  g.output(y, 'y');
  grads.forEach((t, i) => g.output(t, `grad_${wrt[i]}`));
  const prog = await Program.compile(g);
  const L = async (vals: Record<string, Float32Array>) => {
    const out = await prog.run({ ...vals, R: Rv });
    let s = 0;
    const yv = out.y as Float32Array;
    for (let i = 0; i < yv.length; i++) s += yv[i] * Rv[i];
    return { s, out };
  };
  const base = await L(values);
  const eps = c.eps ?? 1e-2;
  const tol = c.tol ?? 2e-3;
  let worst = 0;
  const details: string[] = [];
  for (const name of wrt) {
    const gv = base.out[`grad_${name}`] as Float32Array;
    for (let dir = 0; dir < 3; dir++) {
      const v = Float32Array.from(values[name], () => rng.normal());
      const shift = (sgn: number) => ({ ...values, [name]: values[name].map((x, i) => x + sgn * eps * v[i]) });
      const fd = ((await L(shift(1))).s - (await L(shift(-1))).s) / (2 * eps);
      let an = 0;
      let gnorm = 0;
      let vnorm = 0;
      for (let i = 0; i < v.length; i++) {
        an += gv[i] * v[i];
        gnorm += gv[i] * gv[i];
        vnorm += v[i] * v[i];
      }
      // Scale: the derivative's own size, or the typical size of ⟨g, v⟩ when they nearly cancel.
      const scale = Math.max(Math.abs(an), Math.sqrt(gnorm), 1e-3);
      const err = Math.abs(fd - an) / scale;
      worst = Math.max(worst, err);
      if (err > tol)
        details.push(
          `${c.name} d/d${name} dir ${dir}: analytic ${an.toExponential(5)} vs finite-diff ${fd.toExponential(5)} (rel ${err.toExponential(2)}, |v|=${Math.sqrt(vnorm).toFixed(1)})`,
        );
    }
  }
  await prog.release();
  return { worst, details };
}
