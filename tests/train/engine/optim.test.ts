/**
 * Optimiser updates built as graph nodes against a plain JS re-computation of the textbook
 * formulas (PyTorch's SGD/AdamW, LARS as in You et al. 2017), over several steps, with weight-decay
 * exclusion of biases and norm parameters, and gradient clipping. Plus the schedules.
 */
import { describe, expect, it } from 'vitest';
import { Graph, tensorData, type Param } from '../../../train/engine/graph.js';
import { buildUpdate, DEFAULT_OPTIMIZER, learningRate, teacherMomentum, type OptimizerConfig } from '../../../train/engine/optim.js';
import { Program } from '../../../train/engine/program.js';
import { StatefulProgram, StateSpec } from '../../../train/engine/stateful.js';

const W0 = [0.5, -1.0, 2.0, 0.25];
const B0 = [0.1, -0.3];
const GW = [
  [0.2, -0.1, 0.4, 0.0],
  [-0.3, 0.5, 0.1, 0.2],
  [0.05, 0.05, -0.2, 0.3],
];
const GB = [
  [1.0, -2.0],
  [0.5, 0.5],
  [-1.0, 0.25],
];

/** Runs `steps` updates through the graph, feeding fixed gradients; returns the weights after each. */
async function runGraph(cfg: OptimizerConfig, lr: number) {
  const g = new Graph('train');
  g.param('w', tensorData('float32', [4], W0), 'weight');
  g.param('b', tensorData('float32', [2], B0), 'bias');
  const gw = g.input('gw', [4]);
  const gb = g.input('gb', [2]);
  const upd = buildUpdate(g, [...g.params] as [string, Param][], [gw, gb], cfg);
  const spec = new StateSpec(g);
  spec.update(upd, () => ({ lr, peakLr: lr }));
  const prog = await StatefulProgram.compile(spec);
  const history: number[][] = [];
  for (let t = 0; t < GW.length; t++) {
    await prog.step({ gw: Float32Array.from(GW[t]), gb: Float32Array.from(GB[t]) }, t);
    history.push([...prog.state.get('w')!, ...prog.state.get('b')!]);
  }
  await prog.release();
  return history;
}

/** The same updates written out plainly, per parameter element. */
function reference(cfg: OptimizerConfig, lr: number) {
  let w = [...W0];
  let b = [...B0];
  const slots = { w: { m: W0.map(() => 0), v: W0.map(() => 0) }, b: { m: B0.map(() => 0), v: B0.map(() => 0) } };
  const history: number[][] = [];
  const norm = (a: number[]) => Math.sqrt(a.reduce((s, x) => s + x * x, 0));
  for (let t = 0; t < GW.length; t++) {
    let gw = [...GW[t]];
    let gb = [...GB[t]];
    if (cfg.clipGradNorm > 0) {
      const total = Math.sqrt(norm(gw) ** 2 + norm(gb) ** 2);
      const s = Math.min(1, cfg.clipGradNorm / (total + 1e-6));
      gw = gw.map((x) => x * s);
      gb = gb.map((x) => x * s);
    }
    const step = (p: number[], grad: number[], st: { m: number[]; v: number[] }, decay: boolean) => {
      if (cfg.name === 'adamw') {
        return p.map((x, i) => {
          st.m[i] = cfg.beta1 * st.m[i] + (1 - cfg.beta1) * grad[i];
          st.v[i] = cfg.beta2 * st.v[i] + (1 - cfg.beta2) * grad[i] ** 2;
          const mh = st.m[i] / (1 - cfg.beta1 ** (t + 1));
          const vh = st.v[i] / (1 - cfg.beta2 ** (t + 1));
          return (decay ? x * (1 - lr * cfg.weightDecay) : x) - (lr * mh) / (Math.sqrt(vh) + cfg.eps);
        });
      }
      let d = grad.map((gi, i) => gi + (decay ? cfg.weightDecay * p[i] : 0));
      if (cfg.name === 'lars' && decay) {
        const trust = (cfg.trustCoefficient * norm(p)) / norm(d);
        d = d.map((x) => x * trust);
      }
      return p.map((x, i) => {
        st.v[i] = cfg.momentum * st.v[i] + d[i];
        return x - lr * (cfg.nesterov ? d[i] + cfg.momentum * st.v[i] : st.v[i]);
      });
    };
    w = step(w, gw, slots.w, cfg.weightDecay > 0);
    b = step(b, gb, slots.b, false);
    history.push([...w, ...b]);
  }
  return history;
}

