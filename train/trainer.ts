/**
 * The trainer: builds the step graph (forward, reverse-mode backward and optimiser update, one
 * ONNX graph) once for the batch shape, then feeds it batches from the view loader. It writes
 * RUN/config.json (every resolved setting), RUN/metrics.jsonl (a line per step and per epoch) and
 * RUN/checkpoint.ckpt (atomically), checks kNN accuracy on held-out images each epoch, stops on a
 * non-finite loss keeping the last good checkpoint, and checkpoints on Ctrl-C.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { UserError } from '../core/errors.js';
import { strided, subset, type ImageSet } from '../core/image-set.js';
import { collapseStd, knnAccuracy, normalizeRows } from '../core/vectors.js';
import { Rng } from '../core/random.js';
import { OnnxEncoder } from '../export/onnx-encoder.js';
import { DEVICES, resolveProvider, type Device } from '../core/runtime/session.js';
import { Graph, type Param } from './engine/graph.js';
import { Ctx } from './engine/nn.js';
import { grad } from './engine/autodiff.js';
import { buildUpdate, learningRate, teacherMomentum, DEFAULT_OPTIMIZER, type OptimizerConfig } from './engine/optim.js';
import { emaUpdate } from './engine/teacher.js';
import { Program } from './engine/program.js';
import { tuneConvGrads } from './engine/conv-grad-tuner.js';
import { convGradShapesSeen } from './engine/conv-grad.js';
import * as o from './engine/ops.js';
import { makeBackbone } from './backbones/index.js';
import { getMethod, resolveHyperParams } from './methods/index.js';
import { loadDataset } from './data/datasets.js';
import { ViewLoader } from './augment/loader.js';
import { AUGMENT_PRESETS, presetViews, type AugmentConfig, type AugmentPreset } from './augment/presets.js';
import { channelStats, plainImages } from './augment/views.js';
import { buildEncoderGraph, Embedder, recalibrateBatchNorm, type EncoderSpec } from './encoder.js';
import { encodeModel } from '../core/onnx/onnx-proto.js';
import { loadCheckpoint, saveCheckpoint, type Position } from './checkpoint.js';

export const TrainConfigSchema = z.object({
  method: z.string(),
  data: z.string(),
  dataDir: z.string().optional(),
  backbone: z.string().default('convnet'),
  /** Backbone width multiplier. */
  width: z.number().positive().default(1),
  epochs: z.number().int().positive().default(10),
  batchSize: z.number().int().min(2).default(256),
  /** Peak learning rate; default: the method's lr per 256 images × batch/256. */
  lr: z.number().positive().optional(),
  optimizer: z.enum(['sgd', 'adamw', 'lars']).optional(),
  weightDecay: z.number().min(0).optional(),
  momentum: z.number().min(0).max(1).default(0.9),
  nesterov: z.boolean().default(false),
  warmupEpochs: z.number().min(0).default(1),
  clipGradNorm: z.number().min(0).default(0),
  augment: z.enum(AUGMENT_PRESETS as [AugmentPreset, ...AugmentPreset[]]).optional(),
  /** Smallest random-resized-crop area fraction. */
  cropMinScale: z.number().gt(0).max(1).default(0.2),
  /** Hyper-parameters of the method (`--set key=value`). */
  hp: z.record(z.string(), z.number()).default({}),
  /** Train on the first N images only (quick runs and tests). */
  limit: z.number().int().positive().optional(),
  seed: z.number().int().default(0),
  device: z.enum(DEVICES as [Device, ...Device[]]).default('auto'),
  threads: z.number().int().min(0).default(0),
  workers: z.number().int().min(0).default(1),
  /** kNN check each epoch: memory and query sizes (0 turns it off). */
  knnMemory: z.number().int().min(0).default(5000),
  knnQueries: z.number().int().min(0).default(2000),
  /** Checkpoint every N steps (and always at the end of an epoch). */
  checkpointEvery: z.number().int().positive().default(200),
  /** Stop after this many steps in this invocation (checkpointing first): for tests and chunked jobs. */
  maxSteps: z.number().int().positive().optional(),
  /** Measure the conv weight-gradient formulations per layer shape before training. */
  tuneConv: z.boolean().default(true),
  /** A frozen ONNX encoder for methods with a static teacher (distill, bownet). */
  teacher: z.string().optional(),
  out: z.string(),
});
export type TrainConfig = z.infer<typeof TrainConfigSchema>;

