/**
 * The learning-parity fixes (issue 13): the convnet starts from PyTorch's default convolution
 * initialisation, ResNet from torchvision's, either can be chosen, and a constant learning-rate
 * schedule exists for recipes that use one.
 */
import { describe, expect, it } from 'vitest';
import { Graph } from '../../train/engine/graph.js';
import { Ctx, type ConvInit } from '../../train/engine/nn.js';
import { learningRate } from '../../train/engine/optim.js';
import { makeBackbone } from '../../train/backbones/index.js';

function convWeights(backbone: string, convInit?: ConvInit) {
  const g = new Graph('train');
  makeBackbone(backbone).build(new Ctx(g, { training: true, seed: 0, convInit }), g.input('x', [2, 3, 32, 32]));
  return [...g.params]
    .filter(([n, p]) => n.endsWith('conv1.weight') && p.tensor.rank === 4)
    .map(([n, p]) => ({ n, dims: p.tensor.dims, w: p.init.data as Float32Array }));
}

const stats = (w: Float32Array) => {
  const mean = w.reduce((a, b) => a + b, 0) / w.length;
  return { std: Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length), max: w.reduce((a, b) => Math.max(a, Math.abs(b)), 0) };
};

describe('convolution initialisation', () => {
  it("convnet: nn.Conv2d's default, U(±1/√fan_in), std 1/√(3·fan_in)", () => {
    for (const { n, dims, w } of convWeights('convnet')) {
      const fanIn = dims[1] * dims[2] * dims[3];
      const { std, max } = stats(w);
      expect(max, n).toBeLessThanOrEqual(1 / Math.sqrt(fanIn));
      expect(std / (1 / Math.sqrt(3 * fanIn)), n).toBeCloseTo(1, 1);
    }
  });

  it("resnet18: torchvision's kaiming_normal_(fan_out, relu), std √(2/fan_out)", () => {
    for (const { n, dims, w } of convWeights('resnet18')) {
      const fanOut = dims[0] * dims[2] * dims[3];
      expect(stats(w).std / Math.sqrt(2 / fanOut), n).toBeCloseTo(1, 1);
    }
  });

  it('--conv-init overrides the backbone: convnet with kaiming-fan-out is √6× larger on a square 3×3 layer', () => {
    const def = convWeights('convnet').find((c) => c.n === 'stage1.conv1.weight')!;
    const kaiming = convWeights('convnet', 'kaiming-fan-out').find((c) => c.n === 'stage1.conv1.weight')!;
    expect(stats(kaiming.w).std / stats(def.w).std).toBeCloseTo(Math.sqrt(6), 0);
  });
});

describe('learning-rate schedule', () => {
  const s = { lr: 1e-3, warmupSteps: 10, totalSteps: 100, minLrRatio: 0 };
  it('warms up linearly, then decays on a cosine to 0 by default', () => {
    expect(learningRate(0, s)).toBeCloseTo(1e-4, 10);
    expect(learningRate(9, s)).toBeCloseTo(1e-3, 10);
    expect(learningRate(55, s)).toBeCloseTo(5e-4, 10);
    expect(learningRate(100, s)).toBeCloseTo(0, 10);
  });
  it('constant: the peak after the warm-up, to the last step', () => {
    const c = { ...s, kind: 'constant' as const };
    expect(learningRate(0, c)).toBeCloseTo(1e-4, 10);
    for (const step of [10, 55, 99, 100]) expect(learningRate(step, c)).toBe(1e-3);
    expect(learningRate(0, { ...c, warmupSteps: 0 })).toBe(1e-3);
  });
});
