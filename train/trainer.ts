/**
 * The training loop: a new run resolves its config (config.ts) or a resumed one reads it back
 * (run.ts), the step graph is built once (step.ts), then batches from the view loader run through
 * it; each epoch ends with fresh BatchNorm statistics, the held-out kNN check and a checkpoint
 * (monitor.ts). A non-finite loss or parameter stops the run with the last good checkpoint kept,
 * and Ctrl-C stops it after the current step with a checkpoint.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../core/errors.js';
import { sampleSet } from '../core/image-set.js';
import { collapseStd } from '../core/vectors.js';
import { Rng } from '../core/random.js';
import { loadDataset } from '../data/datasets.js';
import { encodeModel } from '../core/onnx/onnx-proto.js';
import { getMethod } from './methods/index.js';
import { ViewLoader } from './augment/loader.js';
import { buildEncoderGraph } from './encoder.js';
import type { Position } from './checkpoint.js';
import { encoderSpec, resolveConfig, resumeConfig, type ResolvedConfig, type TrainConfig } from './config.js';
import { hasCheckpoint, loadRunState, metricsWriter, readRunConfig, saveRunState, writeRunConfig } from './run.js';
import { buildStep } from './step.js';
import { parametersOf } from './engine/stateful.js';
import { DEFAULT_IMAGE_SIZE, prepareInit } from './init.js';
import { batchNormCalibrator, collapseWarning, knnCheck, knnSets, pixelKnn } from './monitor.js';

export interface TrainHooks {
  log?: (line: string) => void;
  /** Called after every step (progress display). */
  onStep?: (s: { step: number; totalSteps: number; epoch: number; loss: number; imgPerSec: number; lr: number }) => void;
  /** Set to true (e.g. on SIGINT) to stop after the current step with a checkpoint. */
  stopRequested?: () => boolean;
  /** Every step's views, the state it started from, its schedule and loss: bench/parity replays them in PyTorch. */
  onStepRun?: (s: {
    step: number;
    views: Float32Array[];
    parameters: Map<string, Float32Array>;
    lr: number;
    teacherMomentum?: number;
    loss: number;
  }) => void;
}

export interface TrainResult {
  runDir: string;
  position: Position;
  finalLoss: number;
  knnTop1: number | null;
  initialKnnTop1: number | null;
  /** The same kNN on raw pixels: the baseline the encoder must beat (null when not measured, or on a resume). */
  pixelsKnnTop1: number | null;
  stopped: 'done' | 'max-steps' | 'interrupted';
  lossHistory: number[];
}

export class TrainingDiverged extends UserError {}

/** Trains a new run in `input.out`. */
export async function train(input: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  const runDir = path.resolve(input.out);
  if (hasCheckpoint(runDir))
    throw new UserError(`${runDir} already holds a run; pass --resume ${input.out} to continue it, or choose another --out`);
  return runTraining({ runDir, input }, hooks);
}

/** Continues the run in `runDir` from its checkpoint; `changes` may set what a resume may change (config.ts resumeConfig). */
export async function resume(runDir: string, changes: Record<string, unknown> = {}, hooks: TrainHooks = {}): Promise<TrainResult> {
  const dir = path.resolve(runDir);
  const saved = readRunConfig(dir);
  return runTraining({ runDir: dir, resumed: resumeConfig(runDir, saved, changes), savedEpochs: saved.epochs }, hooks);
}

