/**
 * "Precise BN" (recalibrateBatchNorm) must store the batch statistics themselves: checked on the
 * stem BatchNorm against its input computed by hand (a 3×3 convolution in plain JavaScript).
 * ORT's fused training kernel once returned exactly twice them here, and every checkpoint, kNN
 * check and exported model carried the doubled values.
 */
import { describe, expect, it } from 'vitest';
import { Graph } from '../../train/engine/graph.js';
import { Ctx } from '../../train/engine/nn.js';
import { makeBackbone } from '../../train/backbones/index.js';
import { recalibrateBatchNorm } from '../../train/encoder.js';
import { Rng } from '../../core/random.js';

describe('BatchNorm re-estimation', () => {
  it("stores the stem's batch mean and unbiased variance, as a hand-computed convolution gives them", async () => {
    const [N, C, H, W] = [6, 3, 8, 8];
    const g = new Graph('train');
    makeBackbone('convnet', { width: 0.25 }).build(new Ctx(g, { training: true, seed: 3 }), g.input('x', [N, C, H, W]));
    const values = new Map([...g.params].map(([n, p]) => [n, p.init.data as Float32Array]));
    const rng = new Rng(4);
    const x = Float32Array.from({ length: N * C * H * W }, () => rng.normal());
    const out = await recalibrateBatchNorm({ backbone: 'convnet', widthMult: 0.25, channels: C, height: H, width: W }, values, x, N, {
      batch: N,
      device: 'cpu',
    });
    const w = values.get('stem.conv.weight')!;
    const M = w.length / (C * 9);
    for (let m = 0; m < M; m++) {
      const ys: number[] = [];
      for (let n = 0; n < N; n++)
        for (let i = 0; i < H; i++)
          for (let j = 0; j < W; j++) {
            let acc = 0;
            for (let c = 0; c < C; c++)
              for (let di = -1; di <= 1; di++)
                for (let dj = -1; dj <= 1; dj++) {
                  const [ii, jj] = [i + di, j + dj];
                  if (ii < 0 || jj < 0 || ii >= H || jj >= W) continue;
                  acc += w[((m * C + c) * 3 + di + 1) * 3 + dj + 1] * x[((n * C + c) * H + ii) * W + jj];
                }
            ys.push(acc);
          }
      const mean = ys.reduce((a, b) => a + b, 0) / ys.length;
      const variance = ys.reduce((a, b) => a + (b - mean) ** 2, 0) / (ys.length - 1);
      expect(out.get('stem.bn.running_mean')![m]).toBeCloseTo(mean, 4);
      expect(out.get('stem.bn.running_var')![m] / variance).toBeCloseTo(1, 4);
    }
  });
});
