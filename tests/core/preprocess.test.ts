/** The background a model expects behind transparency: the median colour of its images' outer frame. */
import { describe, expect, it } from 'vitest';
import { edgeColour } from '../../core/preprocess.js';
import type { ImageSet } from '../../core/image-set.js';

describe('edgeColour', () => {
  it('takes the median of the one-pixel frames, per channel, and ignores the inside', () => {
    // Three 3×3 RGB images: frame (8 pixels) in one colour, centre in another.
    const img = (frame: number[], centre: number[]) =>
      frame.flatMap((v, c) => Array.from({ length: 9 }, (_, q) => (q === 4 ? centre[c] : v)));
    const pixels = Uint8Array.from([
      ...img([10, 20, 30], [255, 255, 255]),
      ...img([12, 200, 31], [0, 0, 0]),
      ...img([250, 21, 29], [0, 0, 0]),
    ]);
    const s: ImageSet = { n: 3, c: 3, h: 3, w: 3, pixels, labels: null, classes: [] };
    // Per channel, the middle of {10, 12, 250}, {20, 200, 21}, {30, 31, 29}: an outlier frame does not move it.
    expect(edgeColour(s)).toEqual([12, 21, 30]);
  });

  it('gives a grey set its grey three times (an RGB colour, composited before any channel conversion)', () => {
    // Three grey images: a black frame but for one bright edge pixel, a black frame, a frame of 6.
    const pixels = Uint8Array.from([0, 0, 0, 0, 200, 0, 0, 0, 90, 0, 0, 0, 0, 50, 0, 0, 0, 0, 6, 6, 6, 6, 200, 6, 6, 6, 6]);
    expect(edgeColour({ n: 3, c: 1, h: 3, w: 3, pixels, labels: null, classes: [] })).toEqual([0, 0, 0]);
  });
});
