/** Backbones: shapes, parameter counts, eval-mode inference, and the ViT's gradients end to end. */
import { describe, expect, it } from 'vitest';
import { Graph, type Tensor } from '../../train/engine/graph.js';
import { concat } from '../../train/engine/ops.js';
import { Ctx } from '../../train/engine/nn.js';
import { Program } from '../../train/engine/program.js';
import { makeBackbone } from '../../train/backbones/index.js';
import { checkGradient } from './engine/grad-check.js';

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

  it('vit at a second, smaller size uses its learned position grid resized (2×2 means for half size)', async () => {
    const opts = { width: 0.125, depth: 1, heads: 2 } as never;
    const dim = 16;
    // Values for a 32-px ViT (8×8 grid), from a first build.
    const g0 = new Graph('train');
    makeBackbone('vit', opts).build(new Ctx(g0, { training: false, seed: 5 }), g0.input('x', [1, 3, 32, 32]));
    const values = new Map([...g0.params].map(([n, p]) => [n, p.init.data as Float32Array]));
    const y = Float32Array.from({ length: 3 * 16 * 16 }, (_, i) => Math.cos(i * 0.37));
    const features = async (build: (ctx: Ctx, g: Graph) => Tensor, vals: Map<string, Float32Array>) => {
      const g = new Graph('train');
      g.output(build(new Ctx(g, { training: false, seed: 5, values: vals }), g), 'f');
      const feeds: Record<string, Float32Array> = { y };
      for (const [n, p] of g.params) feeds[n] = p.init.data as Float32Array;
      return (await (await Program.compile(g)).run(feeds)).f as Float32Array;
    };
    // The same backbone built at 32 px, then at 16 px.
    const twoSizes = await features((ctx, g) => {
      const b = makeBackbone('vit', opts);
      b.build(ctx, g.input('x', [1, 3, 32, 32]));
      return b.build(ctx, g.input('y', [1, 3, 16, 16])).features;
    }, values);
    // A 16-px ViT given, by hand, the CLS position and the 2×2 means of the 8×8 grid.
    const pos = values.get('pos_embed')!;
    const small = new Float32Array(17 * dim);
    small.set(pos.subarray(0, dim));
    for (let r = 0; r < 4; r++)
      for (let c = 0; c < 4; c++)
        for (let d = 0; d < dim; d++) {
          let sum = 0;
          for (const [dr, dc] of [
            [0, 0],
            [0, 1],
            [1, 0],
            [1, 1],
          ])
            sum += pos[(1 + (2 * r + dr) * 8 + 2 * c + dc) * dim + d];
          small[(1 + r * 4 + c) * dim + d] = sum / 4;
        }
    const byHand = await features(
      (ctx, g) => makeBackbone('vit', opts).build(ctx, g.input('y', [1, 3, 16, 16])).features,
      new Map([...values, ['pos_embed', small]]),
    );
    Array.from(twoSizes).forEach((v, i) => expect(v).toBeCloseTo(byHand[i], 5));
    // Gradients reach the learned grid through the resize.
    const r = await checkGradient({
      name: 'vit two sizes',
      inputs: { big: [2, 3, 8, 8], small: [2, 3, 4, 4] },
      f: ({ big, small }) => {
        const ctx = new Ctx(big.graph, { training: true, seed: 3 });
        const b = makeBackbone('vit', opts);
        return concat([b.build(ctx, big).features, b.build(ctx, small).features], 0);
      },
      wrt: ['big', 'small', 'pos_embed'],
      eps: 1e-3,
      tol: 2e-2,
    });
    expect(r.details).toEqual([]);
  });
});
