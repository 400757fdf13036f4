/** Backbones: shapes, parameter counts, eval-mode inference, and the ViT's gradients end to end. */
import { describe, expect, it } from 'vitest';
import { Graph } from '../../train/engine/graph.js';
import { Ctx } from '../../train/engine/nn.js';
import { Program } from '../../train/engine/program.js';
import { makeBackbone } from '../../train/backbones/index.js';
import { checkGradient } from '../engine/grad-check.js';

function build(name: string, shape: number[], opts = {}) {
  const g = new Graph('train');
  const ctx = new Ctx(g, { training: false, seed: 1 });
  const out = makeBackbone(name, opts).build(ctx, g.input('x', shape));
  const count = [...g.params.values()].filter((p) => p.role !== 'buffer').reduce((a, p) => a + p.tensor.size, 0);
  return { g, out, count };
}

describe('backbones', () => {
  it.each([
    ['convnet', [2, 3, 32, 32], 128, 306_000, 308_000],
    ['resnet10', [2, 3, 32, 32], 512, 4_890_000, 4_910_000],
    ['resnet18', [2, 3, 32, 32], 512, 11_160_000, 11_180_000],
    ['vit', [2, 3, 32, 32], 128, 500_000, 700_000],
  ] as const)('%s: feature size and parameter count', (name, shape, dim, lo, hi) => {
    const { out, count } = build(name, [...shape]);
    expect(out.features.shape).toEqual([2, dim]);
    expect(count).toBeGreaterThanOrEqual(lo);
    expect(count).toBeLessThanOrEqual(hi);
  });

  it('convnet + the reference projector is the 374k-parameter network of ENGINE-NOTES', () => {
    const g = new Graph('train');
    const ctx = new Ctx(g, { training: true, seed: 1 });
    const f = makeBackbone('convnet').build(ctx, g.input('x', [2, 3, 32, 32])).features;
    expect(f.shape).toEqual([2, 128]);
    // 128→256 (BN, ReLU)→128 as in the notes: 128·256 + 256·128 + 128 (last bias) + BN 2·256.
    const head = 128 * 256 + 256 * 128 + 128 + 2 * 256;
    const count = [...g.params.values()].filter((p) => p.role !== 'buffer').reduce((a, p) => a + p.tensor.size, 0);
    expect(count + head).toBeGreaterThan(370_000);
    expect(count + head).toBeLessThan(378_000);
  });

  it('vit exposes the CLS attention over patches per head, a distribution with the CLS self-weight removed', async () => {
    const { g, out } = build('vit', [2, 3, 32, 32], { width: 0.5 });
    expect(out.clsAttention!.shape).toEqual([2, 4, 64]);
    g.output(out.features, 'f');
    g.output(out.clsAttention!, 'attn');
    const prog = await Program.compile(g);
    const feeds: Record<string, Float32Array> = { x: Float32Array.from({ length: 2 * 3 * 1024 }, (_, i) => Math.sin(i * 0.1)) };
    for (const [n, p] of g.params) feeds[n] = p.init.data as Float32Array;
    const r = await prog.run(feeds);
    const attn = r.attn as Float32Array;
    for (let h = 0; h < 8; h++) {
      const row = attn.subarray(h * 64, (h + 1) * 64);
      const sum = row.reduce((a, b) => a + b, 0);
      expect(sum).toBeGreaterThan(0.5);
      expect(sum).toBeLessThan(1);
      expect(Math.min(...row)).toBeGreaterThan(0);
    }
  });

  it('vit gradients (attention, LayerNorm, GELU, CLS, positions) match finite differences', async () => {
    const r = await checkGradient({
      name: 'vit',
      inputs: { x: [2, 3, 8, 8] },
      f: ({ x }) => {
        const ctx = new Ctx(x.graph, { training: true, seed: 3 });
        return makeBackbone('vit', { width: 0.125, depth: 2, heads: 2 } as never).build(ctx, x).features;
      },
      wrt: [
        'x',
        'patch.weight',
        'cls_token',
        'pos_embed',
        'block0.attn.qkv.weight',
        'block1.norm1.weight',
        'block1.mlp.fc1.weight',
        'norm.bias',
      ],
      // Tokens start tiny (std 0.02 initialisers), so the LayerNorms are steep: at ε = 1e-2 the
      // truncation error is ~10%; at 1e-3 it is gone but float32 rounding in four stacked
      // normalisations leaves ~1% (it does not shrink at 3e-4, so it is rounding, not a rule).
      // A wrong rule is off by O(1), so 2% still separates right from wrong.
      eps: 1e-3,
      tol: 2e-2,
    });
    expect(r.details).toEqual([]);
    expect(r.worst).toBeLessThan(2e-2);
  });
});