async function runTraining(
  run:
    | { runDir: string; input: TrainConfig; resumed?: undefined }
    | { runDir: string; resumed: ResolvedConfig; savedEpochs: number; input?: undefined },
  hooks: TrainHooks,
): Promise<TrainResult> {
  const log = hooks.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const { runDir, resumed } = run;
  const data = resumed ?? run.input;
  // A run that starts from an ONNX encoder trains at its input size, channels and normalisation.
  const init = data.init
    ? await prepareInit({ ...data, init: data.init, insertBatchNorm: data.insertBatchnorm, newRun: !resumed }, runDir, log)
    : undefined;
  let trainSet = await loadDataset(data.data, 'train', {
    dataDir: data.dataDir,
    testFraction: data.testFraction,
    log,
    // A resumed run reads its images at the size it trains at; a new one at the encoder's, the flag's or a folder's default.
    size: resumed?.resolved.imageSize ?? init?.imageSize ?? data.imageSize,
    channels: (resumed?.resolved.channels ?? init?.channels) as 1 | 3 | undefined,
    maxSize: DEFAULT_IMAGE_SIZE,
  });
  // A seeded, class-stratified sample (seed 0 whatever the run's seed: eval's --train-limit N picks the same images).
  trainSet = sampleSet(trainSet, data.limit);
  if (trainSet.h !== trainSet.w) throw new UserError(`${data.data}: images are ${trainSet.h}×${trainSet.w}; square images are expected`);
  let cfg: ResolvedConfig;
  if (resumed) {
    cfg = resumed;
    if (cfg.epochs !== run.savedEpochs) {
      writeRunConfig(runDir, cfg);
      log(`run extended to ${cfg.epochs} epochs`);
    }
  } else {
    cfg = resolveConfig(run.input, trainSet, getMethod(run.input.method), init);
    fs.mkdirSync(runDir, { recursive: true });
    writeRunConfig(runDir, cfg);
  }
  const r = cfg.resolved;
  if (trainSet.c !== r.channels || trainSet.h !== r.imageSize)
    throw new UserError(`${cfg.data}: images are ${trainSet.c}×${trainSet.h}², the run was trained on ${r.channels}×${r.imageSize}²`);
  const method = getMethod(cfg.method);

  const step = await buildStep(cfg, log);
  const program = step.program;
  let pos: Position = { step: 0, epoch: 0, batch: 0 };
  if (resumed) {
    const loaded = loadRunState(runDir, program.shapes);
    program.set(loaded.state);
    pos = loaded.position;
    log(`resuming at step ${pos.step} (epoch ${pos.epoch + 1}, batch ${pos.batch})`);
  }
  const calibrator = batchNormCalibrator(cfg, trainSet);
  const recalibrate = calibrator.recalibrate;
  if (!resumed && init?.insertBatchNorm) {
    // Inserted BatchNorms start as what the file computes on these images (init.ts).
    program.set(await calibrator.calibrateInserted(program.state));
    log('inserted BatchNorms calibrated on plain training images');
  }
  const save = () => saveRunState(runDir, cfg.seed, pos, program.shapes, program.state);
  const writeMetric = metricsWriter(runDir);
  const sets = await knnSets(cfg, trainSet, log);

  let initialKnn: number | null = null;
  let pixelsKnn: number | null = null;
  if (sets && pos.step === 0) {
    // The baseline gets the same BN re-estimation as every later check, so the comparison is fair.
    const k = await knnCheck(cfg, await recalibrate(program.parameters()), sets);
    initialKnn = k.top1;
    pixelsKnn = pixelKnn(cfg, sets);
    writeMetric({ type: 'epoch', epoch: 0, step: 0, knn_top1: k.top1, knn_top1_pixels: pixelsKnn, feature_std: k.collapse });
    log(
      `${cfg.init ? `starting encoder (${cfg.init})` : 'random init'}: kNN top-1 ${(100 * k.top1).toFixed(2)}% (raw pixels ${(100 * pixelsKnn).toFixed(2)}%)`,
    );
  }

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
        encoderOnnx: (st) => encodeModel(buildEncoderGraph({ ...encoderSpec(cfg), featureMap: true }, parametersOf(st), 'N').g.toModel()),
      })
    : null;
  const viewDims = r.augment.views.map((v) => [cfg.batchSize, r.channels, v.size, v.size]);
  const loader = new ViewLoader(trainSet, r.augment, { batchSize: cfg.batchSize, workers: cfg.workers, seed: cfg.seed });
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
        program.set(
          await runtime.onEpochStart({ epoch: pos.epoch, state: program.state, rng: new Rng(stepSeed(cfg.seed, -1 - pos.epoch)) }),
        );
      for await (const batch of loader.epoch(pos.epoch, pos.batch)) {
        const t0 = performance.now();
        const inputs = step.inputs(batch.views);
        if (runtime?.feeds)
          Object.assign(
            inputs,
            await runtime.feeds({
              step: pos.step,
              epoch: pos.epoch,
              totalSteps: r.totalSteps,
              stepsPerEpoch: r.stepsPerEpoch,
              indices: batch.indices,
              views: batch.views,
              viewDims,
              rng: new Rng(stepSeed(cfg.seed, pos.step)),
              state: program.state,
            }),
          );
        const scheduled = step.schedule(pos.step);
        const before = hooks.onStepRun ? program.parameters() : null;
        // A finite loss can still come with overflowed weights: the program commits only a wholly finite state.
        const { out, nonFinite } = await program.step(inputs, pos.step);
        const loss = (out.loss as Float32Array)[0];
        if (nonFinite) {
          save(); // the state from before this step: the last good one
          throw new TrainingDiverged(
            `${nonFinite === 'loss' ? `loss became ${loss}` : `parameter '${nonFinite}' became non-finite (loss ${loss})`} at step ${pos.step + 1} (epoch ${pos.epoch + 1}); stopped and kept the last good checkpoint in ${runDir}. Try a lower --lr (now ${r.lr}) or --clip-grad-norm`,
          );
        }
        if (before) hooks.onStepRun!({ step: pos.step, views: batch.views, parameters: before, ...scheduled, loss });
        const imgPerSec = cfg.batchSize / ((performance.now() - t0) / 1000);
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
          lr: scheduled.lr,
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
        hooks.onStep?.({ step: pos.step, totalSteps: r.totalSteps, epoch: pos.epoch + 1, loss, imgPerSec, lr: scheduled.lr });
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
      program.set(await recalibrate(program.parameters()));
      const m: Record<string, unknown> = {
        type: 'epoch',
        epoch: pos.epoch + 1,
        step: pos.step,
        loss_mean: mean(epochLosses),
        time_s: (Date.now() - tEpoch) / 1000,
      };
      if (epochCollapse.length) {
        m.collapse_std = mean(epochCollapse);
        const warning = collapseWarning(m.collapse_std as number, monitorDim);
        if (warning) log(warning);
      }
      if (sets) {
        const k = await knnCheck(cfg, program.parameters(), sets);
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
    await program.release();
    await runtime?.release?.();
  }
  if (stopped !== 'done') {
    save();
    log(
      `${stopped === 'interrupted' ? 'interrupted' : 'stopped'} at step ${pos.step}; checkpoint written, continue with --resume ${runDir}`,
    );
  }
  return { runDir, position: pos, finalLoss, knnTop1: lastKnn, initialKnnTop1: initialKnn, pixelsKnnTop1: pixelsKnn, stopped, lossHistory };
}

/** A seed for one step's (or epoch's) host-side random draws, independent of how the run was split. */
function stepSeed(seed: number, step: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 2654435761) + Math.imul(step + 1, 40503)) >>> 0;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
