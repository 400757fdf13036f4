/**
 * EXIF orientation (issue 36, item 5): a JPEG whose pixels are stored sideways and tagged
 * orientation 6, as cameras write portrait photos, becomes the same model input as the upright
 * picture, on the service's decoding path and in image folders (training, `sslkit index`).
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { imageToInput } from '../../serve/images.js';
import { loadImageFolder } from '../../data/folder.js';
import type { Preprocessing } from '../../core/runtime/onnx-encoder.js';
import { tmpDir } from '../helpers.js';

const W = 48;
const H = 32;
/** An upright picture with no symmetry: a horizontal gradient, a bright block in the top-left corner. */
function upright(): Buffer {
  const raw = Buffer.alloc(W * H * 3);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const o = (y * W + x) * 3;
      const block = x < 12 && y < 8;
      raw[o] = block ? 250 : (x * 5) % 256;
      raw[o + 1] = block ? 250 : y * 6;
      raw[o + 2] = 40;
    }
  return raw;
}
const jpeg = (s: Sharp) => s.jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer();
const pictures = async () => {
  const raw = sharp(upright(), { raw: { width: W, height: H, channels: 3 } });
  const straight = await jpeg(raw.clone());
  // Stored turned 90° anticlockwise, tagged "rotate 90° clockwise to show" (orientation 6).
  const sideways = await jpeg(sharp(await raw.clone().rotate(270).png().toBuffer()));
  const tagged = await jpeg(sharp(await raw.clone().rotate(270).png().toBuffer()).withMetadata({ orientation: 6 }));
  expect((await sharp(tagged).metadata()).orientation).toBe(6);
  return { straight, sideways, tagged };
};
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('EXIF orientation', () => {
  it('the service decodes a tagged JPEG as the upright picture, not as its stored pixels', async () => {
    const { straight, sideways, tagged } = await pictures();
    const p = {
      channels: 3,
      height: 24,
      width: 24,
      pixelScale: 1 / 255,
      mean: [0, 0, 0],
      std: [1, 1, 1],
      resize: 'cover-center-crop',
    } as Preprocessing;
    const [u, s, t] = await Promise.all([straight, sideways, tagged].map((b) => imageToInput(b, p, 1e8, 'image')));
    expect(maxDiff(t, u)).toBeLessThan(0.05);
    expect(maxDiff(t, s)).toBeGreaterThan(0.5);
  });

  it('an image folder (training, sslkit index) decodes it upright too', async () => {
    const { straight, sideways, tagged } = await pictures();
    const dir = tmpDir();
    for (const [name, bytes] of Object.entries({ straight, sideways, tagged })) {
      fs.mkdirSync(path.join(dir, name));
      fs.writeFileSync(path.join(dir, name, 'a.jpg'), bytes);
    }
    const set = await loadImageFolder(dir, { size: 24 });
    const img = (cls: string) => set.pixels.subarray(set.classes.indexOf(cls) * 3 * 24 * 24, (set.classes.indexOf(cls) + 1) * 3 * 24 * 24);
    expect(maxDiff(img('tagged'), img('straight'))).toBeLessThan(0.05 * 255);
    expect(maxDiff(img('tagged'), img('sideways'))).toBeGreaterThan(0.5 * 255);
  });
});
