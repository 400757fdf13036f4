/**
 * Dataset images to a model's input: resize (cover and centre crop, or stretch) to its height × width, match
 * its channel count (grey replicated to RGB, RGB to ITU-R 601 luma), scale pixels and normalise
 * with its mean and std. One definition, used for indexing, evaluation and serving.
 */
import type { ImageSet } from './image-set.js';
import { cropResize, fromUint8, type Img } from './image.js';
import { normalizePixel, type Preprocessing } from './gallery-format.js';

function matchChannels(img: Img, c: number): Img {
  if (img.c === c) return img;
  const hw = img.h * img.w;
  const out = { c, h: img.h, w: img.w, data: new Float32Array(c * hw) };
  for (let p = 0; p < hw; p++) {
    const v = img.c === 3 ? 0.299 * img.data[p] + 0.587 * img.data[hw + p] + 0.114 * img.data[2 * hw + p] : img.data[p];
    for (let k = 0; k < c; k++) out.data[k * hw + p] = img.c === 3 && c === 3 ? img.data[k * hw + p] : v;
  }
  return out;
}

/** The centred box of the source with the target's aspect ratio (cover, then crop). */
function coverBox(h: number, w: number, th: number, tw: number) {
  const scale = Math.max(th / h, tw / w);
  const bh = Math.round(th / scale);
  const bw = Math.round(tw / scale);
  return { top: Math.floor((h - bh) / 2), left: Math.floor((w - bw) / 2), height: bh, width: bw };
}

/** NCHW float input for the images `indices` of a set. */
export function preprocessImages(s: ImageSet, indices: ArrayLike<number>, p: Preprocessing): Float32Array {
  const per = p.channels * p.height * p.width;
  const out = new Float32Array(indices.length * per);
  for (let b = 0; b < indices.length; b++) {
    let img = fromUint8(s.pixels, indices[b], s.c, s.h, s.w);
    if (img.h !== p.height || img.w !== p.width) {
      const box = p.resize === 'stretch' ? { top: 0, left: 0, height: img.h, width: img.w } : coverBox(img.h, img.w, p.height, p.width);
      img = cropResize(img, box, p.height, p.width);
    }
    img = matchChannels(img, p.channels);
    const hw = p.height * p.width;
    // Images are in [0, 1] here; the formula takes the 0-255 scale.
    for (let c = 0; c < p.channels; c++)
      for (let q = 0; q < hw; q++) out[b * per + c * hw + q] = normalizePixel(img.data[c * hw + q] * 255, c, p);
  }
  return out;
}

/**
 * The median colour of the images' outer one-pixel frame, per channel, RGB 0-255 (grey images:
 * the grey thrice): the background a model trained on them expects behind a transparent image
 * (black for Fashion-MNIST, whose garments reach the edge now and then: a mean would be pulled
 * up by them). Up to `max` images, evenly spaced.
 */
export function edgeColour(s: ImageSet, max = 2000): number[] {
  const hist = Array.from({ length: s.c }, () => new Float64Array(256));
  const m = Math.min(max, s.n);
  const hw = s.h * s.w;
  for (let j = 0; j < m; j++) {
    const base = Math.floor((j * s.n) / m) * s.c * hw;
    for (let y = 0; y < s.h; y++)
      for (let x = 0; x < s.w; x++) {
        if (y !== 0 && y !== s.h - 1 && x !== 0 && x !== s.w - 1) continue;
        for (let c = 0; c < s.c; c++) hist[c][s.pixels[base + c * hw + y * s.w + x]] += 1;
      }
  }
  const median = hist.map((h) => {
    const half = h.reduce((a, b) => a + b, 0) / 2;
    let acc = 0;
    for (let v = 0; v < 256; v++) if ((acc += h[v]) >= half) return v;
    return 255;
  });
  return s.c === 1 ? [median[0], median[0], median[0]] : median.slice(0, 3);
}

/**
 * The set at `size`×`size` and `channels` (cover and centre crop, grey replicated or RGB to luma),
 * still as uint8: a data set stored at another size than the run trains at (28-pixel
 * Fashion-MNIST for a 64-pixel imported encoder). Returns the set itself when nothing changes.
 */
export function fitImageSet(s: ImageSet, size: number, channels: number): ImageSet {
  if (s.h === size && s.w === size && s.c === channels) return s;
  const per = channels * size * size;
  const pixels = new Uint8Array(new SharedArrayBuffer(s.n * per));
  for (let i = 0; i < s.n; i++) {
    let img = fromUint8(s.pixels, i, s.c, s.h, s.w);
    if (img.h !== size || img.w !== size) img = cropResize(img, coverBox(img.h, img.w, size, size), size, size);
    img = matchChannels(img, channels);
    for (let q = 0; q < per; q++) pixels[i * per + q] = Math.round(Math.min(1, Math.max(0, img.data[q])) * 255);
  }
  return { ...s, c: channels, h: size, w: size, pixels };
}