/** What config.json holds: the input config plus everything the run resolved. */
export interface ResolvedConfig extends TrainConfig {
  resolved: {
    lr: number;
    optimizer: OptimizerConfig;
    hp: Record<string, number>;
    augment: AugmentConfig;
    channels: number;
    imageSize: number;
    classes: string[];
    trainImages: number;
    stepsPerEpoch: number;
    totalSteps: number;
    embeddingDim: number;
    sslkitVersion: string;
  };
}

export interface TrainHooks {
  log?: (line: string) => void;
  /** Called after every step (progress display). */
  onStep?: (s: { step: number; totalSteps: number; epoch: number; loss: number; imgPerSec: number; lr: number }) => void;
  /** Set to true (e.g. on SIGINT) to stop after the current step with a checkpoint. */
  stopRequested?: () => boolean;
}

export interface TrainResult {
  runDir: string;
  position: Position;
  finalLoss: number;
  knnTop1: number | null;
  initialKnnTop1: number | null;
  stopped: 'done' | 'max-steps' | 'interrupted';
  lossHistory: number[];
}

export class TrainingDiverged extends UserError {}

const CKPT = 'checkpoint.ckpt';

export function readRunConfig(runDir: string): ResolvedConfig {
  const file = path.join(runDir, 'config.json');
  if (!fs.existsSync(file)) throw new UserError(`${runDir}: not a run folder (no config.json)`);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as ResolvedConfig;
}

interface StepGraph {
  prog: Program;
  trainable: string[];
  /** Every state tensor the step reads and writes back: parameters, buffers, optimiser slots. */
  stateShapes: Map<string, number[]>;
  initial: Map<string, Float32Array>;
  /** The method trains an EMA teacher: feed `teacher_momentum` each step. */
  hasTeacher: boolean;
  /** Some parameters keep the peak learning rate: feed `lr_fixed`. */
  hasFixedLr: boolean;
}

async function buildStep(cfg: ResolvedConfig, log: (l: string) => void): Promise<StepGraph> {
  const r = cfg.resolved;
  const provider = await resolveProvider(cfg.device, log);
  const method = getMethod(cfg.method);
  // Only a method that feeds the teacher's embedding needs its size; BoWNet's teacher may have no embedding output at all.
  const teacherDim =
    cfg.teacher && method.teacherEmbedding
      ? await OnnxEncoder.load(cfg.teacher, { log: () => {} }).then(async (t) => (await t.release(), t.dim))
      : undefined;
  const build = () => {
    convGradShapesSeen.clear();
    const g = new Graph('train');
    const ctx = new Ctx(g, { training: true, seed: cfg.seed, fusedBatchNorm: provider !== 'webgpu' });
    const views = r.augment.views.map((v, i) => g.input(`view${i}`, [cfg.batchSize, r.channels, v.size, v.size]));
    const backbone = makeBackbone(cfg.backbone, { width: cfg.width });
    const { loss, monitor } = method.build(ctx, backbone, views, r.hp, {
      batchSize: cfg.batchSize,
      datasetSize: r.trainImages,
      teacherDim,
    });
    const trainable = [...g.params].filter(([, p]) => p.role !== 'buffer' && p.role !== 'teacher') as [string, Param][];
    const grads = grad(
      loss,
      trainable.map(([, p]) => p.tensor),
    );
    const fixed = method.fixedLrParams?.(r.hp) ?? [];
    const upd = buildUpdate(g, trainable, grads, r.optimizer, (n) => fixed.some((prefix) => n.startsWith(prefix)));
    g.output(loss, 'loss');
    g.output(upd.gradNorm, 'grad_norm');
    g.output(o.stopGradient(monitor), 'monitor');
    const stateShapes = new Map<string, number[]>();
    for (const [name, next] of upd.params) {
      g.output(next, `next.${name}`);
      stateShapes.set(name, g.params.get(name)!.tensor.dims);
    }
    for (const [name, next] of ctx.bufferUpdates) {
      g.output(next, `next.${name}`);
      stateShapes.set(name, g.params.get(name)!.tensor.dims);
    }
    for (const [name, s] of upd.state) {
      g.output(s.next, `next.${name}`);
      stateShapes.set(name, s.input.dims);
    }
    // Buffers the graph reads but never rewrites (DeepCluster's prototypes, set between epochs) are state too.
    for (const [name, p] of g.params) if (p.role === 'buffer' && !stateShapes.has(name)) stateShapes.set(name, p.tensor.dims);
    const hasTeacher = [...g.params.values()].some((p) => p.role === 'teacher');
    if (hasTeacher) {
      if (!method.teacherMomentum) throw new TypeError(`method '${method.name}' builds an EMA teacher but gives no teacherMomentum`);
      for (const [name, next] of emaUpdate(g, upd.params).next) {
        g.output(next, `next.${name}`);
        stateShapes.set(name, g.params.get(name)!.tensor.dims);
      }
    }
    const initial = new Map<string, Float32Array>();
    for (const [name, p] of g.params) initial.set(name, p.init.data as Float32Array);
    for (const [name, s] of upd.state) initial.set(name, new Float32Array(s.input.size));
    const hasFixedLr = g.inputs.some((t) => t.name === 'lr_fixed');
    return { g, trainable: trainable.map(([n]) => n), stateShapes, initial, hasTeacher, hasFixedLr };
  };
  let built = build();
  const hasTeacher = built.hasTeacher;
  if (cfg.tuneConv) {
    const changed = await tuneConvGrads({ threads: cfg.threads, log });
    if (changed) built = build();
  }
  const t0 = Date.now();
  const prog = await Program.compile(built.g, { device: cfg.device, threads: cfg.threads, spinning: cfg.workers === 0 });
  log(
    `step graph: ${built.g.liveNodes().length} nodes, ${built.trainable.length} trainable tensors, compiled in ${Date.now() - t0} ms on ${prog.provider}`,
  );
  return {
    prog,
    trainable: built.trainable,
    stateShapes: built.stateShapes,
    initial: built.initial,
    hasTeacher,
    hasFixedLr: built.hasFixedLr,
  };
}

