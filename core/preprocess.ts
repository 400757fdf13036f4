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
