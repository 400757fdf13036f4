/**
 * What a self-supervised method is to the trainer: how many views it needs, which augmentation
 * preset, its hyper-parameters with defaults, and how to build its loss from the views.
 */
import type { Ctx } from '../engine/nn.js';
import type { Tensor } from '../engine/graph.js';
import type { Backbone } from '../backbones/index.js';
import type { AugmentPreset } from '../augment/presets.js';

export interface MethodParam {
  default: number;
  help: string;
}

export interface MethodBuild {
  loss: Tensor;
  /** Embeddings to watch for collapse (the projector output, or the backbone features). */
  monitor: Tensor;
}

export interface Method {
  name: string;
  summary: string;
  /** Augmented views of each image the step consumes. */
  views: number;
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
  build(ctx: Ctx, backbone: Backbone, views: Tensor[], hp: Record<string, number>): MethodBuild;
  /** The projection head on backbone features, as trained (export `--head projector`). */
  head?(ctx: Ctx, features: Tensor, hp: Record<string, number>): Tensor;
}
