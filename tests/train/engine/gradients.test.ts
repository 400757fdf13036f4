/**
 * Every vector-Jacobian rule against central finite differences (see grad-check.ts for the
 * tolerance argument), on random inputs with strided, padded, uneven and broadcast shapes.
 * Ops with kinks (Relu, Abs, Clip, Max) sample inputs away from the kink so that ±ε never
 * crosses it.
 */
import { describe, expect, it } from 'vitest';
import { checkGradient, type GradCase } from './grad-check.js';
import * as o from '../../../train/engine/ops.js';
import { grad } from '../../../train/engine/autodiff.js';
import { Graph, tensorData, type Tensor } from '../../../train/engine/graph.js';
import { Program } from '../../../train/engine/program.js';
import { CONV_GRAD_PLANS, ConvGradPlanner, type ConvGradPlan } from '../../../train/engine/conv-grad.js';
import type { Rng } from '../../../core/random.js';
import { Ctx, batchNorm as nnBatchNorm, conv2d, mlp } from '../../../train/engine/nn.js';
import { ntXent } from '../../../train/losses/nt-xent.js';

const awayFromZero = (rng: Rng) => (rng.next() < 0.5 ? -1 : 1) * rng.uniform(0.1, 2);
const positive = (rng: Rng) => rng.uniform(0.5, 2);
/** Distinct values at least 0.015 apart (up to 257 of them): no pooling window has a near-tie that ±ε could flip. */
const spaced = (rng: Rng, _name: string, i: number) => ((i * 37) % 257) * 0.02 + rng.uniform(0, 0.005);
const int64 = (x: Tensor, values: number[], shape = [values.length]) => x.graph.constant(tensorData('int64', shape, values));
const constF = (x: Tensor, shape: number[], values: number[]) => x.graph.constant(tensorData('float32', shape, values));

