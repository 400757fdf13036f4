/**
 * One image → its augmented views, written straight into NCHW batch buffers. Pure and seeded:
 * the same (seed, image) gives the same views in any thread, so loading is deterministic and a
 * resumed run sees exactly the batches an uninterrupted one would have.
 */
import { Rng } from '../../core/random.js';
import type { AugmentConfig, ViewSpec } from './presets.js';
import { colorJitter, gaussianBlur, grayscale, sampleCropBox, solarize } from './transforms.js';
import { cropResize, fromUint8, normalizeInto, type Img } from '../../core/image.js';

export interface PixelSource {
  pixels: Uint8Array;
  c: number;
  h: number;
  w: number;
}

export function augmentView(rng: Rng, src: Img, v: ViewSpec): Img {
  const box = v.scale ? sampleCropBox(rng, src.h, src.w, v.scale, v.ratio) : { top: 0, left: 0, height: src.h, width: src.w };
  let img = cropResize(src, box, v.size, v.size, rng.next() < v.flip);
  if (rng.next() < v.jitter.p) colorJitter(rng, img, v.jitter);
  if (rng.next() < v.grayscale) grayscale(img);
  if (v.blur.p > 0 && rng.next() < v.blur.p) {
    const kernel = Math.max(3, Math.round(v.size * 0.1) | 1);
    img = gaussianBlur(img, rng.uniform(v.blur.sigma[0], v.blur.sigma[1]), kernel);
  }
  if (v.solarize > 0 && rng.next() < v.solarize) solarize(img);
  return img;
}

/** A seed for (run seed, epoch, batch): batches are independent of which worker builds them. */
export function batchSeed(seed: number, epoch: number, batch: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const v of [epoch, batch]) h = Math.imul(h ^ (v + 0x7f4a7c15), 0x85ebca6b) >>> 0;
  return h;
}

/** Views of the images `indices`: one Float32Array [B, C, size, size] per view spec. */
export function makeBatchViews(src: PixelSource, indices: ArrayLike<number>, cfg: AugmentConfig, seed: number): Float32Array[] {
  const outs = cfg.views.map((v) => new Float32Array(indices.length * src.c * v.size * v.size));
  const rng = new Rng(seed);
  for (let b = 0; b < indices.length; b++) {
    const img = fromUint8(src.pixels, indices[b], src.c, src.h, src.w);
    const r = rng.fork();
    cfg.views.forEach((v, k) => {
      const view = augmentView(r, img, v);
      normalizeInto(view, cfg.mean, cfg.std, outs[k], b * src.c * v.size * v.size);
    });
  }
  return outs;
}

/** Plain (un-augmented) normalised images [B, C, H, W], for evaluation and embedding. */
export function makePlainBatch(src: PixelSource, indices: ArrayLike<number>, mean: number[], std: number[]): Float32Array {
  const per = src.c * src.h * src.w;
  const out = new Float32Array(indices.length * per);
  for (let b = 0; b < indices.length; b++) normalizeInto(fromUint8(src.pixels, indices[b], src.c, src.h, src.w), mean, std, out, b * per);
  return out;
}

/** Every image of the set, plain and normalised [N, C, H, W]. */
export function plainImages(src: PixelSource & { n: number }, mean: number[], std: number[]): Float32Array {
  return makePlainBatch(
    src,
    Int32Array.from({ length: src.n }, (_, i) => i),
    mean,
    std,
  );
}

/** Per-channel mean and std of a uint8 set, in [0, 1] units (the normalisation a run uses). */
export function channelStats(src: PixelSource & { n: number }): { mean: number[]; std: number[] } {
  const hw = src.h * src.w;
  const mean: number[] = [];
  const std: number[] = [];
  // A strided sample of up to 5000 images is plenty for two moments.
  const step = Math.max(1, Math.floor(src.n / 5000));
  for (let c = 0; c < src.c; c++) {
    let s = 0;
    let s2 = 0;
    let cnt = 0;
    for (let i = 0; i < src.n; i += step) {
      const off = (i * src.c + c) * hw;
      for (let p = 0; p < hw; p++) {
        const v = src.pixels[off + p] / 255;
        s += v;
        s2 += v * v;
      }
      cnt += hw;
    }
    const m = s / cnt;
    mean.push(+m.toFixed(4));
    std.push(+Math.sqrt(Math.max(s2 / cnt - m * m, 1e-8)).toFixed(4));
  }
  return { mean, std };
}
