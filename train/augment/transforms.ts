/**
 * Seeded augmentation transforms on float CHW images (core/image.ts) with values in [0, 1] and 1 or 3 channels.
 * They follow torchvision's definitions (RandomResizedCrop, ColorJitter, RandomGrayscale,
 * GaussianBlur, RandomSolarize) so that the method papers' settings mean the same here.
 */
import type { Rng } from '../../core/random.js';
import { makeImg, type CropBox, type Img } from '../../core/image.js';

/** torchvision's RandomResizedCrop box: area fraction in `scale`, aspect ratio log-uniform in `ratio`. */
export function sampleCropBox(rng: Rng, h: number, w: number, scale: [number, number], ratio: [number, number]): CropBox {
  const area = h * w;
  const logR = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let t = 0; t < 10; t++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const ar = Math.exp(rng.uniform(logR[0], logR[1]));
    const cw = Math.round(Math.sqrt(target * ar));
    const ch = Math.round(Math.sqrt(target / ar));
    if (cw > 0 && ch > 0 && cw <= w && ch <= h) return { top: rng.int(h - ch + 1), left: rng.int(w - cw + 1), height: ch, width: cw };
  }
  // Fallback: the central crop with the ratio clamped into range.
  const inRatio = w / h;
  let cw = w;
  let ch = h;
  if (inRatio < ratio[0]) ch = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) cw = Math.round(h * ratio[1]);
  return { top: Math.floor((h - ch) / 2), left: Math.floor((w - cw) / 2), height: ch, width: cw };
}

export function hflip(img: Img): Img {
  const out = makeImg(img.c, img.h, img.w);
  for (let c = 0; c < img.c; c++)
    for (let y = 0; y < img.h; y++) {
      const row = (c * img.h + y) * img.w;
      for (let x = 0; x < img.w; x++) out.data[row + x] = img.data[row + img.w - 1 - x];
    }
  return out;
}

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/** ITU-R 601 luma, as torchvision's rgb_to_grayscale. */
function luma(img: Img, p: number): number {
  const hw = img.h * img.w;
  return img.c === 3 ? 0.299 * img.data[p] + 0.587 * img.data[hw + p] + 0.114 * img.data[2 * hw + p] : img.data[p];
}

export function adjustBrightness(img: Img, f: number): void {
  for (let k = 0; k < img.data.length; k++) img.data[k] = clamp01(img.data[k] * f);
}

/** Blend with the mean grey level of the image. */
export function adjustContrast(img: Img, f: number): void {
  const hw = img.h * img.w;
  let mean = 0;
  for (let p = 0; p < hw; p++) mean += luma(img, p);
  mean /= hw;
  for (let k = 0; k < img.data.length; k++) img.data[k] = clamp01(f * img.data[k] + (1 - f) * mean);
}

/** Blend with the image's own greyscale version (RGB only). */
export function adjustSaturation(img: Img, f: number): void {
  if (img.c !== 3) return;
  const hw = img.h * img.w;
  for (let p = 0; p < hw; p++) {
    const g = luma(img, p);
    for (let c = 0; c < 3; c++) img.data[c * hw + p] = clamp01(f * img.data[c * hw + p] + (1 - f) * g);
  }
}

/** Rotate the hue by `shift` turns (in [−0.5, 0.5]) through HSV, as torchvision does (RGB only). */
export function adjustHue(img: Img, shift: number): void {
  if (img.c !== 3 || shift === 0) return;
  const hw = img.h * img.w;
  const d = img.data;
  for (let p = 0; p < hw; p++) {
    const r = d[p];
    const g = d[hw + p];
    const b = d[2 * hw + p];
    const max = Math.max(r, g, b);
    const min = Math.min(r, g, b);
    const delta = max - min;
    let h = 0;
    if (delta > 0) {
      if (max === r) h = ((g - b) / delta) % 6;
      else if (max === g) h = (b - r) / delta + 2;
      else h = (r - g) / delta + 4;
      h /= 6;
    }
    h = (((h + shift) % 1) + 1) % 1;
    const s = max === 0 ? 0 : delta / max;
    const v = max;
    const i = Math.floor(h * 6);
    const f = h * 6 - i;
    const P = v * (1 - s);
    const Q = v * (1 - f * s);
    const Tt = v * (1 - (1 - f) * s);
    const [rr, gg, bb] = [
      [v, Tt, P],
      [Q, v, P],
      [P, v, Tt],
      [P, Q, v],
      [Tt, P, v],
      [v, P, Q],
    ][i % 6];
    d[p] = rr;
    d[hw + p] = gg;
    d[2 * hw + p] = bb;
  }
}

export interface JitterParams {
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
}

/** ColorJitter: each factor drawn from [1−x, 1+x] (hue shift from [−x, x]), applied in random order. */
export function colorJitter(rng: Rng, img: Img, j: JitterParams): void {
  const ops: (() => void)[] = [];
  if (j.brightness > 0) {
    const f = rng.uniform(Math.max(0, 1 - j.brightness), 1 + j.brightness);
    ops.push(() => adjustBrightness(img, f));
  }
  if (j.contrast > 0) {
    const f = rng.uniform(Math.max(0, 1 - j.contrast), 1 + j.contrast);
    ops.push(() => adjustContrast(img, f));
  }
  if (j.saturation > 0 && img.c === 3) {
    const f = rng.uniform(Math.max(0, 1 - j.saturation), 1 + j.saturation);
    ops.push(() => adjustSaturation(img, f));
  }
  if (j.hue > 0 && img.c === 3) {
    const f = rng.uniform(-j.hue, j.hue);
    ops.push(() => adjustHue(img, f));
  }
  rng.shuffle(ops);
  for (const op of ops) op();
}

/** Replace every channel by the luma (the image keeps its channel count). */
export function grayscale(img: Img): void {
  if (img.c !== 3) return;
  const hw = img.h * img.w;
  for (let p = 0; p < hw; p++) {
    const g = luma(img, p);
    img.data[p] = img.data[hw + p] = img.data[2 * hw + p] = g;
  }
}

/** Separable Gaussian blur, reflect padding; kernel size odd, ≈10% of the image side. */
export function gaussianBlur(img: Img, sigma: number, kernel: number): Img {
  const r = Math.floor(kernel / 2);
  const k = new Float32Array(2 * r + 1);
  let s = 0;
  for (let i = -r; i <= r; i++) s += k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= s;
  const reflect = (v: number, n: number) => (v < 0 ? -v : v >= n ? 2 * n - 2 - v : v);
  const tmp = makeImg(img.c, img.h, img.w);
  const out = makeImg(img.c, img.h, img.w);
  for (let c = 0; c < img.c; c++) {
    const base = c * img.h * img.w;
    for (let y = 0; y < img.h; y++)
      for (let x = 0; x < img.w; x++) {
        let acc = 0;
        for (let i = -r; i <= r; i++) acc += k[i + r] * img.data[base + y * img.w + reflect(x + i, img.w)];
        tmp.data[base + y * img.w + x] = acc;
      }
    for (let y = 0; y < img.h; y++)
      for (let x = 0; x < img.w; x++) {
        let acc = 0;
        for (let i = -r; i <= r; i++) acc += k[i + r] * tmp.data[base + reflect(y + i, img.h) * img.w + x];
        out.data[base + y * img.w + x] = acc;
      }
  }
  return out;
}

/** Invert every value at or above the threshold. */
export function solarize(img: Img, threshold = 0.5): void {
  for (let k = 0; k < img.data.length; k++) if (img.data[k] >= threshold) img.data[k] = 1 - img.data[k];
}
