/**
 * A training run's settings: the schema of what a user may set (CLI flags, tests, bench), what a
 * new run resolves from the data and the method (learning rate, optimiser, augmentation,
 * normalisation: all written to RUN/config.json), and what a resumed run may change.
 */
import path from 'node:path';
import { z } from 'zod';
import { UserError } from '../core/errors.js';
import { DEFAULT_TEST_FRACTION } from '../data/datasets.js';
import type { ImageSet } from '../core/image-set.js';
import { DEVICES, type Device } from '../core/runtime/session.js';
import { DEFAULT_OPTIMIZER, LR_SCHEDULES, type OptimizerConfig } from './engine/optim.js';
import { CONV_INITS } from './engine/nn.js';
import { makeBackbone } from './backbones/index.js';
import { resolveHyperParams, type Method } from './methods/index.js';
import { AUGMENT_PRESETS, presetViews, type AugmentConfig, type AugmentPreset } from './augment/presets.js';
import { channelStats } from './augment/views.js';
import type { EncoderSpec } from './encoder.js';
import type { InitModel } from './init.js';
import { SSLKIT_VERSION } from '../core/version.js';

/**
 * An imported encoder learns at a tenth of the heads' rate unless told: on bench/continue it beat
 * the full rate on all three scores (kNN k=200 73.55% against 72.73%, k=20 77.25% against 74.98%,
 * probe 80.40% against 79.13%) and kept the probe above the frozen file's.
 */
export const DEFAULT_INIT_LR_SCALE = 0.1;

export const TrainConfigSchema = z.object({
  method: z.string(),
  data: z.string(),
  dataDir: z.string().optional(),
  backbone: z.string().default('convnet'),
  /** Backbone width multiplier. */
  width: z.number().positive().default(1),
  /** Convolution initialiser; unset, the backbone's own (convnet: PyTorch's default, ResNet: torchvision's). */
  convInit: z.enum(CONV_INITS).optional(),
  epochs: z.number().int().positive().default(10),
  batchSize: z.number().int().min(2).default(256),
  /** Peak learning rate; default: the method's lr per 256 images × batch/256. */
  lr: z.number().positive().optional(),
  optimizer: z.enum(['sgd', 'adamw', 'lars']).optional(),
  weightDecay: z.number().min(0).optional(),
  momentum: z.number().min(0).max(1).default(0.9),
  nesterov: z.boolean().default(false),
  warmupEpochs: z.number().min(0).default(1),
  /** After the warm-up: cosine decay to 0, or a constant learning rate. */
  lrSchedule: z.enum(LR_SCHEDULES).default('cosine'),
  clipGradNorm: z.number().min(0).default(0),
  augment: z.enum(AUGMENT_PRESETS as [AugmentPreset, ...AugmentPreset[]]).optional(),
  /** Smallest random-resized-crop area fraction. */
  cropMinScale: z.number().gt(0).max(1).default(0.2),
  /** Hyper-parameters of the method (`--set key=value`). */
  hp: z.record(z.string(), z.number()).default({}),
  /** A labelled folder without train/ and test/ sub-folders: the share of each class held out, never trained on (0: none). */
  testFraction: z.number().min(0).max(0.9).default(DEFAULT_TEST_FRACTION),
  /** Train on N images only: a seeded sample, stratified by class (quick runs and tests). */
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
  /** An ONNX image encoder to start from (its graph becomes the backbone; the run keeps a copy). */
  init: z.string().optional(),
  /** The starting encoder's preprocessing where its metadata has none: a JSON file. */
  preprocessing: z.string().optional(),
  /** The imported encoder's learning rate as a share of the heads'; a run with --init records DEFAULT_INIT_LR_SCALE when unset. */
  initLrScale: z.number().min(0).optional(),
  /** Put a BatchNorm after each imported convolution that has none (folded at export), starting as the identity; default: where the model has no normalisation at all. */
  insertBatchnorm: z.boolean().optional(),
  /** Train none of the imported parameters read by the nodes up to and including this one (by node name, in the file's order). */
  freeze: z.string().optional(),
  /** Square size images are trained at; default: the starting encoder's, else a folder's first image's shorter side up to 96. */
  imageSize: z.number().int().min(8).max(4096).optional(),
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

/** Settings a resumed run may take anew: how and where it runs, how long, how it is watched, and where its data lives. */
export const RESUMABLE_KEYS = [
  'epochs',
  'dataDir',
  'device',
  'threads',
  'workers',
  'maxSteps',
  'checkpointEvery',
  'tuneConv',
  'knnMemory',
  'knnQueries',
] as const;

/** Everything a new run derives from its data and method. */
export function resolveConfig(input: TrainConfig, trainSet: ImageSet, method: Method, init?: InitModel): ResolvedConfig {
  const hp = resolveHyperParams(method, input.hp);
  const backbone = init?.backbone ?? input.backbone;
  if (!init && (input.freeze !== undefined || input.initLrScale !== undefined || input.insertBatchnorm !== undefined))
    throw new UserError(
      '--freeze, --init-lr-scale and --(no-)insert-batchnorm apply to an imported encoder: give it with --init MODEL.onnx',
    );
  method.validate?.({ backbone, teacher: input.teacher, hp });
  const stepsPerEpoch = Math.floor(trainSet.n / input.batchSize);
  if (stepsPerEpoch < 1) throw new UserError(`batch size ${input.batchSize} is larger than the ${trainSet.n} training images`);
  const augment: AugmentConfig = {
    views: presetViews(input.augment ?? method.augment, trainSet.h, method.views, {
      minScale: input.cropMinScale,
      local: method.localCropsParam ? hp[method.localCropsParam] : 0,
    }),
    // An imported encoder keeps the normalisation it was trained with.
    ...(init ? { mean: init.mean, std: init.std } : channelStats(trainSet)),
  };
  return {
    ...input,
    backbone,
    ...(init ? { initLrScale: input.initLrScale ?? DEFAULT_INIT_LR_SCALE } : {}),
    // Absolute, so that eval, export and resume find the data from any working folder.
    dataDir: input.dataDir && path.resolve(input.dataDir),
    resolved: {
      lr: input.lr ?? (method.optimizer.lrPer256 * input.batchSize) / 256,
      optimizer: {
        ...DEFAULT_OPTIMIZER,
        name: input.optimizer ?? method.optimizer.name,
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
      embeddingDim: makeBackbone(backbone, { width: input.width }).dim,
      sslkitVersion: SSLKIT_VERSION,
    },
  };
}

/**
 * The saved config with the resumable settings of this invocation (RESUMABLE_KEYS; the data dir
 * only when given); more or fewer epochs stretch the cosine schedule to the new end from here on.
 */
export function resumeConfig(saved: ResolvedConfig, input: TrainConfig): ResolvedConfig {
  const cfg: ResolvedConfig = { ...saved };
  for (const k of RESUMABLE_KEYS) if (k !== 'dataDir' || input.dataDir !== undefined) Object.assign(cfg, { [k]: input[k] });
  if (cfg.epochs !== saved.epochs) cfg.resolved = { ...saved.resolved, totalSteps: saved.resolved.stepsPerEpoch * cfg.epochs };
  return cfg;
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
