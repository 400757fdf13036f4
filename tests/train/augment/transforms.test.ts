/** Each transform's effect on known pixels, the presets, and the loader's determinism. */
import { describe, expect, it } from 'vitest';
import {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  gaussianBlur,
  grayscale,
  hflip,
  sampleCropBox,
  solarize,
} from '../../../train/augment/transforms.js';
import { cropResize, normalizeInto, type Img } from '../../../core/image.js';
import { presetViews } from '../../../train/augment/presets.js';
import { makeBatchViews } from '../../../train/augment/views.js';
import { ViewLoader } from '../../../train/augment/loader.js';
import { Rng } from '../../../core/random.js';

const img = (c: number, h: number, w: number, f: (c: number, y: number, x: number) => number): Img => {
  const data = new Float32Array(c * h * w);
  for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[(k * h + y) * w + x] = f(k, y, x);
  return { c, h, w, data };
};
const px = (i: Img, c: number, y: number, x: number) => i.data[(c * i.h + y) * i.w + x];

describe('transforms', () => {
  it('hflip mirrors columns', () => {
    const a = img(1, 2, 3, (_c, y, x) => 10 * y + x);
    expect(Array.from(hflip(a).data)).toEqual([2, 1, 0, 12, 11, 10]);
  });
  it('cropResize of the whole image at the same size is the identity; of a 2×2 box upsampled it interpolates', () => {
    const a = img(1, 4, 4, (_c, y, x) => y * 4 + x);
    expect(Array.from(cropResize(a, { top: 0, left: 0, height: 4, width: 4 }, 4, 4).data)).toEqual(Array.from(a.data));
    const up = cropResize(a, { top: 1, left: 1, height: 2, width: 2 }, 4, 4);
    // Half-pixel centres: output x=0 samples source x = 1 + 0.25 − 0.5 = 0.75 → between columns 0 and 1.
    expect(px(up, 0, 0, 0)).toBeCloseTo(0.75 * 4 + 0.75, 5);
    expect(px(up, 0, 3, 3)).toBeCloseTo(2.25 * 4 + 2.25, 5);
  });
  it('brightness scales and clamps to [0, 1]', () => {
    const a = img(1, 1, 3, (_c, _y, x) => [0.2, 0.5, 0.8][x]);
    adjustBrightness(a, 1.5);
    expect(Array.from(a.data).map((v) => +v.toFixed(5))).toEqual([0.3, 0.75, 1]);
  });
  it('contrast blends with the mean grey level', () => {
    const a = img(1, 1, 2, (_c, _y, x) => [0.2, 0.6][x]);
    adjustContrast(a, 0.5); // mean 0.4
    expect(Array.from(a.data).map((v) => +v.toFixed(5))).toEqual([0.3, 0.5]);
  });
  it('saturation 0 and grayscale give the ITU-R 601 luma in every channel', () => {
    const a = img(3, 1, 1, (c) => [1, 0.5, 0][c]);
    const b = img(3, 1, 1, (c) => [1, 0.5, 0][c]);
    adjustSaturation(a, 0);
    grayscale(b);
    const luma = 0.299 + 0.587 * 0.5;
    for (const i of [a, b]) expect(Array.from(i.data).map((v) => +v.toFixed(5))).toEqual([luma, luma, luma].map((v) => +v.toFixed(5)));
  });
  it('hue rotation by 1/3 turn maps red to green and a full turn is the identity', () => {
    const a = img(3, 1, 1, (c) => [1, 0, 0][c]);
    adjustHue(a, 1 / 3);
    expect(Array.from(a.data).map((v) => +v.toFixed(4))).toEqual([0, 1, 0]);
    const b = img(3, 1, 1, (c) => [0.3, 0.6, 0.9][c]);
    adjustHue(b, 0.5);
    adjustHue(b, 0.5);
    expect(Array.from(b.data).map((v) => +v.toFixed(4))).toEqual([0.3, 0.6, 0.9]);
  });
  it('solarize inverts values at or above the threshold', () => {
    const a = img(1, 1, 3, (_c, _y, x) => [0.2, 0.5, 0.9][x]);
    solarize(a, 0.5);
    expect(Array.from(a.data).map((v) => +v.toFixed(5))).toEqual([0.2, 0.5, 0.1]);
  });
  it('gaussian blur keeps a constant image and spreads an impulse symmetrically with unit mass', () => {
    const flat = gaussianBlur(
      img(1, 5, 5, () => 0.7),
      1,
      3,
    );
    flat.data.forEach((v) => expect(v).toBeCloseTo(0.7, 6));
    const imp = gaussianBlur(
      img(1, 7, 7, (_c, y, x) => (y === 3 && x === 3 ? 1 : 0)),
      1,
      3,
    );
    expect(px(imp, 0, 3, 2)).toBeCloseTo(px(imp, 0, 3, 4), 6);
    expect(px(imp, 0, 3, 3)).toBeGreaterThan(px(imp, 0, 3, 2));
    expect(imp.data.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });
  it('normalisation subtracts the mean and divides by the std per channel', () => {
    const out = new Float32Array(2);
    normalizeInto(
      img(2, 1, 1, (c) => [0.5, 0.2][c]),
      [0.5, 0.1],
      [0.25, 0.05],
      out,
      0,
    );
    expect(Array.from(out).map((v) => +v.toFixed(5))).toEqual([0, 2]);
  });
  it('crop boxes respect the area and aspect ranges', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 200; i++) {
      const b = sampleCropBox(rng, 32, 32, [0.2, 0.6], [3 / 4, 4 / 3]);
      expect(b.top + b.height).toBeLessThanOrEqual(32);
      expect(b.left + b.width).toBeLessThanOrEqual(32);
      const area = (b.height * b.width) / 1024;
      expect(area).toBeGreaterThan(0.15);
      expect(area).toBeLessThan(0.7);
    }
  });
});

