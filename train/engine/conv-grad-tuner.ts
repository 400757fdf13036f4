/**
 * Chooses the conv weight-gradient formulation per layer shape by measuring each candidate on
 * this machine (ENGINE-NOTES: the best one depends on the shape), among the plans whose scratch
 * memory fits the network's budget. Results are cached in the user cache, keyed by shape, thread
 * count and budget, so each shape is measured once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Graph } from './graph.js';
import { Program } from './program.js';
import { medianMs } from './profile.js';
import {
  CONV_GRAD_PLANS,
  convGradKey,
  convWeightGrad,
  planApplies,
  scratchBytes,
  type ConvGradPlan,
  type ConvGradPlanner,
  type ConvGradShape,
} from './conv-grad.js';
import { cacheDir } from '../../core/fs.js';
import { writeFileAtomic } from '../../core/fs.js';

const cacheFile = () => path.join(cacheDir(), 'conv-grad-plans.json');

/** Measurements are only valid against the same set of candidates. */
const CANDIDATES = CONV_GRAD_PLANS.join(',');

function readCache(): Record<string, ConvGradPlan> {
  try {
    const c = JSON.parse(fs.readFileSync(cacheFile(), 'utf8')) as { candidates?: string; plans?: Record<string, ConvGradPlan> };
    return c.candidates === CANDIDATES && c.plans ? c.plans : {};
  } catch {
    return {};
  }
}

/** Median time of `runs` runs of one plan on random data, in ms. */
export async function timePlan(s: ConvGradShape, plan: ConvGradPlan, threads: number, runs = 5): Promise<number> {
  const g = new Graph('train');
  const x = g.input('x', s.x);
  const dy = g.input('dy', s.dy);
  g.output(
    convWeightGrad(x, dy, s.w, { strides: s.strides, pads: s.pads, dilations: s.dilations, group: 1 }, () => plan),
    'dw',
  );
  const prog = await Program.compile(g, { threads });
  const feeds = {
    x: Float32Array.from({ length: s.x.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i)),
    dy: Float32Array.from({ length: s.dy.reduce((a, b) => a * b, 1) }, (_, i) => Math.cos(i)),
  };
  try {
    return await medianMs(() => prog.run(feeds), runs);
  } finally {
    await prog.release();
  }
}

/**
 * The scratch memory one weight gradient may take: five times the largest convolution input of
 * the network (float32). The activations kept for the backward pass, about ten such maps in the
 * convnet and ResNet-18, set a step's memory; a plan that unfolds the largest map nine times over
 * would double it for a few percent of speed.
 */
export function scratchBudget(shapes: Iterable<ConvGradShape>): number {
  let largest = 0;
  for (const s of shapes) largest = Math.max(largest, 4 * s.x.reduce((a, b) => a * b, 1));
  return 5 * largest;
}

/**
 * Measures every shape the planner met that has no measured plan yet (or takes it from the cache)
 * and records the plans in it; returns true when a plan changed (the caller rebuilds its graph).
 */
export async function tuneConvGrads(planner: ConvGradPlanner, o: { threads: number; log?: (l: string) => void }): Promise<boolean> {
  const cache = readCache();
  let changed = false;
  let measured = 0;
  const budget = scratchBudget(planner.seen.values());
  for (const [key, shape] of planner.seen) {
    const ck = `${key}_t${o.threads}_m${Math.round(budget / 2 ** 20)}`;
    let plan: ConvGradPlan = cache[ck];
    if (!plan) {
      const applicable = CONV_GRAD_PLANS.filter((p) => planApplies(p, shape));
      const lean = applicable.filter((p) => scratchBytes(p, shape) <= budget);
      // Where every plan is over the budget, the leanest one.
      const candidates = lean.length ? lean : [applicable.reduce((a, b) => (scratchBytes(b, shape) < scratchBytes(a, shape) ? b : a))];
      // One at a time: concurrent runs would measure each other.
      plan = candidates[0];
      if (candidates.length > 1) {
        let best = Infinity;
        for (const p of candidates) {
          const t = await timePlan(shape, p, o.threads);
          if (t < best) [best, plan] = [t, p];
        }
      }
      cache[ck] = plan!;
      measured++;
    }
    if (planner.plans.get(convGradKey(shape)) !== plan) {
      planner.plans.set(convGradKey(shape), plan);
      changed = true;
    }
  }
  if (measured) {
    o.log?.(`conv weight gradients: measured ${measured} layer shape(s), plans cached in ${cacheFile()}`);
    try {
      writeFileAtomic(cacheFile(), [JSON.stringify({ candidates: CANDIDATES, plans: cache }, null, 1)]);
    } catch {
      // an unwritable cache only means measuring again next time
    }
  }
  return changed;
}
