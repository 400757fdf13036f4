/** The conv weight-gradient tuner measures each new layer shape once and caches its choice. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Graph } from '../../../train/engine/graph.js';
import { conv } from '../../../train/engine/ops.js';
import { grad } from '../../../train/engine/autodiff.js';
import { reduceSum } from '../../../train/engine/ops.js';
import { CONV_GRAD_PLANS, ConvGradPlanner, scratchBytes } from '../../../train/engine/conv-grad.js';
import { scratchBudget, tuneConvGrads } from '../../../train/engine/conv-grad-tuner.js';
import { isolatedCache } from '../../helpers.js';

describe('conv weight-gradient tuner', () => {
  it('measures the shapes a graph met, caches the fastest plan per shape, and does not measure again', async () => {
    const dir = isolatedCache();
    const planner = new ConvGradPlanner();
    const g = new Graph('train');
    const x = g.input('x', [4, 3, 10, 10]);
    const w = g.input('w', [5, 3, 3, 3]);
    const w1 = g.input('w1', [2, 5, 1, 1]);
    grad(reduceSum(conv(conv(x, w, null, { pads: [1, 1, 1, 1] }), w1, null)), [w, w1], undefined, { convGrads: planner });
    expect(planner.seen.size).toBe(2);
    const logs: string[] = [];
    expect(await tuneConvGrads(planner, { threads: 1, log: (l) => logs.push(l) })).toBe(true);
    expect(logs[0]).toMatch(/measured 2 layer shape\(s\)/);
    const cache = JSON.parse(fs.readFileSync(path.join(dir, 'conv-grad-plans.json'), 'utf8'));
    expect(cache.candidates).toBe(CONV_GRAD_PLANS.join(','));
    const plans = Object.values(cache.plans) as string[];
    expect(plans).toHaveLength(2);
    for (const p of plans) expect(CONV_GRAD_PLANS).toContain(p);
    expect([...planner.plans.values()]).toEqual(expect.arrayContaining(plans));
    // Only plans within the scratch budget (5 × the largest input, 40 kB here) are candidates:
    // the 3×3 layer's im2col (101 kB) is not, its shifted products (20 kB) are.
    const budget = scratchBudget(planner.seen.values());
    expect(budget).toBe(5 * 4 * (4 * 5 * 10 * 10));
    for (const [key, shape] of planner.seen) expect(scratchBytes(planner.plans.get(key)!, shape)).toBeLessThanOrEqual(budget);
    logs.length = 0;
    expect(await tuneConvGrads(planner, { threads: 1, log: (l) => logs.push(l) })).toBe(false);
    expect(logs).toEqual([]);
  });
});