export function encoderSpec(cfg: ResolvedConfig): EncoderSpec {
  return {
    backbone: cfg.backbone,
    widthMult: cfg.width,
    channels: cfg.resolved.channels,
    height: cfg.resolved.imageSize,
    width: cfg.resolved.imageSize,
  };
}

/** kNN top-1 of the encoder on held-out images (k = 200, weights exp(cos/0.1)). */
async function knnCheck(
  cfg: ResolvedConfig,
  values: Map<string, Float32Array>,
  mem: ImageSet,
  queries: ImageSet,
): Promise<{ top1: number; collapse: number }> {
  const emb = await Embedder.create(encoderSpec(cfg), values, { batch: 256, device: cfg.device, threads: cfg.threads });
  try {
    const { mean, std } = cfg.resolved.augment;
    const m = normalizeRows(await emb.embed(plainImages(mem, mean, std), mem.n), emb.dim);
    const q = normalizeRows(await emb.embed(plainImages(queries, mean, std), queries.n), emb.dim);
    const top1 = knnAccuracy(m, mem.labels!, q, queries.labels!, emb.dim, {
      k: Math.min(200, mem.n),
      temperature: 0.1,
      classes: cfg.resolved.classes.length,
    });
    return { top1, collapse: collapseStd(q, emb.dim) };
  } finally {
    await emb.release();
  }
}