const cases: GradCase[] = [
  // broadcasting arithmetic
  { name: 'Add broadcast', inputs: { a: [2, 3, 4], b: [3, 1] }, f: ({ a, b }) => o.add(a, b) },
  { name: 'Sub broadcast', inputs: { a: [2, 1, 4], b: [3, 4] }, f: ({ a, b }) => o.sub(a, b) },
  { name: 'Mul broadcast', inputs: { a: [2, 3, 4], b: [4] }, f: ({ a, b }) => o.mul(a, b) },
  {
    name: 'Div broadcast',
    inputs: { a: [2, 3], b: [2, 1] },
    f: ({ a, b }) => o.div(a, b),
    sample: (r, n) => (n === 'b' ? positive(r) : r.normal()),
  },
  { name: 'Pow', inputs: { a: [3, 4], b: [1] }, f: ({ a, b }) => o.pow(a, b), sample: (r) => positive(r) },
  // elementwise
  { name: 'Neg', inputs: { x: [3, 5] }, f: ({ x }) => o.neg(x) },
  { name: 'Abs', inputs: { x: [3, 5] }, f: ({ x }) => o.abs(x), sample: awayFromZero },
  { name: 'Sqrt', inputs: { x: [3, 5] }, f: ({ x }) => o.sqrt(x), sample: positive },
  { name: 'Exp', inputs: { x: [3, 5] }, f: ({ x }) => o.exp(x) },
  { name: 'Log', inputs: { x: [3, 5] }, f: ({ x }) => o.log(x), sample: positive },
  { name: 'Relu', inputs: { x: [4, 5] }, f: ({ x }) => o.relu(x), sample: awayFromZero },
  { name: 'Sigmoid', inputs: { x: [4, 5] }, f: ({ x }) => o.sigmoid(x) },
  { name: 'Tanh', inputs: { x: [4, 5] }, f: ({ x }) => o.tanh(x) },
  { name: 'Softplus', inputs: { x: [4, 5] }, f: ({ x }) => o.softplus(x) },
  { name: 'Erf', inputs: { x: [4, 5] }, f: ({ x }) => o.erf(x) },
  { name: 'Gelu (composite)', inputs: { x: [4, 5] }, f: ({ x }) => o.gelu(x) },
  {
    name: 'Clip',
    inputs: { x: [4, 6] },
    f: ({ x }) => o.clip(x, -0.5, 0.5),
    sample: (r) => [-1.5, -0.2, 0.1, 0.3, 1.2][r.int(5)] + r.uniform(-0.05, 0.05),
  },
  {
    name: 'Max',
    inputs: { a: [3, 4], b: [4] },
    f: ({ a, b }) => o.maximum(a, b),
    sample: (r, n) => (n === 'a' ? r.uniform(-2, -1) + 3 * r.int(2) : r.uniform(0, 0.5)),
  },
  {
    name: 'Where',
    inputs: { a: [3, 4], b: [4] },
    f: ({ a, b }) => o.where(o.greater(constF(a, [3, 4], [1, -1, 2, -2, 3, -3, 1, 1, -1, -1, 2, 0.5]), 0), a, b),
  },
  // products
  { name: 'MatMul 2-D', inputs: { a: [5, 3], b: [3, 4] }, f: ({ a, b }) => o.matmul(a, b) },
  { name: 'MatMul batched', inputs: { a: [2, 5, 3], b: [2, 3, 4] }, f: ({ a, b }) => o.matmul(a, b) },
  { name: 'MatMul N-D @ 2-D', inputs: { a: [2, 3, 5, 3], b: [3, 4] }, f: ({ a, b }) => o.matmul(a, b) },
  { name: 'MatMul broadcast batch', inputs: { a: [2, 5, 3], b: [1, 3, 4] }, f: ({ a, b }) => o.matmul(a, b) },
  {
    name: 'Gemm transA transB alpha beta C',
    inputs: { a: [3, 5], b: [4, 3], c: [4] },
    f: ({ a, b, c }) => o.gemm(a, b, { transA: true, transB: true, alpha: 0.7, beta: 1.3, c }),
  },
  { name: 'Gemm plain', inputs: { a: [5, 3], b: [3, 4], c: [5, 4] }, f: ({ a, b, c }) => o.gemm(a, b, { c }) },
  // reductions and softmax
  { name: 'ReduceSum keepdims', inputs: { x: [2, 3, 4] }, f: ({ x }) => o.reduceSum(x, [1], true) },
  { name: 'ReduceSum all', inputs: { x: [2, 3, 4] }, f: ({ x }) => o.reduceSum(x) },
  { name: 'ReduceMean', inputs: { x: [2, 3, 4] }, f: ({ x }) => o.reduceMean(x, [0, 2]) },
  { name: 'ReduceMax', inputs: { x: [3, 5] }, f: ({ x }) => o.reduceMax(x, [1], false), sample: spaced },
  { name: 'ReduceSumSquare', inputs: { x: [3, 5] }, f: ({ x }) => o.reduceSumSquare(x, [-1], true) },
  { name: 'ReduceL2', inputs: { x: [3, 5] }, f: ({ x }) => o.reduceL2(x, [1]) },
  { name: 'Softmax axis 1', inputs: { x: [3, 5, 2] }, f: ({ x }) => o.softmax(x, 1) },
  { name: 'LogSoftmax', inputs: { x: [4, 6] }, f: ({ x }) => o.logSoftmax(x, -1) },
  { name: 'l2normalize (composite)', inputs: { x: [4, 6] }, f: ({ x }) => o.l2normalize(x, 1) },
  // shape ops
  { name: 'Transpose', inputs: { x: [2, 3, 4] }, f: ({ x }) => o.transpose(x, [2, 0, 1]) },
  { name: 'Reshape', inputs: { x: [2, 3, 4] }, f: ({ x }) => o.reshape(x, [4, -1]) },
  { name: 'Flatten', inputs: { x: [2, 3, 2, 2] }, f: ({ x }) => o.flatten(x) },
  { name: 'Unsqueeze', inputs: { x: [2, 3] }, f: ({ x }) => o.unsqueeze(x, [0, 2]) },
  { name: 'Concat', inputs: { a: [2, 3], b: [2, 5] }, f: ({ a, b }) => o.concat([a, b, a], 1) },
  {
    name: 'Split',
    inputs: { x: [2, 7] },
    f: ({ x }) => {
      const [p, , r] = o.split(x, [2, 3, 2], 1);
      return o.concat([r, p], 1);
    },
  },
  { name: 'Slice negative', inputs: { x: [4, 6] }, f: ({ x }) => o.slice(x, [1, -4], [3, -1], [0, 1]) },
  { name: 'Pad', inputs: { x: [2, 3] }, f: ({ x }) => o.pad(x, [1, 0, 0, 2]) },
  { name: 'Gather axis 0 repeated', inputs: { x: [5, 3] }, f: ({ x }) => o.gather(x, int64(x, [0, 2, 2, 4]), 0) },
  { name: 'Gather axis 1 2-D indices', inputs: { x: [3, 5, 2] }, f: ({ x }) => o.gather(x, int64(x, [1, 1, 4, 0], [2, 2]), 1) },
  { name: 'Expand', inputs: { x: [3, 1] }, f: ({ x }) => o.expand(x, [2, 3, 4]) },
  // convolution and pooling
  {
    name: 'Conv 3x3 pad 1',
    inputs: { x: [2, 3, 6, 6], w: [4, 3, 3, 3], b: [4] },
    f: ({ x, w, b }) => o.conv(x, w, b, { pads: [1, 1, 1, 1] }),
  },
  {
    name: 'Conv strided uneven pads',
    inputs: { x: [2, 3, 7, 6], w: [4, 3, 3, 3], b: [4] },
    f: ({ x, w, b }) => o.conv(x, w, b, { strides: [2, 2], pads: [1, 0, 1, 1] }),
  },
  {
    name: 'Conv dilated',
    inputs: { x: [1, 2, 8, 7], w: [3, 2, 3, 2] },
    f: ({ x, w }) => o.conv(x, w, null, { dilations: [2, 2], pads: [2, 1, 2, 1] }),
  },
  {
    name: 'Conv groups 2',
    inputs: { x: [2, 4, 5, 5], w: [6, 2, 3, 3] },
    f: ({ x, w }) => o.conv(x, w, null, { group: 2, pads: [1, 1, 1, 1] }),
  },
  {
    // One input channel per group: the per-tap weight gradient (conv-grad.ts depthwiseWeightGrad).
    name: 'Conv depthwise, channel multiplier 2, strided, dilated, uneven pads',
    inputs: { x: [2, 3, 9, 8], w: [6, 1, 3, 3] },
    f: ({ x, w }) => o.conv(x, w, null, { group: 3, strides: [2, 1], dilations: [2, 1], pads: [2, 1, 1, 0] }),
  },
  { name: 'Conv 1x1', inputs: { x: [2, 4, 5, 3], w: [3, 4, 1, 1] }, f: ({ x, w }) => o.conv(x, w, null) },
  { name: 'Conv 1x1 strided', inputs: { x: [2, 4, 5, 5], w: [3, 4, 1, 1] }, f: ({ x, w }) => o.conv(x, w, null, { strides: [2, 2] }) },
  {
    name: 'ConvTranspose stride 2',
    inputs: { x: [2, 3, 4, 3], w: [3, 2, 3, 3], b: [2] },
    f: ({ x, w, b }) => o.convTranspose(x, w, { strides: [2, 2], pads: [1, 1, 1, 1], outputPadding: [1, 0], bias: b }),
  },
  { name: 'MaxPool 2x2', inputs: { x: [2, 3, 6, 6] }, f: ({ x }) => o.maxPool(x, [2, 2]), sample: spaced, eps: 1e-3 },
  {
    name: 'MaxPool 3x3 s2 p1 overlapping',
    inputs: { x: [1, 2, 7, 7] },
    f: ({ x }) => o.maxPool(x, [3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }),
    sample: spaced,
    eps: 1e-3,
  },
  {
    name: 'AveragePool excl. pad',
    inputs: { x: [2, 2, 7, 6] },
    f: ({ x }) => o.averagePool(x, [3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }),
  },
  {
    name: 'AveragePool incl. pad',
    inputs: { x: [1, 2, 5, 5] },
    f: ({ x }) => o.averagePool(x, [3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], countIncludePad: true }),
  },
  { name: 'GlobalAveragePool', inputs: { x: [2, 3, 4, 5] }, f: ({ x }) => o.globalAveragePool(x) },
  {
    name: 'Resize nearest x2 asymmetric',
    inputs: { x: [1, 2, 3, 4] },
    f: ({ x }) => o.resize(x, [6, 8], { mode: 'nearest', coordinateTransformationMode: 'asymmetric', nearestMode: 'floor' }),
  },
  {
    name: 'Resize nearest half_pixel uneven',
    inputs: { x: [1, 2, 3, 5] },
    f: ({ x }) => o.resize(x, [7, 4], { mode: 'nearest', coordinateTransformationMode: 'half_pixel' }),
  },
  {
    name: 'Resize linear half_pixel',
    inputs: { x: [2, 1, 4, 3] },
    f: ({ x }) => o.resize(x, [8, 5], { mode: 'linear', coordinateTransformationMode: 'half_pixel' }),
  },
  {
    name: 'Resize linear align_corners down',
    inputs: { x: [1, 2, 6, 5] },
    f: ({ x }) => o.resize(x, [4, 3], { mode: 'linear', coordinateTransformationMode: 'align_corners' }),
  },
  // normalisation
  {
    name: 'BatchNormalization train NCHW',
    inputs: { x: [4, 3, 3, 2], g: [3], b: [3] },
    f: ({ x, g, b }) => o.batchNorm(x, g, b, constF(x, [3], [0, 0, 0]), constF(x, [3], [1, 1, 1]), { training: true }).y,
  },
  {
    name: 'BatchNormalization train N×C',
    inputs: { x: [6, 5], g: [5], b: [5] },
    f: ({ x, g, b }) => o.batchNorm(x, g, b, constF(x, [5], [0, 0, 0, 0, 0]), constF(x, [5], [1, 1, 1, 1, 1]), { training: true }).y,
  },
  {
    name: 'BatchNorm composed (no fused kernel) NCHW',
    inputs: { x: [4, 3, 3, 2], g: [3], b: [3] },
    f: ({ x, g, b }) => o.batchNorm(x, g, b, constF(x, [3], [0, 0, 0]), constF(x, [3], [1, 1, 1]), { training: true, fused: false }).y,
  },
  {
    name: 'BatchNormalization eval',
    inputs: { x: [2, 3, 2, 2], g: [3], b: [3] },
    f: ({ x, g, b }) => o.batchNorm(x, g, b, constF(x, [3], [0.1, -0.2, 0.3]), constF(x, [3], [0.5, 2, 1.5]), { training: false }).y,
  },
  { name: 'LayerNormalization last axis', inputs: { x: [2, 3, 6], g: [6], b: [6] }, f: ({ x, g, b }) => o.layerNorm(x, g, b) },
  {
    name: 'LayerNormalization two axes',
    inputs: { x: [2, 3, 4], g: [3, 4], b: [3, 4] },
    f: ({ x, g, b }) => o.layerNorm(x, g, b, { axis: 1 }),
  },
];

