/**
 * Chooses the conv weight-gradient formulation per layer shape by measuring each candidate on
 * this machine (ENGINE-NOTES: the best one depends on the shape). Results are cached in the user
 * cache, keyed by shape and thread count, so each shape is measured once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Graph } from './graph.js';
import { Program } from './program.js';
import {
  CONV_GRAD_PLANS,
  convGradKey,
  convWeightGrad,
  planApplies,
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
  await prog.run(feeds); // grows the arena
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await prog.run(feeds);
    times.push(performance.now() - t);
  }
  await prog.release();
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)];
}

/**
 * Measures every shape the planner met that has no measured plan yet (or takes it from the cache)
 * and records the plans in it; returns true when a plan changed (the caller rebuilds its graph).
 */
export async function tuneConvGrads(planner: ConvGradPlanner, o: { threads: number; log?: (l: string) => void }): Promise<boolean> {
  const cache = readCache();
  let changed = false;
  let measured = 0;
  for (const [key, shape] of planner.seen) {
    const ck = `${key}_t${o.threads}`;
    let plan: ConvGradPlan = cache[ck];
    if (!plan) {
      const candidates = CONV_GRAD_PLANS.filter((p) => planApplies(p, shape));
      // One at a time: concurrent runs would measure each other.
      let best = Infinity;
      for (const p of candidates) {
        const t = await timePlan(shape, p, o.threads);
        if (t < best) [best, plan] = [t, p];
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
