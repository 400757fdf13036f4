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
    ['RGB → 3 channels', 3, () => png(28, 3)],
    ['RGBA → 3 channels (random alpha, composited on the background)', 3, () => png(28, 4)],
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
    ['grey + alpha on a grey model (composited on the RGB background, then grey)', 1, () => png(28, 2)],
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

  it('composites transparency on the model’s background, at the model’s size and resized', async () => {
    const p = { ...pre(3), background: [250, 10, 40] };
    // A dark shape on a transparent background: the shape stays, the rest becomes the background.
    const raw = Buffer.alloc(64 * 64 * 4);
    for (let y = 16; y < 48; y++) for (let x = 16; x < 48; x++) raw.set([20, 20, 20, 255], 4 * (64 * y + x));
    const at = (input: Float32Array, c: number, y: number, x: number, size: number) =>
      Math.round((input[c * size * size + y * size + x] * p.std[c] + p.mean[c]) * 255);
    for (const size of [28, 64]) {
      const bytes = await sharp(raw, { raw: { width: 64, height: 64, channels: 4 } })
        .resize(size, size)
        .png()
        .toBuffer();
      for (const inProcessPng of [true, false]) {
        const input = await imageToInput(bytes, p, 1e8, 'x', { inProcessPng });
        const s = 28;
        expect([0, 1, 2].map((c) => at(input, c, 1, 1, s))).toEqual([250, 10, 40]);
        expect([0, 1, 2].map((c) => at(input, c, 14, 14, s))).toEqual([20, 20, 20]);
      }
    }
    // Without a background in the preprocessing: white, what a viewer shows.
    const empty = await sharp({ create: { width: 28, height: 28, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
      .png()
      .toBuffer();
    const input = await imageToInput(empty, pre(3), 1e8, 'x');
    expect([0, 1, 2].map((c) => at(input, c, 0, 0, 28))).toEqual([255, 255, 255]);
  });

  it('a damaged PNG still gets the precise error from libvips', async () => {
    const bytes = await png(28, 3);
    const cut = bytes.subarray(0, bytes.length - 30);
    await expect(imageToInput(cut, pre(3), 1e8, 'x')).rejects.toMatchObject({
      code: expect.stringMatching(/truncated_image|not_an_image/),
    });
  });
});
