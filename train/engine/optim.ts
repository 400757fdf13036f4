/**
 * Optimiser updates as graph nodes, fused into the training step: SGD (momentum, Nesterov),
 * AdamW and LARS. Biases and normalisation parameters get no weight decay and no LARS adaptation.
 * State tensors are graph inputs `opt.<slot>.<param>` whose new values are outputs; the learning
 * rate (and Adam's bias corrections) are scalar inputs fed each step, so one graph serves the
 * whole schedule.
 */
import type { Graph, Param, Tensor } from './graph.js';
import * as o from './ops.js';

export interface OptimizerConfig {
  name: 'sgd' | 'adamw' | 'lars';
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** LARS trust coefficient η. */
  trustCoefficient: number;
  /** Clip the global gradient norm to this value (0 = off). */
  clipGradNorm: number;
}

export const DEFAULT_OPTIMIZER: OptimizerConfig = {
  name: 'adamw',
  momentum: 0.9,
  nesterov: false,
  weightDecay: 1e-6,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  trustCoefficient: 0.001,
  clipGradNorm: 0,
};

/** Optimiser slots are the state inputs `opt.<slot>.<param>`; a checkpoint tells them from parameters by this prefix. */
const SLOT_PREFIX = 'opt.';
export const isOptimizerSlot = (name: string): boolean => name.startsWith(SLOT_PREFIX);

export interface UpdateGraph {
  /** New value of each parameter, by name. */
  params: Map<string, Tensor>;
  /** Optimiser state: input tensor and its new value, by state name. */
  state: Map<string, { input: Tensor; next: Tensor }>;
  /** The global gradient norm before clipping (a metric). */
  gradNorm: Tensor;
  /** The scalar inputs this update reads at a step (0-based) with scheduled rate `lr` and peak `peakLr`. */
  feeds(step: number, lr: number, peakLr: number): Record<string, number>;
}

/**
 * `fixedLr(name)` marks parameters that keep the peak learning rate, fed as `lr_fixed`, instead
 * of the scheduled `lr` (SimSiam's predictor); `lrScale(name)` multiplies a parameter's rate (an
 * imported encoder under new heads).
 */
export function buildUpdate(
  g: Graph,
  params: [string, Param][],
  grads: Tensor[],
  cfg: OptimizerConfig,
  fixedLr: (name: string) => boolean = () => false,
  lrScale: (name: string) => number = () => 1,
): UpdateGraph {
  const scheduled = g.input('lr', []);
  const fixed = params.some(([name]) => fixedLr(name)) ? g.input('lr_fixed', []) : null;
  const gradNorm = o.sqrt(grads.map((d) => o.reduceSumSquare(d)).reduce((a, b) => o.add(a, b)));
  let scale: Tensor | null = null;
  if (cfg.clipGradNorm > 0) scale = o.minimum(o.div(cfg.clipGradNorm, o.add(gradNorm, 1e-6)), 1);
  const bc1 = cfg.name === 'adamw' ? g.input('adam_bc1', []) : null;
  const bc2 = cfg.name === 'adamw' ? g.input('adam_bc2', []) : null;
  const feeds = (step: number, lr: number, peakLr: number): Record<string, number> => ({
    lr,
    ...(fixed ? { lr_fixed: peakLr } : {}),
    // Adam's bias corrections 1 − βᵗ for t = step + 1.
    ...(bc1 ? { adam_bc1: 1 - Math.pow(cfg.beta1, step + 1), adam_bc2: 1 - Math.pow(cfg.beta2, step + 1) } : {}),
  });
  const out: UpdateGraph = { params: new Map(), state: new Map(), gradNorm, feeds };
  params.forEach(([name, prm], i) => {
    const base = fixed && fixedLr(name) ? fixed : scheduled;
    const lr = lrScale(name) === 1 ? base : o.mul(base, lrScale(name));
    const p = prm.tensor;
    let d = scale ? o.mul(grads[i], scale) : grads[i];
    const decay = prm.role === 'weight' && cfg.weightDecay > 0;
    const slot = (s: string) => g.input(`${SLOT_PREFIX}${s}.${name}`, p.dims);
    let next: Tensor;
    if (cfg.name === 'adamw') {
      const m = slot('m');
      const v = slot('v');
      const m2 = o.add(o.mul(m, cfg.beta1), o.mul(d, 1 - cfg.beta1));
      const v2 = o.add(o.mul(v, cfg.beta2), o.mul(o.mul(d, d), 1 - cfg.beta2));
      const step = o.div(o.div(m2, bc1!), o.add(o.sqrt(o.div(v2, bc2!)), cfg.eps));
      const decayed = decay ? o.sub(p, o.mul(p, o.mul(lr, cfg.weightDecay))) : p;
      next = o.sub(decayed, o.mul(step, lr));
      out.state.set(m.name, { input: m, next: m2 });
      out.state.set(v.name, { input: v, next: v2 });
    } else {
      if (decay) d = o.add(d, o.mul(p, cfg.weightDecay));
      if (cfg.name === 'lars' && decay) {
        // trust = η‖p‖ / ‖g + wd·p‖, 1 where either norm is zero.
        const pn = o.reduceL2(p);
        const gn = o.reduceL2(d);
        const ratio = o.div(o.mul(pn, cfg.trustCoefficient), o.maximum(gn, 1e-12));
        const ok = o.cast(o.greater(o.mul(pn, gn), 0), 'float32');
        d = o.mul(d, o.add(o.mul(ratio, ok), o.sub(1, ok)));
      }
      const v = slot('v');
      const v2 = o.add(o.mul(v, cfg.momentum), d);
      const dir = cfg.nesterov ? o.add(d, o.mul(v2, cfg.momentum)) : v2;
      next = o.sub(p, o.mul(dir, lr));
      out.state.set(v.name, { input: v, next: v2 });
    }
    out.params.set(name, next);
  });
  return out;
}

export const LR_SCHEDULES = ['cosine', 'constant'] as const;
export type LrSchedule = (typeof LR_SCHEDULES)[number];

export interface ScheduleConfig {
  /** After the warm-up: cosine decay to minLrRatio·peak (the SSL papers' default), or the peak throughout. */
  kind?: LrSchedule;
  /** Peak learning rate. */
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  /** Final learning rate as a fraction of the peak. */
  minLrRatio: number;
}

/** Linear warm-up to the peak, then cosine decay to minLrRatio·peak (or the peak, for a constant schedule). */
export function learningRate(step: number, s: ScheduleConfig): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (s.kind === 'constant') return s.lr;
  const t = Math.min(1, (step - s.warmupSteps) / Math.max(1, s.totalSteps - s.warmupSteps));
  const min = s.lr * s.minLrRatio;
  return min + 0.5 * (s.lr - min) * (1 + Math.cos(Math.PI * t));
}

/** EMA teacher momentum on a cosine schedule from `base` to 1 (BYOL, DINO). */
export function teacherMomentum(step: number, totalSteps: number, base: number): number {
  return 1 - (1 - base) * 0.5 * (1 + Math.cos((Math.PI * Math.min(step, totalSteps)) / Math.max(1, totalSteps)));
}