describe('vector-Jacobian rules match central finite differences', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const r = await checkGradient(c);
    expect(r.details).toEqual([]);
    expect(r.worst).toBeLessThan(c.tol ?? 2e-3);
  });

  const plans: ConvGradPlan[] = CONV_GRAD_PLANS;
  it.each(plans)('conv weight-gradient plan %s', async (plan) => {
    const env = { convGrads: new ConvGradPlanner(plan) };
    {
      const shapes: GradCase[] = [
        {
          name: `${plan} 3x3 s2`,
          inputs: { x: [2, 3, 7, 6], w: [4, 3, 3, 3] },
          wrt: ['w'],
          f: ({ x, w }) => o.conv(x, w, null, { strides: [2, 2], pads: [1, 0, 1, 1] }),
        },
        {
          name: `${plan} 3x3 uneven pads`,
          inputs: { x: [2, 3, 6, 5], w: [4, 3, 3, 3] },
          wrt: ['w'],
          f: ({ x, w }) => o.conv(x, w, null, { pads: [1, 0, 0, 2] }),
        },
        { name: `${plan} 1x1`, inputs: { x: [2, 4, 5, 3], w: [3, 4, 1, 1] }, wrt: ['w'], f: ({ x, w }) => o.conv(x, w, null) },
        {
          name: `${plan} dilated`,
          inputs: { x: [1, 2, 8, 7], w: [3, 2, 3, 2] },
          wrt: ['w'],
          f: ({ x, w }) => o.conv(x, w, null, { dilations: [2, 2], pads: [2, 1, 2, 1] }),
        },
        {
          name: `${plan} 1x1 s2`,
          inputs: { x: [2, 4, 5, 5], w: [3, 4, 1, 1] },
          wrt: ['w'],
          f: ({ x, w }) => o.conv(x, w, null, { strides: [2, 2] }),
        },
      ];
      for (const c of shapes) expect((await checkGradient({ ...c, env })).details).toEqual([]);
      expect(env.convGrads.seen.size).toBeGreaterThan(0);
    }
  });

  it('the check fails on a wrong gradient (stop-gradient hides half of d(x·x))', async () => {
    const r = await checkGradient({ name: 'x·sg(x)', inputs: { x: [3, 4] }, f: ({ x }) => o.mul(x, o.stopGradient(x)) });
    expect(r.worst).toBeGreaterThan(0.3);
  });
});

