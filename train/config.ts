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

/**
 * Every default of a run's settings, declared once: the schema below fills them in and the CLI's
 * help shows them. (Unset learning rate, optimiser, weight decay and augmentation are the method's.)
 */
export const TRAIN_DEFAULTS = {
  method: 'simclr',
  data: 'fashion-mnist',
  backbone: 'convnet',
  width: 1,
  epochs: 10,
  batchSize: 256,
  momentum: 0.9,
  nesterov: false,
  warmupEpochs: 1,
  lrSchedule: 'cosine',
  clipGradNorm: 0,
  cropMinScale: 0.2,
  testFraction: DEFAULT_TEST_FRACTION,
  seed: 0,
  device: 'auto',
  threads: 0,
  workers: 1,
  knnMemory: 5000,
  knnQueries: 2000,
  checkpointEvery: 200,
  tuneConv: true,
  nchwc: false,
} as const;

export const TrainConfigSchema = z.object({
  method: z.string().default(TRAIN_DEFAULTS.method),
  data: z.string().default(TRAIN_DEFAULTS.data),
  dataDir: z.string().optional(),
  backbone: z.string().default(TRAIN_DEFAULTS.backbone),
  /** Backbone width multiplier. */
  width: z.number().positive().default(TRAIN_DEFAULTS.width),
  /** Convolution initialiser; unset, the backbone's own (convnet: PyTorch's default, ResNet: torchvision's). */
  convInit: z.enum(CONV_INITS).optional(),
  epochs: z.number().int().positive().default(TRAIN_DEFAULTS.epochs),
  batchSize: z.number().int().min(2).default(TRAIN_DEFAULTS.batchSize),
  /** Peak learning rate; default: the method's lr per 256 images × batch/256. */
  lr: z.number().positive().optional(),
  optimizer: z.enum(['sgd', 'adamw', 'lars']).optional(),
  weightDecay: z.number().min(0).optional(),
  momentum: z.number().min(0).max(1).default(TRAIN_DEFAULTS.momentum),
  nesterov: z.boolean().default(TRAIN_DEFAULTS.nesterov),
  warmupEpochs: z.number().min(0).default(TRAIN_DEFAULTS.warmupEpochs),
  /** After the warm-up: cosine decay to 0, or a constant learning rate. */
  lrSchedule: z.enum(LR_SCHEDULES).default(TRAIN_DEFAULTS.lrSchedule),
  clipGradNorm: z.number().min(0).default(TRAIN_DEFAULTS.clipGradNorm),
  augment: z.enum(AUGMENT_PRESETS as [AugmentPreset, ...AugmentPreset[]]).optional(),
  /** Smallest random-resized-crop area fraction. */
  cropMinScale: z.number().gt(0).max(1).default(TRAIN_DEFAULTS.cropMinScale),
  /** Hyper-parameters of the method (`--set key=value`). */
  hp: z.record(z.string(), z.number()).default({}),
  /** A labelled folder without train/ and test/ sub-folders: the share of each class held out, never trained on (0: none). */
  testFraction: z.number().min(0).max(0.9).default(TRAIN_DEFAULTS.testFraction),
  /** Train on N images only: a seeded sample, stratified by class (quick runs and tests). */
  limit: z.number().int().positive().optional(),
  seed: z.number().int().default(TRAIN_DEFAULTS.seed),
  device: z.enum(DEVICES as [Device, ...Device[]]).default(TRAIN_DEFAULTS.device),
  threads: z.number().int().min(0).default(TRAIN_DEFAULTS.threads),
  workers: z.number().int().min(0).default(TRAIN_DEFAULTS.workers),
  /** kNN check each epoch: memory and query sizes (0 turns it off). */
  knnMemory: z.number().int().min(0).default(TRAIN_DEFAULTS.knnMemory),
  knnQueries: z.number().int().min(0).default(TRAIN_DEFAULTS.knnQueries),
  /** Checkpoint every N steps (and always at the end of an epoch). */
  checkpointEvery: z.number().int().positive().default(TRAIN_DEFAULTS.checkpointEvery),
  /** Stop after this many steps in this invocation (checkpointing first): for tests and chunked jobs. */
  maxSteps: z.number().int().positive().optional(),
  /** Measure the conv weight-gradient formulations per layer shape before training. */
  tuneConv: z.boolean().default(TRAIN_DEFAULTS.tuneConv),
  /** CPU: convolutions on onnxruntime's blocked (NCHWc) kernels where each measures faster (engine/nchwc.ts); same results to ~1e-6. */
  nchwc: z.boolean().default(TRAIN_DEFAULTS.nchwc),
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

/** Settings of one invocation, not of the run: a resumed run takes them anew, the defaults unless given. */
const INVOCATION_KEYS = ['device', 'threads', 'workers', 'maxSteps', 'checkpointEvery', 'tuneConv', 'nchwc'] as const;
/** Settings of the run that a resume may change (more epochs, the data moved, another check); unless given they stay. */
const EXTENDABLE_KEYS = ['epochs', 'dataDir', 'knnMemory', 'knnQueries'] as const;
export const RESUMABLE_KEYS = [...EXTENDABLE_KEYS, ...INVOCATION_KEYS] as const;
export type RunChanges = Partial<Pick<TrainConfig, (typeof RESUMABLE_KEYS)[number]>>;

/** The command-line flag that sets a setting (for messages that must name what the user typed). */
export const flagOf = (key: string): string =>
  key === 'hp' ? '--set' : key === 'tuneConv' ? '--no-tune' : `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** A new run's settings from what a user gave (flags, the API's options): validated, defaults filled in. */
export function parseTrainConfig(given: Record<string, unknown>): TrainConfig {
  return parseSettings(TrainConfigSchema, given);
}

function parseSettings<T extends z.ZodType>(schema: T, given: Record<string, unknown>): z.infer<T> {
  const parsed = schema.safeParse(given);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const key = issue.path[0];
  throw new UserError(`${typeof key === 'string' ? flagOf(key) : 'settings'}: ${issue.message}`);
}

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
 * A resumed run's config: the saved one with what this invocation `given` may change (RESUMABLE_KEYS:
 * the run's epochs, data folder and check unless given stay as saved; the invocation's own settings
 * are the defaults unless given). Giving anything else is an error: the run keeps the settings it
 * was trained with. More or fewer epochs stretch the cosine schedule to the new end from here on.
 */
export function resumeConfig(runDir: string, saved: ResolvedConfig, given: Record<string, unknown>): ResolvedConfig {
  const set = Object.keys(given).filter((k) => given[k] !== undefined);
  const resumable = new Set<string>(RESUMABLE_KEYS);
  // Giving a setting its saved value changes nothing (a script that resumes with the options it started with).
  const fixed = set.filter(
    (k) => !resumable.has(k) && k !== 'out' && !sameSetting(given[k], saved[k as keyof TrainConfig] ?? defaultOf(k)),
  );
  if (fixed.length)
    throw new UserError(
      `${fixed.map(flagOf).join(', ')} cannot change on --resume: the run keeps the settings in ${runDir}/config.json; ` +
        `only ${RESUMABLE_KEYS.map(flagOf).join(', ')} can. Start a new run with --out to change the others`,
    );
  if (given.out !== undefined && path.resolve(String(given.out)) !== path.resolve(runDir))
    throw new UserError(`--out ${String(given.out)} and --resume ${runDir} name different folders: a run resumes in its own`);
  // Only what was given is parsed: the schema's defaults must not stand in for the saved values.
  const keys = set.filter((k) => resumable.has(k)) as (typeof RESUMABLE_KEYS)[number][];
  const changes: RunChanges = parseSettings(
    TrainConfigSchema.pick(Object.fromEntries(keys.map((k) => [k, true])) as Record<(typeof RESUMABLE_KEYS)[number], true>),
    Object.fromEntries(keys.map((k) => [k, given[k]])),
  );
  const cfg: ResolvedConfig = { ...saved };
  for (const k of EXTENDABLE_KEYS) if (changes[k] !== undefined) Object.assign(cfg, { [k]: changes[k] });
  for (const k of INVOCATION_KEYS) Object.assign(cfg, { [k]: changes[k] ?? defaultOf(k) });
  if (cfg.dataDir !== saved.dataDir && cfg.dataDir) cfg.dataDir = path.resolve(cfg.dataDir);
  if (cfg.epochs !== saved.epochs) cfg.resolved = { ...saved.resolved, totalSteps: saved.resolved.stepsPerEpoch * cfg.epochs };
  return cfg;
}

const defaultOf = (key: string): unknown => (TRAIN_DEFAULTS as Record<string, unknown>)[key];

function sameSetting(a: unknown, b: unknown): boolean {
  const canonical = (v: unknown): string =>
    JSON.stringify(v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => x.localeCompare(y))) : v);
  return canonical(a) === canonical(b);
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