export async function train(input: TrainConfig, hooks: TrainHooks = {}, resumeFrom?: string): Promise<TrainResult> {
  const log = hooks.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const dataLog = (l: string) => log(`warning: ${l}`);
  let cfg: ResolvedConfig;
  let trainSet = await loadDataset(input.data, 'train', { dataDir: input.dataDir, log: dataLog });
  if (input.limit)
    trainSet = subset(
      trainSet,
      Int32Array.from({ length: Math.min(input.limit, trainSet.n) }, (_, i) => i),
    );
  if (trainSet.h !== trainSet.w) throw new UserError(`${input.data}: images are ${trainSet.h}×${trainSet.w}; square images are expected`);
  const method = getMethod(input.method);
  const runDir = path.resolve(input.out);

  if (resumeFrom) {
    const saved = readRunConfig(resumeFrom);
    cfg = { ...saved, maxSteps: input.maxSteps, device: input.device, threads: input.threads, workers: input.workers };
    if (input.epochs !== saved.epochs) {
      // More (or fewer) epochs: the cosine schedule is stretched to the new end from here on.
      cfg.epochs = input.epochs;
      cfg.resolved = { ...saved.resolved, totalSteps: saved.resolved.stepsPerEpoch * input.epochs };
      fs.writeFileSync(path.join(runDir, 'config.json'), `${JSON.stringify(cfg, null, 2)}\n`);
      log(`run extended to ${input.epochs} epochs`);
    }
  } else {
    if (fs.existsSync(path.join(runDir, CKPT)))
      throw new UserError(`${runDir} already holds a run; pass --resume ${input.out} to continue it, or choose another --out`);
    const hp = resolveHyperParams(method, input.hp);
    method.validate?.({ backbone: input.backbone, teacher: input.teacher, hp });
    const optName = input.optimizer ?? method.optimizer.name;
    const lr = input.lr ?? (method.optimizer.lrPer256 * input.batchSize) / 256;
    const stepsPerEpoch = Math.floor(trainSet.n / input.batchSize);
    if (stepsPerEpoch < 1) throw new UserError(`batch size ${input.batchSize} is larger than the ${trainSet.n} training images`);
    const stats = channelStats(trainSet);
    const augment: AugmentConfig = {
      views: presetViews(input.augment ?? method.augment, trainSet.h, method.views, {
        minScale: input.cropMinScale,
        local: method.localCropsParam ? hp[method.localCropsParam] : 0,
      }),
      ...stats,
    };
    const backbone = makeBackbone(input.backbone, { width: input.width });
    cfg = {
      ...input,
      resolved: {
        lr,
        optimizer: {
          ...DEFAULT_OPTIMIZER,
          name: optName,
          momentum: input.momentum,
          nesterov: input.nesterov,
          weightDecay: input.weightDecay ?? method.optimizer.weightDecay,
          clipGradNorm: input.clipGradNorm,
        },
        hp,
        augment,
        channels: trainSet.c,
        imageSize: trainSet.h,
        classes: trainSet.classes,
        trainImages: trainSet.n,
        stepsPerEpoch,
        totalSteps: stepsPerEpoch * input.epochs,
        embeddingDim: backbone.dim,
        sslkitVersion: '0.1.0',
      },
    };
    fs.mkdirSync(runDir, { recursive: true });
    fs.writeFileSync(path.join(runDir, 'config.json'), `${JSON.stringify(cfg, null, 2)}\n`);
  }
  const r = cfg.resolved;
  if (trainSet.c !== r.channels || trainSet.h !== r.imageSize)
    throw new UserError(`${cfg.data}: images are ${trainSet.c}×${trainSet.h}², the run was trained on ${r.channels}×${r.imageSize}²`);

  const step = await buildStep(cfg, log);
  const state = new Map(step.initial);
  let pos: Position = { step: 0, epoch: 0, batch: 0 };
  if (resumeFrom) {
    const ck = loadCheckpoint(path.join(resumeFrom, CKPT));
    for (const [name, shape] of step.stateShapes) {
      const t = ck.tensors.get(name);
      if (!t) throw new UserError(`${resumeFrom}: checkpoint lacks '${name}' (a different method or backbone?)`);
      if (t.data.length !== shape.reduce((a, b) => a * b, 1))
        throw new UserError(`${resumeFrom}: checkpoint tensor '${name}' has the wrong size`);
      state.set(name, t.data);
    }
    pos = ck.position;
    log(`resuming at step ${pos.step} (epoch ${pos.epoch + 1}, batch ${pos.batch})`);
  }

  // Held-out kNN check: memory from the train split, queries from the test split.
  let knnSets: { mem: ImageSet; queries: ImageSet } | null = null;
  if (cfg.knnMemory > 0 && cfg.knnQueries > 0 && trainSet.labels) {
    try {
      const test = await loadDataset(cfg.data, 'test', { dataDir: cfg.dataDir, log: dataLog });
      if (test.labels) knnSets = { mem: strided(trainSet, cfg.knnMemory), queries: strided(test, cfg.knnQueries) };
    } catch (e) {
      log(`kNN check off: ${(e as Error).message}`);
    }
  }
  const metricsFile = path.join(runDir, 'metrics.jsonl');
  const writeMetric = (m: Record<string, unknown>) => fs.appendFileSync(metricsFile, `${JSON.stringify(m)}\n`);
  const params = () => new Map([...state].filter(([n]) => !n.startsWith('opt.')));
  // Un-augmented training images for the end-of-epoch BatchNorm re-estimation.
  const bnImages = strided(trainSet, Math.min(2048, trainSet.n));
  const bnSample = { images: plainImages(bnImages, r.augment.mean, r.augment.std), n: bnImages.n };
  const recalibrate = () =>
    recalibrateBatchNorm(encoderSpec(cfg), params(), bnSample.images, bnSample.n, { device: cfg.device, threads: cfg.threads });

  let initialKnn: number | null = null;
  if (knnSets && pos.step === 0) {
    // The baseline gets the same BN re-estimation as every later check, so the comparison is fair.
    const k = await knnCheck(cfg, await recalibrate(), knnSets.mem, knnSets.queries);
    initialKnn = k.top1;
    writeMetric({ type: 'epoch', epoch: 0, step: 0, knn_top1: k.top1, feature_std: k.collapse });
    log(`random init: kNN top-1 ${(100 * k.top1).toFixed(2)}%`);
  }

  const save = () =>
    saveCheckpoint(path.join(runDir, CKPT), {
      position: pos,
      seed: cfg.seed,
      tensors: new Map([...step.stateShapes].map(([n, shape]) => [n, { shape, data: state.get(n)! }])),
    });

  const runtime = method.runtime
    ? await method.runtime({
        hp: r.hp,
        teacher: cfg.teacher,
        device: cfg.device,
        threads: cfg.threads,
        datasetSize: r.trainImages,
        batchSize: cfg.batchSize,
        channels: r.channels,
        imageSize: r.imageSize,
        mean: r.augment.mean,
        std: r.augment.std,
        seed: cfg.seed,
        log,
        epochs: cfg.epochs,
        runDir,
        encoderOnnx: (st) => {
          const values = new Map([...st].filter(([n]) => !n.startsWith('opt.')));
          return encodeModel(buildEncoderGraph({ ...encoderSpec(cfg), featureMap: true }, values, 'N').g.toModel());
        },
      })
    : null;
  const viewDims = r.augment.views.map((v) => [cfg.batchSize, r.channels, v.size, v.size]);
  const loader = new ViewLoader(trainSet, r.augment, { batchSize: cfg.batchSize, workers: cfg.workers, seed: cfg.seed });
  const schedule = { lr: r.lr, warmupSteps: Math.round(cfg.warmupEpochs * r.stepsPerEpoch), totalSteps: r.totalSteps, minLrRatio: 0 };
  const lossHistory: number[] = [];
  let lastKnn: number | null = initialKnn;
  let stopped: TrainResult['stopped'] = 'done';
  let runSteps = 0;
  let finalLoss = NaN;
  let monitorDim = 1;
  try {
    outer: while (pos.epoch < cfg.epochs) {
      const epochLosses: number[] = [];
      const epochCollapse: number[] = [];
      const tEpoch = Date.now();
      if (runtime?.onEpochStart && pos.batch === 0)
        for (const [name, v] of await runtime.onEpochStart({ epoch: pos.epoch, state, rng: new Rng(stepSeed(cfg.seed, -1 - pos.epoch)) }))
          state.set(name, v);
      for await (const batch of loader.epoch(pos.epoch, pos.batch)) {
        const t0 = performance.now();
        const lr = learningRate(pos.step, schedule);
        const feeds: Record<string, Float32Array | BigInt64Array | number> = { lr };
        if (step.hasFixedLr) feeds.lr_fixed = r.lr;
        batch.views.forEach((v, i) => (feeds[`view${i}`] = v));
        for (const name of step.stateShapes.keys()) feeds[name] = state.get(name)!;
        if (runtime?.feeds)
          Object.assign(
            feeds,
            await runtime.feeds({
              step: pos.step,
              epoch: pos.epoch,
              totalSteps: r.totalSteps,
              stepsPerEpoch: r.stepsPerEpoch,
              indices: batch.indices,
              views: batch.views,
              viewDims,
              rng: new Rng(stepSeed(cfg.seed, pos.step)),
              state,
            }),
          );
        if (step.hasTeacher) feeds.teacher_momentum = teacherMomentum(pos.step, r.totalSteps, method.teacherMomentum!(r.hp));
        if (r.optimizer.name === 'adamw') {
          feeds.adam_bc1 = 1 - Math.pow(r.optimizer.beta1, pos.step + 1);
          feeds.adam_bc2 = 1 - Math.pow(r.optimizer.beta2, pos.step + 1);
        }
        const out = await step.prog.run(feeds);
        const loss = (out.loss as Float32Array)[0];
        // A finite loss can still come with overflowed weights; commit only a wholly finite state.
        const bad = !Number.isFinite(loss)
          ? 'loss'
          : [...step.stateShapes.keys()].find((n) => out[`next.${n}`] && !allFinite(out[`next.${n}`] as Float32Array));
        if (bad) {
          save(); // the state from before this step: the last good one
          throw new TrainingDiverged(
            `${bad === 'loss' ? `loss became ${loss}` : `parameter '${bad}' became non-finite (loss ${loss})`} at step ${pos.step + 1} (epoch ${pos.epoch + 1}); stopped and kept the last good checkpoint in ${runDir}. Try a lower --lr (now ${r.lr}) or --clip-grad-norm`,
          );
        }
        for (const name of step.stateShapes.keys()) if (out[`next.${name}`]) state.set(name, out[`next.${name}`] as Float32Array);
        const dt = (performance.now() - t0) / 1000;
        const imgPerSec = cfg.batchSize / dt;
        pos = { step: pos.step + 1, epoch: pos.epoch, batch: batch.index + 1 };
        runSteps++;
        finalLoss = loss;
        lossHistory.push(loss);
        epochLosses.push(loss);
        const metric: Record<string, unknown> = {
          type: 'step',
          step: pos.step,
          epoch: pos.epoch + 1,
          loss,
          lr,
          grad_norm: (out.grad_norm as Float32Array)[0],
          img_s: +imgPerSec.toFixed(1),
        };
        // The collapse monitor on the method's embeddings (projector output), every 10 steps.
        if (pos.step % 10 === 1) {
          const mon = out.monitor as Float32Array;
          monitorDim = mon.length / (cfg.batchSize * batch.views.length);
          metric.collapse_std = collapseStd(mon, monitorDim);
          epochCollapse.push(metric.collapse_std as number);
        }
        writeMetric(metric);
        hooks.onStep?.({ step: pos.step, totalSteps: r.totalSteps, epoch: pos.epoch + 1, loss, imgPerSec, lr });
        if (pos.step % cfg.checkpointEvery === 0) save();
        if (hooks.stopRequested?.()) {
          stopped = 'interrupted';
          break outer;
        }
        if (cfg.maxSteps && runSteps >= cfg.maxSteps) {
          stopped = 'max-steps';
          break outer;
        }
      }
      // End of epoch: precise BN statistics, kNN check, collapse monitor, checkpoint.
      for (const [name, v] of await recalibrate()) state.set(name, v);
      const m: Record<string, unknown> = {
        type: 'epoch',
        epoch: pos.epoch + 1,
        step: pos.step,
        loss_mean: mean(epochLosses),
        time_s: (Date.now() - tEpoch) / 1000,
      };
      if (epochCollapse.length) {
        // Healthy ≈ 1/√d; a fall towards 0 means every image maps to nearly the same point.
        m.collapse_std = mean(epochCollapse);
        const healthy = 1 / Math.sqrt(monitorDim);
        if ((m.collapse_std as number) < 0.2 * healthy)
          log(
            `warning: embeddings are collapsing (mean per-dimension std ${(m.collapse_std as number).toExponential(2)}, healthy ≈ ${healthy.toFixed(3)})`,
          );
      }
      if (knnSets) {
        const k = await knnCheck(cfg, params(), knnSets.mem, knnSets.queries);
        lastKnn = k.top1;
        m.knn_top1 = k.top1;
        // The same statistic on backbone features of test images (post-ReLU, so lower than 1/√d).
        m.feature_std = k.collapse;
      }
      writeMetric(m);
      log(
        `epoch ${pos.epoch + 1}/${cfg.epochs}: loss ${mean(epochLosses).toFixed(4)}` +
          (m.knn_top1 !== undefined ? `, kNN top-1 ${(100 * (m.knn_top1 as number)).toFixed(2)}%` : ''),
      );
      pos = { step: pos.step, epoch: pos.epoch + 1, batch: 0 };
      save();
    }
  } finally {
    await loader.close();
    await step.prog.release();
    await runtime?.release?.();
  }
  if (stopped !== 'done') {
    save();
    log(
      `${stopped === 'interrupted' ? 'interrupted' : 'stopped'} at step ${pos.step}; checkpoint written, continue with --resume ${runDir}`,
    );
  }
  return { runDir, position: pos, finalLoss, knnTop1: lastKnn, initialKnnTop1: initialKnn, stopped, lossHistory };
}

/** A seed for one step's (or epoch's) host-side random draws, independent of how the run was split. */
function stepSeed(seed: number, step: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 2654435761) + Math.imul(step + 1, 40503)) >>> 0;
}

function allFinite(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
  return true;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

/** Parameter values of a run's latest checkpoint (optimiser state left out). */
export function runParameters(runDir: string): Map<string, Float32Array> {
  const ck = loadCheckpoint(path.join(runDir, CKPT));
  return new Map([...ck.tensors].filter(([n]) => !n.startsWith('opt.')).map(([n, t]) => [n, t.data]));
}