describe('ties at a kink share the gradient, as PyTorch does', () => {
  /** ∂ Σ f(a, b) / ∂a and ∂b at given values. */
  async function gradsAt(f: (a: Tensor, b: Tensor) => Tensor, a: number[], b: number[], bShape = [b.length]) {
    const g = new Graph('train');
    const [ta, tb] = [g.input('a', [a.length]), g.input('b', bShape)];
    const [ga, gb] = grad(o.reduceSum(f(ta, tb)), [ta, tb]);
    g.output(ga, 'ga');
    g.output(gb, 'gb');
    const out = await (await Program.compile(g)).run({ a: Float32Array.from(a), b: Float32Array.from(b) });
    return [Array.from(out.ga as Float32Array), Array.from(out.gb as Float32Array)];
  }
  const a = [1, 2, 3, 4, 5, 6];
  const b = [1, 0, 3, 9, 5, 0];

  it('Max and Min: the winner takes the gradient, a tie is halved (torch.maximum / torch.minimum)', async () => {
    expect(await gradsAt(o.maximum, a, b)).toEqual([
      [0.5, 1, 0.5, 0, 0.5, 1],
      [0.5, 0, 0.5, 1, 0.5, 0],
    ]);
    expect(await gradsAt(o.minimum, a, b)).toEqual([
      [0.5, 0, 0.5, 1, 0.5, 0],
      [0.5, 1, 0.5, 0, 0.5, 1],
    ]);
    // Broadcast: b's gradient sums over the elements it met, halves where they tied.
    expect(await gradsAt(o.maximum, [1, 3, 3, 5], [3], [1])).toEqual([[0, 0.5, 0.5, 1], [2]]);
  });

  it('ReduceMax: tied maxima share the gradient equally (torch.amax)', async () => {
    const [gx] = await gradsAt((x, y) => o.add(o.reduceMax(x, [0], true), o.mul(y, 0)), [1, 3, 3, 2, 3], [0]);
    expect(gx).toEqual([0, 1 / 3, 1 / 3, 0, 1 / 3].map(Math.fround));
  });
});

