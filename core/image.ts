/**
 * Float CHW images with values in [0, 1] and what every floor does with them: decode from a
 * uint8 set, crop and resize bilinearly, normalise per channel. Augmentations (train/augment),
 * preprocessing for inference (core/preprocess.ts) and evaluation all build on these.
 */

export interface Img {
  c: number;
  h: number;
  w: number;
  /** CHW, values in [0, 1]. */
  data: Float32Array;
}

export const makeImg = (c: number, h: number, w: number): Img => ({ c, h, w, data: new Float32Array(c * h * w) });

/** uint8 CHW pixels of image i of a set → float image in [0, 1]. */
export function fromUint8(pixels: Uint8Array, i: number, c: number, h: number, w: number): Img {
  const n = c * h * w;
  const data = new Float32Array(n);
  const off = i * n;
  for (let k = 0; k < n; k++) data[k] = pixels[off + k] / 255;
  return { c, h, w, data };
}

export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** Crops `box` and resizes it to out×out with bilinear interpolation (half-pixel centres). */
export function cropResize(src: Img, box: CropBox, outH: number, outW: number, flip = false): Img {
  const dst = makeImg(src.c, outH, outW);
  const sy = box.height / outH;
  const sx = box.width / outW;
  for (let y = 0; y < outH; y++) {
    const fy = Math.min(Math.max(box.top + (y + 0.5) * sy - 0.5, 0), src.h - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, src.h - 1);
    const wy = fy - y0;
    for (let x = 0; x < outW; x++) {
      const xo = flip ? outW - 1 - x : x;
      const fx = Math.min(Math.max(box.left + (xo + 0.5) * sx - 0.5, 0), src.w - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, src.w - 1);
      const wx = fx - x0;
      for (let c = 0; c < src.c; c++) {
        const base = c * src.h * src.w;
        const a = src.data[base + y0 * src.w + x0];
        const b = src.data[base + y0 * src.w + x1];
        const d = src.data[base + y1 * src.w + x0];
        const e = src.data[base + y1 * src.w + x1];
        dst.data[c * outH * outW + y * outW + x] = (1 - wy) * ((1 - wx) * a + wx * b) + wy * ((1 - wx) * d + wx * e);
      }
    }
  }
  return dst;
}

/** (x − mean_c) / std_c, written into `out` at `offset`. */
export function normalizeInto(img: Img, mean: number[], std: number[], out: Float32Array, offset: number): void {
  const hw = img.h * img.w;
  for (let c = 0; c < img.c; c++) {
    const m = mean[c % mean.length];
    const s = std[c % std.length];
    for (let p = 0; p < hw; p++) out[offset + c * hw + p] = (img.data[c * hw + p] - m) / s;
  }
}