describe('optimisers', () => {
  const cases: [string, Partial<OptimizerConfig>, number][] = [
    ['SGD momentum', { name: 'sgd', momentum: 0.9, weightDecay: 0.01 }, 0.1],
    ['SGD Nesterov', { name: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 0.01 }, 0.1],
    ['AdamW', { name: 'adamw', weightDecay: 0.05 }, 0.01],
    ['LARS', { name: 'lars', momentum: 0.9, weightDecay: 1e-3, trustCoefficient: 0.02 }, 0.5],
    ['SGD with gradient clipping', { name: 'sgd', momentum: 0, weightDecay: 0, clipGradNorm: 0.5 }, 0.1],
  ];
  it.each(cases)('%s matches the reference over 3 steps (bias: no decay, no LARS)', async (_n, partial, lr) => {
    const cfg = { ...DEFAULT_OPTIMIZER, ...partial };
    const got = await runGraph(cfg, lr);
    const want = reference(cfg, lr);
    got.forEach((row, t) => row.forEach((v, i) => expect(v, `step ${t} element ${i}`).toBeCloseTo(want[t][i], 5)));
    // The bias moved by its gradient only: with decay or LARS it would differ from this.
    expect(got[0][4]).not.toBe(B0[0]);
  });
});

it('parameters marked fixed-lr step with lr_fixed, the rest with the scheduled lr', async () => {
  const g = new Graph('train');
  g.param('predictor.w', tensorData('float32', [2], [1, 2]), 'weight');
  g.param('encoder.w', tensorData('float32', [2], [1, 2]), 'weight');
  const grads = [g.input('g1', [2]), g.input('g2', [2])];
  const cfg = { ...DEFAULT_OPTIMIZER, name: 'sgd' as const, momentum: 0, weightDecay: 0 };
  const upd = buildUpdate(g, [...g.params] as [string, Param][], grads, cfg, (n) => n.startsWith('predictor.'));
  g.output(upd.params.get('predictor.w')!, 'p2');
  g.output(upd.params.get('encoder.w')!, 'e2');
  const prog = await Program.compile(g);
  const zeros = Object.fromEntries([...upd.state].map(([n, st]) => [n, new Float32Array(st.input.size)]));
  const out = await prog.run({
    ...zeros,
    'predictor.w': Float32Array.of(1, 2),
    'encoder.w': Float32Array.of(1, 2),
    g1: Float32Array.of(1, 1),
    g2: Float32Array.of(1, 1),
    lr: 0.01,
    lr_fixed: 0.5,
  });
  expect(Array.from(out.p2 as Float32Array)).toEqual([0.5, 1.5]);
  expect(Array.from(out.e2 as Float32Array).map((v) => +v.toFixed(5))).toEqual([0.99, 1.99]);
});

describe('schedules', () => {
  const s = { lr: 1, warmupSteps: 10, totalSteps: 110, minLrRatio: 0 };
  it('warms up linearly, then decays on a cosine to the floor', () => {
    expect(learningRate(0, s)).toBeCloseTo(0.1);
    expect(learningRate(9, s)).toBeCloseTo(1);
    expect(learningRate(10, s)).toBeCloseTo(1);
    expect(learningRate(60, s)).toBeCloseTo(0.5);
    expect(learningRate(110, s)).toBeCloseTo(0);
    expect(learningRate(110, { ...s, minLrRatio: 0.1 })).toBeCloseTo(0.1);
  });
  it('teacher momentum goes from its base to 1 on a cosine', () => {
    expect(teacherMomentum(0, 100, 0.99)).toBeCloseTo(0.99);
    expect(teacherMomentum(50, 100, 0.99)).toBeCloseTo(0.995);
    expect(teacherMomentum(100, 100, 0.99)).toBeCloseTo(1);
  });
});