describe('whole networks match finite differences', () => {
  // Smooth activations (tanh) keep ±ε away from kinks, so any disagreement is a real error in how
  // rules compose: shared inputs, several BatchNorms in one graph, residual sums, strided blocks.
  // This caught onnxruntime writing BatchNorm's running-stat outputs over a constant shared by
  // every BN node after constant folding (see ops.batchNorm).
  const net = (x: Tensor) => {
    const c = new Ctx(x.graph, { training: true, seed: 7 });
    const block = (name: string, h: Tensor, out: number, stride: number) => {
      let y = o.tanh(nnBatchNorm(c, `${name}.bn1`, conv2d(c, `${name}.conv1`, h, out, { kernel: 3, stride, padding: 1 })));
      y = nnBatchNorm(c, `${name}.bn2`, conv2d(c, `${name}.conv2`, y, out, { kernel: 3, padding: 1 }));
      const short =
        stride === 1 && out === h.shape[1]
          ? h
          : nnBatchNorm(c, `${name}.down.bn`, conv2d(c, `${name}.down`, h, out, { kernel: 1, stride }));
      return o.tanh(o.add(y, short));
    };
    let h = o.tanh(nnBatchNorm(c, 'stem.bn', conv2d(c, 'stem', x, 4, { kernel: 3, padding: 1 })));
    h = block('s1', h, 4, 1);
    h = block('s2', h, 6, 2);
    const f = o.reshape(o.globalAveragePool(h), [0, -1]);
    return ntXent(mlp(c, 'proj', f, { dims: [12, 5], norm: 'batch' }), 0.5);
  };
  it('residual tanh network + BN projector + NT-Xent: every parameter', async () => {
    const r = await checkGradient({
      name: 'net',
      inputs: { x: [8, 2, 6, 6] },
      f: ({ x }) => net(x),
      wrt: [
        'x',
        'stem.weight',
        's1.conv1.weight',
        's1.bn1.weight',
        's2.conv1.weight',
        's2.down.weight',
        's2.bn2.bias',
        'proj.0.weight',
        'proj.1.weight',
      ],
      // This net is curved enough (BN over 8 samples) that ε = 1e-2 truncation shows (≈5%);
      // at 1e-3 truncation is 100× smaller and rounding still below the 2e-3 tolerance.
      eps: 1e-3,
    });
    expect(r.details).toEqual([]);
  });
});

describe('BatchNorm, fused and composed', () => {
  it('give the same output, batch mean and biased variance', async () => {
    const g = new Graph('train');
    const x = g.input('x', [4, 3, 5, 2]);
    const c = (v: number) => g.constant(tensorData('float32', [3], [v, v, v]));
    const gamma = g.constant(tensorData('float32', [3], [0.5, 1, 2]));
    const beta = g.constant(tensorData('float32', [3], [0.1, -0.2, 0.3]));
    const f = o.batchNorm(x, gamma, beta, c(0), c(1), { training: true });
    const u = o.batchNorm(x, gamma, beta, c(0), c(1), { training: true, fused: false });
    for (const [k, t] of Object.entries({ fy: f.y, fm: f.mean!, fv: f.var!, uy: u.y, um: u.mean!, uv: u.var! })) g.output(t, k);
    const prog = await Program.compile(g);
    const r = await prog.run({ x: Float32Array.from({ length: 120 }, (_, i) => Math.sin(i) * (1 + (i % 3))) });
    for (const k of ['y', 'm', 'v'])
      (r[`f${k}`] as Float32Array).forEach((v, i) => expect(v).toBeCloseTo((r[`u${k}`] as Float32Array)[i], 5));
  });
});
