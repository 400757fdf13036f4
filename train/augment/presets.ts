/**
 * Augmentation presets per method family (METHODS.md), scaled for 28-32 px images. A preset is a
 * list of view specifications; a method asks for its preset and gets one spec per view.
 */
import type { JitterParams } from './transforms.js';

export type AugmentPreset = 'simclr' | 'byol' | 'multicrop' | 'weak' | 'none' | 'teacher-plain';
export const AUGMENT_PRESETS: AugmentPreset[] = ['simclr', 'byol', 'multicrop', 'weak', 'none', 'teacher-plain'];

export interface ViewSpec {
  size: number;
  /** RandomResizedCrop area fraction and aspect-ratio range; null = no crop (resize only). */
  scale: [number, number] | null;
  ratio: [number, number];
  flip: number;
  jitter: JitterParams & { p: number };
  grayscale: number;
  blur: { p: number; sigma: [number, number] };
  solarize: number;
}

export interface AugmentConfig {
  views: ViewSpec[];
  /** Per-channel normalisation applied last (also the exported model's preprocessing). */
  mean: number[];
  std: number[];
}

export interface PresetOptions {
  /** Multi-crop: number of small local crops. */
  local?: number;
  /**
   * Smallest crop area fraction of RandomResizedCrop. 0.2 rather than ImageNet's 0.08: at 28-32 px
   * an 8% crop is a 9-pixel patch; 0.2 is what CIFAR recipes use (SimSiam, MoCo's CIFAR demo), and
   * on Fashion-MNIST it gave 57% vs 53% kNN after one short epoch here.
   */
  minScale?: number;
}

const baseView = (size: number, minScale = 0.2): ViewSpec => ({
  size,
  scale: [minScale, 1],
  ratio: [3 / 4, 4 / 3],
  flip: 0.5,
  // lightly's CIFAR-10 benchmark strength (0.5 of SimCLR's ImageNet jitter 0.8/0.8/0.8/0.2).
  jitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, p: 0.8 },
  grayscale: 0.2,
  // SimCLR drops the blur on CIFAR-size images: at 32 px it removes most of the signal.
  blur: { p: 0, sigma: [0.1, 2] },
  solarize: 0,
});

export function presetViews(preset: AugmentPreset, size: number, views: number, o: PresetOptions = {}): ViewSpec[] {
  const local = o.local ?? 0;
  const base = (sz: number) => baseView(sz, o.minScale);
  switch (preset) {
    case 'simclr':
      return Array.from({ length: views }, () => base(size));
    case 'byol': {
      // BYOL's asymmetric pair: always blur the first view, solarise the second sometimes.
      const v1 = { ...base(size), blur: { p: 1, sigma: [0.1, 2] as [number, number] } };
      const v2 = { ...base(size), blur: { p: 0.1, sigma: [0.1, 2] as [number, number] }, solarize: 0.2 };
      return Array.from({ length: views }, (_, i) => (i % 2 ? v2 : v1));
    }
    case 'multicrop': {
      // DINO/SwAV: 2 global crops at full size, `local` small crops at half size.
      const global = { ...base(size), scale: [0.4, 1] as [number, number] };
      const small = { ...base(Math.max(8, Math.round(size / 2))), scale: [0.05, 0.4] as [number, number] };
      return [...Array.from({ length: views }, () => global), ...Array.from({ length: local }, () => small)];
    }
    case 'weak':
      return Array.from({ length: views }, () => ({
        ...base(size),
        scale: [0.5, 1] as [number, number],
        jitter: { ...base(size).jitter, p: 0 },
        grayscale: 0,
      }));
    case 'teacher-plain':
      // BoWNet: the teacher sees the plain image (view 0), the student perturbed ones.
      return [...presetViews('none', size, 1, o), ...presetViews('simclr', size, views - 1, o)];
    case 'none':
      return Array.from({ length: views }, () => ({
        ...base(size),
        scale: null,
        flip: 0,
        jitter: { ...base(size).jitter, p: 0 },
        grayscale: 0,
      }));
  }
}