describe('views and loader', () => {
  const n = 40;
  const src = { n, c: 3, h: 8, w: 8, pixels: Uint8Array.from({ length: n * 192 }, (_, i) => (i * 37) % 256) };
  const cfg = { views: presetViews('simclr', 8, 2), mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };

  it('the same seed gives the same views; two views of an image differ', () => {
    const a = makeBatchViews(src, [0, 1, 2], cfg, 11);
    const b = makeBatchViews(src, [0, 1, 2], cfg, 11);
    expect(a[0]).toEqual(b[0]);
    expect(a[0]).not.toEqual(a[1]);
    expect(a[0]).toHaveLength(3 * 192);
  });
  it('multicrop gives global and half-size local crops', () => {
    const views = presetViews('multicrop', 32, 2, { local: 4 });
    expect(views.map((v) => v.size)).toEqual([32, 32, 16, 16, 16, 16]);
  });
  it('worker threads produce exactly the batches the calling thread would, in order', async () => {
    const inline = new ViewLoader(src, cfg, { batchSize: 8, workers: 0, seed: 5 });
    const threaded = new ViewLoader(src, cfg, { batchSize: 8, workers: 2, seed: 5 });
    const collect = async (l: ViewLoader) => {
      const out: { index: number; indices: number[]; v: Float32Array }[] = [];
      for await (const b of l.epoch(1)) out.push({ index: b.index, indices: Array.from(b.indices), v: b.views[1] });
      await l.close();
      return out;
    };
    const [a, b] = [await collect(inline), await collect(threaded)];
    expect(a.map((x) => x.index)).toEqual([0, 1, 2, 3, 4]);
    expect(b).toEqual(a);
    expect(new Set(a.flatMap((x) => x.indices)).size).toBe(40);
  });
  it('starting mid-epoch replays the same later batches (resume)', async () => {
    const l = new ViewLoader(src, cfg, { batchSize: 8, workers: 0, seed: 5 });
    const all: Float32Array[] = [];
    for await (const b of l.epoch(2)) all.push(b.views[0]);
    const tail: Float32Array[] = [];
    for await (const b of l.epoch(2, 3)) tail.push(b.views[0]);
    expect(tail).toEqual(all.slice(3));
  });
});
