/**
 * The blocked (NCHWc) convolution path against the plain one: the same graph, forward and every
 * gradient, compiled both ways, agree within 1e-5 relative; and the rewrite really happened.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Graph, tensorData } from '../../../train/engine/graph.js';
import { grad } from '../../../train/engine/autodiff.js';
import { Program } from '../../../train/engine/program.js';
import { blockConvs, NCHWC_DOMAIN, nchwcBlockSize } from '../../../train/engine/nchwc.js';
import * as o from '../../../train/engine/ops.js';
import { train } from '../../../train/trainer.js';
import { TrainConfigSchema } from '../../../train/config.js';
import { FASHION_DIR, hasFashion, isolatedCache, tmpDir } from '../../helpers.js';

const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 0.3);

/** Three convolutions as a ResNet stage has them (3×3, 3×3 stride 2, 1×1), a loss and its gradients. */
function convGraph() {
  const g = new Graph('train');
  const x = g.input('x', [4, 32, 8, 8]);
  const w1 = g.param('w1', tensorData('float32', [32, 32, 3, 3], values(32 * 32 * 9, 1)));
  const w2 = g.param('w2', tensorData('float32', [64, 32, 3, 3], values(64 * 32 * 9, 2)));
  const w3 = g.param('w3', tensorData('float32', [32, 64, 1, 1], values(32 * 64, 3)));
  const b2 = g.param('b2', tensorData('float32', [64], values(64, 4)), 'bias');
  const h1 = o.relu(o.conv(x, w1, null, { pads: [1, 1, 1, 1] }));
  const h2 = o.relu(o.conv(h1, w2, b2, { pads: [1, 1, 1, 1], strides: [2, 2] }));
  const h3 = o.conv(h2, w3, null);
  const loss = o.reduceSum(o.mul(h3, g.constant(tensorData('float32', h3.dims, values(h3.size, 5)), 'r')));
  const wrt = [x, w1, w2, w3, b2];
  const grads = grad(loss, wrt);
  g.output(loss, 'loss');
  grads.forEach((d, i) => g.output(d, `d_${wrt[i].name}`));
  const feeds = {
    x: values(4 * 32 * 64, 6),
    w1: values(32 * 32 * 9, 1),
    w2: values(64 * 32 * 9, 2),
    w3: values(32 * 64, 3),
    b2: values(64, 4),
  };
  return { g, feeds };
}

describe('NCHWc convolutions', () => {
  isolatedCache();
  let block: number | null = null;
  beforeAll(async () => {
    block = await nchwcBlockSize();
  });

  it('rewrites the ungrouped convolutions, and forward and gradients equal the plain path', async (ctx) => {
    if (!block) return ctx.skip(); // a processor or build without MLAS's NCHWc kernels
    const { g, feeds } = convGraph();
    const dims = new Map<string, number[]>();
    for (const n of g.liveNodes()) for (const t of [...n.inputs, ...n.outputs]) if (t) dims.set(t.name, t.dims);
    const blocked = blockConvs(g.toModel(), dims, block);
    // Forward convolutions and the stride-1 input gradients (plain Convs too) all take the blocked kernel.
    expect(blocked.graph.node.filter((n) => n.domain === NCHWC_DOMAIN && n.op_type === 'Conv').length).toBeGreaterThanOrEqual(4);
    const plain = await Program.compile(g, { threads: 1 });
    const fast = await Program.compile(g, { threads: 1, nchwc: { block } });
    const want = await plain.run(feeds);
    const got = await fast.run(feeds);
    await plain.release();
    await fast.release();
    for (const name of plain.outputNames) {
      const a = got[name] as Float32Array;
      const b = want[name] as Float32Array;
      const scale = Math.max(...b.map(Math.abs));
      const worst = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
      expect(worst / scale, name).toBeLessThan(1e-5);
    }
  });

  it('leaves a model alone when no convolution qualifies', () => {
    const { g } = convGraph();
    const m = g.toModel();
    expect(blockConvs(m, new Map(), 16)).toBe(m); // no shapes known: nothing to rewrite
  });

  it.runIf(hasFashion)(
    'a training run with --nchwc follows the plain run’s losses (every layer measured, then blocked or not)',
    async (ctx) => {
      if (!block) return ctx.skip();
      const cfg = (nchwc: boolean) =>
        TrainConfigSchema.parse({
          method: 'simclr',
          data: 'fashion-mnist',
          dataDir: FASHION_DIR,
          width: 0.5, // 16, 32 and 64 channels: multiples of the block
          epochs: 1,
          batchSize: 32,
          limit: 128,
          optimizer: 'adamw',
          lr: 1e-3,
          knnMemory: 0,
          device: 'cpu',
          threads: 1,
          tuneConv: true,
          nchwc,
          out: tmpDir(),
        });
      const lines: string[] = [];
      const plain = await train(cfg(false), { log: () => {} });
      const fast = await train(cfg(true), { log: (l) => lines.push(l) });
      expect(lines.join('\n')).toMatch(/convolutions: measured \d+ shape\(s\) plain against blocked/);
      expect(fast.lossHistory).toHaveLength(plain.lossHistory.length);
      // Another summation order: ~1e-7 per convolution, grown over the steps to ~1e-4 of the loss.
      fast.lossHistory.forEach((l, i) => expect(Math.abs(l - plain.lossHistory[i]) / plain.lossHistory[i]).toBeLessThan(3e-4));
    },
    120_000,
  );
});
