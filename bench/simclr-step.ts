/**
 * The SimCLR training step every benchmark measures: backbone + 256-wide projector, NT-Xent
 * (τ 0.2), reverse-mode backward and an AdamW update in one graph, with feeds of its initial
 * values and deterministic synthetic views.
 */
import { Graph, type Param } from '../train/engine/graph.js';
import { Ctx } from '../train/engine/nn.js';
import { grad } from '../train/engine/autodiff.js';
import type { ConvGradPlanner } from '../train/engine/conv-grad.js';
import { buildUpdate, DEFAULT_OPTIMIZER } from '../train/engine/optim.js';
import { StateSpec } from '../train/engine/stateful.js';
import { makeBackbone } from '../train/backbones/index.js';
import { simclr } from '../train/methods/simclr.js';

export function buildSimclrStep(o: {
  backbone: string;
  batch: number;
  channels: number;
  size: number;
  fusedBatchNorm?: boolean;
  convGrads?: ConvGradPlanner;
}) {
  const g = new Graph('train');
  const ctx = new Ctx(g, { training: true, seed: 0, fusedBatchNorm: o.fusedBatchNorm });
  const views = [0, 1].map((i) => g.input(`view${i}`, [o.batch, o.channels, o.size, o.size]));
  const { loss } = simclr.build(
    ctx,
    makeBackbone(o.backbone),
    views,
    { temperature: 0.2, proj_hidden: 256, proj_out: 128 },
    { batchSize: o.batch, datasetSize: o.batch },
  );
  const trainable = [...g.params].filter(([, p]) => p.role !== 'buffer') as [string, Param][];
  const grads = grad(
    loss,
    trainable.map(([, p]) => p.tensor),
    undefined,
    { convGrads: o.convGrads },
  );
  const upd = buildUpdate(g, trainable, grads, { ...DEFAULT_OPTIMIZER, name: 'adamw' });
  g.output(loss, 'loss');
  const spec = new StateSpec(g);
  spec.update(upd, () => ({ lr: 1e-3, peakLr: 1e-3 }));
  for (const [n, next] of ctx.bufferUpdates) spec.carry(n, next);
  const inputs = Object.fromEntries(views.map((v) => [v.name, Float32Array.from({ length: v.size }, (_, i) => Math.sin(i * 0.37))]));
  // The first step's inputs, rerun as they are by every bench (the state does not move on).
  const feeds = spec.feeds(inputs, 0);
  const nParams = trainable.reduce((a, [, p]) => a + p.tensor.size, 0);
  return { g, feeds, nParams };
}
