/**
 * The training step as one ONNX graph: the method's forward pass and loss, reverse-mode
 * gradients, the optimiser update (and the EMA teacher's), compiled into a stateful program
 * (engine/stateful.ts) that owns parameters, buffers and optimiser slots. Built once for the batch
 * shape; the loop hands it views and never names a state tensor.
 */
import { resolveProvider } from '../core/runtime/session.js';
import { OnnxEncoder } from '../core/runtime/onnx-encoder.js';
import { Graph, type Param } from './engine/graph.js';
import { Ctx } from './engine/nn.js';
import { grad } from './engine/autodiff.js';
import { buildUpdate, learningRate, teacherMomentum } from './engine/optim.js';
import { emaUpdate } from './engine/teacher.js';
import { StatefulProgram, StateSpec } from './engine/stateful.js';
import type { Feeds } from './engine/program.js';
import { tuneConvGrads } from './engine/conv-grad-tuner.js';
import { nchwcBlockSize } from './engine/nchwc.js';
import { ConvGradPlanner } from './engine/conv-grad.js';
import * as o from './engine/ops.js';
import { makeBackbone } from './backbones/index.js';
import { getMethod } from './methods/index.js';
import type { ResolvedConfig } from './config.js';

export interface TrainStep {
  /** The compiled step with its state: parameters, buffers, optimiser slots, the EMA teacher. */
  program: StatefulProgram;
  /** The step's inputs for one batch's views. */
  inputs(views: Float32Array[]): Feeds;
  /** The learning rate (and an EMA teacher's momentum) at `step` (0-based), for the metrics. */
  schedule(step: number): { lr: number; teacherMomentum?: number };
}

export async function buildStep(cfg: ResolvedConfig, log: (l: string) => void): Promise<TrainStep> {
  const r = cfg.resolved;
  const provider = await resolveProvider(cfg.device, log);
  const method = getMethod(cfg.method);
  // Only a method that feeds the teacher's embedding needs its size; BoWNet's teacher may have no embedding output at all.
  const teacherDim =
    cfg.teacher && method.teacherEmbedding
      ? await OnnxEncoder.load(cfg.teacher, { log: () => {} }).then(async (t) => (await t.release(), t.dim))
      : undefined;
  const schedule = {
    kind: cfg.lrSchedule ?? 'cosine',
    lr: r.lr,
    warmupSteps: Math.round(cfg.warmupEpochs * r.stepsPerEpoch),
    totalSteps: r.totalSteps,
    minLrRatio: 0,
  };
  const convGrads = new ConvGradPlanner();
  const build = () => {
    const g = new Graph('train');
    const ctx = new Ctx(g, { training: true, seed: cfg.seed, fusedBatchNorm: provider !== 'webgpu', convInit: cfg.convInit });
    const views = r.augment.views.map((v, i) => g.input(`view${i}`, [cfg.batchSize, r.channels, v.size, v.size]));
    const backbone = makeBackbone(cfg.backbone, { width: cfg.width });
    const { loss, monitor } = method.build(ctx, backbone, views, r.hp, {
      batchSize: cfg.batchSize,
      datasetSize: r.trainImages,
      teacherDim,
    });
    const frozen = new Set(cfg.freeze ? (backbone.imported?.parametersUpTo(cfg.freeze) ?? []) : []);
    const trainable = [...g.params].filter(([n, p]) => p.role !== 'buffer' && p.role !== 'teacher' && !frozen.has(n)) as [string, Param][];
    const grads = grad(
      loss,
      trainable.map(([, p]) => p.tensor),
      undefined,
      { convGrads },
    );
    const fixed = method.fixedLrParams?.(r.hp) ?? [];
    const scale = cfg.initLrScale ?? 1;
    const imported = new Set(scale !== 1 ? (backbone.imported?.parameters() ?? []) : []);
    const upd = buildUpdate(
      g,
      trainable,
      grads,
      r.optimizer,
      (n) => fixed.some((prefix) => n.startsWith(prefix)),
      (n) => (imported.has(n) ? scale : 1),
    );
    g.output(loss, 'loss');
    g.output(upd.gradNorm, 'grad_norm');
    g.output(o.stopGradient(monitor), 'monitor');
    const spec = new StateSpec(g);
    spec.update(upd, (step) => ({ lr: learningRate(step, schedule), peakLr: r.lr }));
    for (const [name, next] of ctx.bufferUpdates) spec.carry(name, next);
    // Buffers the graph reads but never rewrites (DeepCluster's prototypes, set between epochs) are state too.
    for (const [name, p] of g.params) if (p.role === 'buffer') spec.hold(name);
    // So are frozen parameters (--freeze): fed each step, never moved.
    for (const name of frozen) if (g.params.has(name)) spec.hold(name);
    let momentum: ((step: number) => number) | undefined;
    if ([...g.params.values()].some((p) => p.role === 'teacher')) {
      const base = method.teacherMomentum?.(r.hp);
      if (base === undefined) throw new TypeError(`method '${method.name}' builds an EMA teacher but gives no teacherMomentum`);
      const ema = emaUpdate(g, upd.params);
      for (const [name, next] of ema.next) spec.carry(name, next);
      const m = (step: number) => teacherMomentum(step, r.totalSteps, base);
      spec.feed((step) => ema.feeds(m(step)));
      momentum = m;
    }
    return { g, trainable, spec, views, momentum };
  };
  let built = build();
  if (cfg.tuneConv && (await tuneConvGrads(convGrads, { threads: cfg.threads, log }))) built = build();
  const t0 = Date.now();
  const block = cfg.nchwc && provider === 'cpu' ? await nchwcBlockSize() : null;
  if (cfg.nchwc && !block)
    log(`--nchwc: no blocked convolution kernels on ${provider === 'cpu' ? 'this processor' : provider}; plain ones`);
  const program = await StatefulProgram.compile(built.spec, {
    device: cfg.device,
    threads: cfg.threads,
    spinning: cfg.workers === 0,
    finiteOutputs: ['loss'],
    nchwc: block ? { block, tune: cfg.tuneConv ? { threads: cfg.threads, log } : undefined } : undefined,
  });
  log(
    `step graph: ${built.g.liveNodes().length} nodes, ${built.trainable.length} trainable tensors, compiled in ${Date.now() - t0} ms on ${program.provider}`,
  );
  const { views, momentum } = built;
  return {
    program,
    inputs: (batch) => Object.fromEntries(views.map((v, i) => [v.name, batch[i]])),
    schedule: (step) => ({ lr: learningRate(step, schedule), ...(momentum ? { teacherMomentum: momentum(step) } : {}) }),
  };
}
