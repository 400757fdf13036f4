/**
 * The linear probe: multinomial logistic regression on frozen, standardised features, trained
 * with the engine itself (a one-layer graph, cross-entropy, AdamW, cosine schedule, stepped as a
 * stateful program) on the train split and scored on the test split.
 */
import { Graph, tensorData } from '../train/engine/graph.js';
import { grad } from '../train/engine/autodiff.js';
import { buildUpdate, learningRate, DEFAULT_OPTIMIZER } from '../train/engine/optim.js';
import { StatefulProgram, StateSpec } from '../train/engine/stateful.js';
import { softCrossEntropy } from '../train/losses/common.js';
import * as o from '../train/engine/ops.js';
import { Rng } from '../core/random.js';

export interface ProbeOptions {
  epochs?: number;
  batch?: number;
  lr?: number;
  weightDecay?: number;
  seed?: number;
}

function standardizer(x: Float32Array, d: number) {
  const n = x.length / d;
  const mean = new Float64Array(d);
  const sq = new Float64Array(d);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < d; j++) {
      mean[j] += x[i * d + j] / n;
      sq[j] += (x[i * d + j] * x[i * d + j]) / n;
    }
  const std = mean.map((m, j) => Math.sqrt(Math.max(sq[j] - m * m, 0)) || 1);
  return (y: Float32Array) => y.map((v, i) => (v - mean[i % d]) / std[i % d]);
}

export async function linearProbe(
  train: Float32Array,
  trainLabels: Int32Array,
  test: Float32Array,
  testLabels: Int32Array,
  d: number,
  classes: number,
  o2: ProbeOptions = {},
): Promise<number> {
  const epochs = o2.epochs ?? 30;
  const batch = Math.min(o2.batch ?? 512, trainLabels.length);
  const std = standardizer(train, d);
  const xs = std(train);
  const xt = std(test);

  const g = new Graph('train');
  const x = g.input('x', [batch, d]);
  const y = g.input('y', [batch, classes]);
  const w = g.param('probe.weight', tensorData('float32', [classes, d], new Float32Array(classes * d)));
  const b = g.param('probe.bias', tensorData('float32', [classes], new Float32Array(classes)), 'bias');
  const logits = o.gemm(x, w, { transB: true, c: b });
  const loss = softCrossEntropy(y, o.logSoftmax(logits, 1));
  const params = [...g.params];
  const upd = buildUpdate(
    g,
    params,
    grad(
      loss,
      params.map(([, p]) => p.tensor),
    ),
    { ...DEFAULT_OPTIMIZER, name: 'adamw', weightDecay: o2.weightDecay ?? 1e-4 },
  );
  g.output(loss, 'loss');
  const n = trainLabels.length;
  const steps = Math.floor(n / batch);
  const schedule = { lr: o2.lr ?? 1e-2, warmupSteps: steps, totalSteps: steps * epochs, minLrRatio: 0 };
  const spec = new StateSpec(g);
  spec.update(upd, (step) => ({ lr: learningRate(step, schedule), peakLr: schedule.lr }));
  const prog = await StatefulProgram.compile(spec, { device: 'cpu' });
  const rng = new Rng(o2.seed ?? 0);
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const xb = new Float32Array(batch * d);
  const yb = new Float32Array(batch * classes);
  try {
    let step = 0;
    for (let e = 0; e < epochs; e++) {
      rng.shuffle(order);
      for (let s = 0; s < steps; s++, step++) {
        yb.fill(0);
        for (let i = 0; i < batch; i++) {
          const r = order[s * batch + i];
          xb.set(xs.subarray(r * d, (r + 1) * d), i * d);
          yb[i * classes + trainLabels[r]] = 1;
        }
        await prog.step({ [x.name]: xb, [y.name]: yb }, step);
      }
    }
  } finally {
    await prog.release();
  }
  // Score the test split with the learnt weights, in JS.
  const W = prog.state.get(w.name)!;
  const bias = prog.state.get(b.name)!;
  let correct = 0;
  const m = testLabels.length;
  for (let i = 0; i < m; i++) {
    let best = 0;
    let bestScore = -Infinity;
    for (let c = 0; c < classes; c++) {
      let s = bias[c];
      for (let j = 0; j < d; j++) s += W[c * d + j] * xt[i * d + j];
      if (s > bestScore) [best, bestScore] = [c, s];
    }
    if (best === testLabels[i]) correct++;
  }
  return correct / m;
}
