/**
 * What a self-supervised method is to the trainer: how many views it needs, which augmentation
 * preset, its hyper-parameters with defaults, and how to build its loss from the views.
 */
import type { Ctx } from '../engine/nn.js';
import type { Tensor } from '../engine/graph.js';
import type { Backbone } from '../backbones/index.js';
import type { AugmentPreset } from '../augment/presets.js';
import type { Rng } from '../../core/random.js';
import type { Device } from '../../core/runtime/session.js';

export interface MethodParam {
  default: number;
  help: string;
}

export interface MethodBuild {
  loss: Tensor;
  /** Embeddings to watch for collapse (the projector output, or the backbone features). */
  monitor: Tensor;
}

/** What a method's graph may depend on besides its hyper-parameters. */
export interface BuildEnv {
  batchSize: number;
  /** Training images (memory banks hold one row per image). */
  datasetSize: number;
  /** The frozen ONNX teacher's embedding size (`--teacher`), for methods that take one. */
  teacherDim?: number;
}

/** One training step, as a method's runtime sees it (to compute its extra inputs). */
export interface StepInfo {
  step: number;
  epoch: number;
  totalSteps: number;
  stepsPerEpoch: number;
  /** Dataset rows of this batch's images. */
  indices: Int32Array;
  views: Float32Array[];
  viewDims: number[][];
  /** Seeded by (run seed, step): a resumed run draws the same numbers. */
  rng: Rng;
  /** The training state (parameters, buffers) before this step. */
  state: Map<string, Float32Array>;
}

export type StepFeeds = Record<string, Float32Array | BigInt64Array | number>;

export interface RuntimeEnv {
  hp: Record<string, number>;
  /** A frozen ONNX teacher (`--teacher`), for methods that take one. */
  teacher?: string;
  device: Device;
  threads: number;
  datasetSize: number;
  batchSize: number;
  channels: number;
  imageSize: number;
  /** The views' normalisation (so a frozen teacher can be fed its own). */
  mean: number[];
  std: number[];
  seed: number;
  log: (line: string) => void;
  /** The current student encoder as an ONNX model with its `feature_map` output (BoWNet's next teacher). */
  encoderOnnx(state: Map<string, Float32Array>): Uint8Array;
  epochs: number;
  /** The run folder (for state a method keeps outside the checkpoint, e.g. BoWNet's round teachers). */
  runDir: string;
}

/** The host-side part of a method: extra inputs per step, work between epochs, resources. */
export interface MethodRuntime {
  /** Values for the extra graph inputs the method declared (indices, noise, masks, a teacher's output, schedules). */
  feeds?(s: StepInfo): StepFeeds | Promise<StepFeeds>;
  /** Before each epoch: new values for state buffers (e.g. k-means prototypes from a memory bank). */
  onEpochStart?(s: {
    epoch: number;
    state: Map<string, Float32Array>;
    rng: Rng;
  }): Map<string, Float32Array> | Promise<Map<string, Float32Array>>;
  release?(): Promise<void>;
}

export interface Method {
  name: string;
  summary: string;
  /** Augmented views of each image the step consumes (multi-crop methods add `local_crops` small ones). */
  views: number;
  /** The step graph takes the frozen teacher's embedding as an input (its size is read from `--teacher` first). */
  teacherEmbedding?: boolean;
  /** Multi-crop: the hyper-parameter holding the number of small local crops. */
  localCropsParam?: string;
  augment: AugmentPreset;
  /** Hyper-parameters (METHODS.md defaults), exposed as `--set key=value`. */
  params: Record<string, MethodParam>;
  /** Training defaults the method's paper uses (optimizer, lr per 256 images, weight decay). */
  optimizer: { name: 'sgd' | 'adamw' | 'lars'; lrPer256: number; weightDecay: number };
  /**
   * Methods with an EMA teacher (built with a `teacher: true` Ctx) give the momentum's starting
   * value; it follows a cosine schedule to 1 over training.
   */
  teacherMomentum?(hp: Record<string, number>): number;
  /** Name prefixes of parameters that keep the peak learning rate, unscheduled (SimSiam's predictor). */
  fixedLrParams?(hp: Record<string, number>): string[];
  build(ctx: Ctx, backbone: Backbone, views: Tensor[], hp: Record<string, number>, env: BuildEnv): MethodBuild;
  /** Host-side work the method needs each step or epoch (absent for methods that are one graph). */
  runtime?(env: RuntimeEnv): MethodRuntime | Promise<MethodRuntime>;
  /** Checks the method's requirements early, with a clear message (e.g. a teacher file, a backbone). */
  validate?(o: { backbone: string; teacher?: string; hp: Record<string, number> }): void;
  /** The projection head on backbone features, as trained (export `--head projector`). */
  head?(ctx: Ctx, features: Tensor, hp: Record<string, number>): Tensor;
}
