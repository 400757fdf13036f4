/**
 * Request images to model input: the in-process PNG path (fast-png, for 8-bit PNGs at the model's
 * size) gives exactly the pixels of the libvips path, and declines what it cannot match.
 */
import sharp, { type PngOptions, type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { imageToInput, pngAtModelSize } from '../../serve/images.js';
import type { Preprocessing } from '../../core/runtime/onnx-encoder.js';
import { Rng } from '../../core/random.js';

const pre = (channels: number, size = 28): Preprocessing =>
  ({
    channels,
    height: size,
    width: size,
    pixelScale: 1 / 255,
    mean: [0.3, 0.4, 0.5].slice(0, channels),
    std: [0.2, 0.25, 0.3].slice(0, channels),
  }) as Preprocessing;

const rng = new Rng(11);
/** A PNG of random pixels (bands 1-4) through sharp's own encoder. */
async function png(size: number, bands: 1 | 2 | 3 | 4, o: PngOptions = {}, edit = (s: Sharp) => s): Promise<Buffer> {
  const raw = Buffer.from(Array.from({ length: size * size * bands }, () => rng.int(256)));
  let s = sharp(raw, { raw: { width: size, height: size, channels: bands } });
  if (bands <= 2) s = s.toColourspace('b-w'); // else sharp writes grey as RGB
  const bytes = await edit(s).png(o).toBuffer();
  // IHDR colour type: 0 grey, 4 grey + alpha, 2 RGB, 6 RGBA (3 palette).
  if (!o.palette) expect(bytes[25]).toBe([0, 4, 2, 6][bands - 1]);
  return bytes;
}

describe('PNG at the model size, decoded in process', () => {
  const cases: [string, number, () => Promise<Buffer>][] = [
    ['grey → 1 channel', 1, () => png(28, 1)],
    ['grey + alpha → 1 channel', 1, () => png(28, 2)],
    ['RGB → 3 channels', 3, () => png(28, 3)],
    ['RGBA → 3 channels', 3, () => png(28, 4)],
    ['grey → 3 channels (copied)', 3, () => png(28, 1)],
    ['grey + alpha → 3 channels', 3, () => png(28, 2)],
    ['RGB, maximum compression, adaptive filters', 3, () => png(28, 3, { compressionLevel: 9, adaptiveFiltering: true })],
  ];
  for (const [name, channels, make] of cases)
    it(`${name}: the same input as through libvips`, async () => {
      const bytes = await make();
      const p = pre(channels);
      expect(pngAtModelSize(bytes, p, 1e8)).not.toBeNull();
      const fast = await imageToInput(bytes, p, 1e8, 'x');
      const viaSharp = await imageToInput(bytes, p, 1e8, 'x', { inProcessPng: false });
      expect(fast).toEqual(viaSharp);
    });

  const declined: [string, number, () => Promise<Buffer>][] = [
    ['another size (resized by libvips)', 3, () => png(32, 3)],
    ['colour to grey (libvips’ conversion)', 1, () => png(28, 3)],
    ['a palette', 3, () => png(28, 3, { palette: true })],
    ['16 bits', 3, () => png(28, 3, {}, (s) => s.toColourspace('rgb16'))],
    ['an ICC profile', 3, () => png(28, 3, {}, (s) => s.withIccProfile('p3'))],
  ];
  for (const [name, channels, make] of declined)
    it(`declines ${name}, and libvips handles it`, async () => {
      const bytes = await make();
      expect(pngAtModelSize(bytes, pre(channels), 1e8)).toBeNull();
      expect((await imageToInput(bytes, pre(channels), 1e8, 'x')).length).toBe(channels * 28 * 28);
    });

  it('a damaged PNG still gets the precise error from libvips', async () => {
    const bytes = await png(28, 3);
    const cut = bytes.subarray(0, bytes.length - 30);
    await expect(imageToInput(cut, pre(3), 1e8, 'x')).rejects.toMatchObject({
      code: expect.stringMatching(/truncated_image|not_an_image/),
    });
  });
});
