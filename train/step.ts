/**
 * The training step as one ONNX graph: the method's forward pass and loss, reverse-mode
 * gradients, the optimiser update (and the EMA teacher's), with every state tensor (parameters,
 * buffers, optimiser slots) an input whose next value is an output. Built once for the batch
 * shape; `feeds(step)` gives the scalars the graph reads at a step, so the loop never names them.
 */
import { resolveProvider } from '../core/runtime/session.js';
import { OnnxEncoder } from '../core/runtime/onnx-encoder.js';
import { Graph, type Param, type Tensor } from './engine/graph.js';
import { Ctx } from './engine/nn.js';
import { grad } from './engine/autodiff.js';
import { buildUpdate, learningRate, teacherMomentum } from './engine/optim.js';
import { emaUpdate } from './engine/teacher.js';
import { Program } from './engine/program.js';
import { tuneConvGrads } from './engine/conv-grad-tuner.js';
import { ConvGradPlanner } from './engine/conv-grad.js';
import * as o from './engine/ops.js';
import { makeBackbone } from './backbones/index.js';
import { getMethod } from './methods/index.js';
import type { ResolvedConfig } from './config.js';

export interface StepGraph {
  prog: Program;
  /** Every state tensor the step reads and writes back (output `next.<name>`): parameters, buffers, optimiser slots. */
  stateShapes: Map<string, number[]>;
  /** Their values at step 0. */
  initial: Map<string, Float32Array>;
  /** The scalar inputs at `step` (0-based): learning rates, Adam's bias corrections, the teacher's momentum. */
  feeds(step: number): Record<string, number>;
}

export async function buildStep(cfg: ResolvedConfig, log: (l: string) => void): Promise<StepGraph> {
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
    const stateShapes = new Map<string, number[]>();
    const carry = (name: string, next: Tensor, dims: number[]) => {
      g.output(next, `next.${name}`);
      stateShapes.set(name, dims);
    };
    for (const [name, next] of upd.params) carry(name, next, g.params.get(name)!.tensor.dims);
    for (const [name, next] of ctx.bufferUpdates) carry(name, next, g.params.get(name)!.tensor.dims);
    for (const [name, s] of upd.state) carry(name, s.next, s.input.dims);
    // Buffers the graph reads but never rewrites (DeepCluster's prototypes, set between epochs) are state too.
    for (const [name, p] of g.params) if (p.role === 'buffer' && !stateShapes.has(name)) stateShapes.set(name, p.tensor.dims);
    // So are frozen parameters (--freeze): fed each step, never moved.
    for (const name of frozen) if (g.params.has(name)) stateShapes.set(name, g.params.get(name)!.tensor.dims);
    let teacherFeeds = (_step: number): Record<string, number> => ({});
    if ([...g.params.values()].some((p) => p.role === 'teacher')) {
      const base = method.teacherMomentum?.(r.hp);
      if (base === undefined) throw new TypeError(`method '${method.name}' builds an EMA teacher but gives no teacherMomentum`);
      const ema = emaUpdate(g, upd.params);
      for (const [name, next] of ema.next) carry(name, next, g.params.get(name)!.tensor.dims);
      teacherFeeds = (step) => ema.feeds(teacherMomentum(step, r.totalSteps, base));
    }
    const initial = new Map<string, Float32Array>();
    for (const [name, p] of g.params) initial.set(name, p.init.data as Float32Array);
    for (const [name, s] of upd.state) initial.set(name, new Float32Array(s.input.size));
    const feeds = (step: number) => ({ ...upd.feeds(step, learningRate(step, schedule), r.lr), ...teacherFeeds(step) });
    return { g, trainable, stateShapes, initial, feeds };
  };
  let built = build();
  if (cfg.tuneConv && (await tuneConvGrads(convGrads, { threads: cfg.threads, log }))) built = build();
  const t0 = Date.now();
  const prog = await Program.compile(built.g, { device: cfg.device, threads: cfg.threads, spinning: cfg.workers === 0 });
  log(
    `step graph: ${built.g.liveNodes().length} nodes, ${built.trainable.length} trainable tensors, compiled in ${Date.now() - t0} ms on ${prog.provider}`,
  );
  return { prog, stateShapes: built.stateShapes, initial: built.initial, feeds: built.feeds };
}
