/** IDX, CIFAR-10 binary and image folders: real files written here, and the bad inputs' errors. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseIdx } from '../../data/idx.js';
import { parseCifarBatches } from '../../data/cifar-binary.js';
import { loadImageFolder } from '../../data/folder.js';
import { EMBEDDED_DIR, loadDataset } from '../../data/datasets.js';
import { FASHION_DIR, hasFashion, isolatedCache, tmpDir } from '../helpers.js';

function idxBytes(dims: number[], data: Uint8Array, magicType = 0x08): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = magicType;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data)]);
}

describe('IDX', () => {
  const dir = tmpDir();
  it('reads raw and gzipped files with their dimensions and bytes', () => {
    const px = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 7);
    fs.writeFileSync(path.join(dir, 'a-idx3'), idxBytes([2, 3, 4], px));
    fs.writeFileSync(path.join(dir, 'a-idx3.gz'), zlib.gzipSync(idxBytes([2, 3, 4], px)));
    for (const f of ['a-idx3', 'a-idx3.gz']) {
      const r = parseIdx(path.join(dir, f), 3);
      expect(r.dims).toEqual([2, 3, 4]);
      expect(Array.from(r.data)).toEqual(Array.from(px));
    }
  });
  it('names the file and the expected magic on a wrong magic', () => {
    fs.writeFileSync(path.join(dir, 'bad'), idxBytes([2], new Uint8Array(2), 0x0d));
    expect(() => parseIdx(path.join(dir, 'bad'), 1)).toThrow(/bad: wrong IDX magic 0x00000d01, expected 0x00000801/);
  });
  it('says truncated when the data is shorter than the header says', () => {
    fs.writeFileSync(path.join(dir, 'short'), idxBytes([10, 2, 2], new Uint8Array(30)));
    expect(() => parseIdx(path.join(dir, 'short'), 3)).toThrow(/short: IDX data is 30 bytes, header \[10,2,2\] needs 40 \(truncated\?\)/);
  });
  it('reports a corrupt gzip stream', () => {
    const gz = zlib.gzipSync(idxBytes([2], new Uint8Array(2)));
    fs.writeFileSync(path.join(dir, 'cut.gz'), gz.subarray(0, gz.length - 6));
    expect(() => parseIdx(path.join(dir, 'cut.gz'), 1)).toThrow(/cut.gz: corrupt or truncated gzip data/);
  });
});

describe('CIFAR-10 binary', () => {
  const dir = tmpDir();
  it('splits records into label and CHW pixels', () => {
    const rec = (label: number, fill: number) => Buffer.concat([Buffer.from([label]), Buffer.alloc(3072, fill)]);
    fs.writeFileSync(path.join(dir, 'b.bin'), Buffer.concat([rec(3, 10), rec(9, 200)]));
    const s = parseCifarBatches([path.join(dir, 'b.bin')]);
    expect(s.n).toBe(2);
    expect(Array.from(s.labels!)).toEqual([3, 9]);
    expect(s.pixels[0]).toBe(10);
    expect(s.pixels[3072 + 3071]).toBe(200);
    expect(s.classes[3]).toBe('cat');
  });
  it('rejects a file that is not a whole number of records, naming the record size', () => {
    fs.writeFileSync(path.join(dir, 'odd.bin'), Buffer.alloc(3073 + 5));
    expect(() => parseCifarBatches([path.join(dir, 'odd.bin')])).toThrow(
      /odd.bin: 3078 bytes is not a whole number of CIFAR-10 records \(3073 bytes each/,
    );
  });
});

describe('image folders', () => {
  let root: string;
  beforeAll(async () => {
    root = tmpDir();
    for (const [cls, color] of [
      ['red', { r: 255, g: 0, b: 0 }],
      ['blue', { r: 0, g: 0, b: 255 }],
    ] as const) {
      fs.mkdirSync(path.join(root, cls));
      for (let i = 0; i < 3; i++)
        await sharp({ create: { width: 12, height: 10, channels: 3, background: color } })
          .png()
          .toFile(path.join(root, cls, `${i}.png`));
    }
    const jpg = await sharp({ create: { width: 12, height: 12, channels: 3, background: { r: 0, g: 255, b: 0 } } })
      .jpeg()
      .toBuffer();
    fs.writeFileSync(path.join(root, 'blue', 'cut.jpg'), jpg.subarray(0, Math.floor(jpg.length / 2)));
    fs.writeFileSync(path.join(root, 'red', 'notes.jpg'), 'this is not an image');
  });

  it('labels by sub-folder, resizes to one size, skips broken files with a warning naming them', async () => {
    const lines: string[] = [];
    const s = await loadImageFolder(root, { size: 8, log: (l) => lines.push(l) });
    // One line says what the decoded set takes; the rest are warnings.
    expect(lines[0]).toMatch(/decoding 8 images at 3×8×8 \(1\.5 kB in memory\)/);
    const warnings = lines.slice(1);
    expect(s.n).toBe(6);
    expect(s.classes).toEqual(['blue', 'red']);
    expect([s.c, s.h, s.w]).toEqual([3, 8, 8]);
    const red = s.labels!.indexOf(1);
    expect(s.pixels[red * 192]).toBe(255); // R plane of a red image
    expect(s.pixels[red * 192 + 128]).toBe(0); // B plane
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/2 of 8 images could not be decoded and were skipped/);
    expect(warnings[0]).toMatch(/cut\.jpg/);
    expect(warnings[0]).toMatch(/notes\.jpg/);
  });
  it('fails on broken files when strict', async () => {
    await expect(loadImageFolder(root, { size: 8, strict: true })).rejects.toThrow(/2 of 8 images could not be decoded/);
  });
  it('an empty folder is a one-line error', async () => {
    await expect(loadImageFolder(tmpDir(), {})).rejects.toThrow(/no images found/);
  });
  it('unknown dataset names are a one-line error listing the known ones', async () => {
    await expect(loadDataset('imagenet', 'train')).rejects.toThrow(
      /unknown dataset 'imagenet' \(expected one of: fashion-mnist-small, fashion-mnist, mnist, cifar10, folder:PATH\)/,
    );
  });
});

describe('the Fashion-MNIST sample that ships with sslkit', () => {
  it('is 20,000 + 2,000 images, 2,000 and 200 per class, and its files match the checksums its README gives', async () => {
    const train = await loadDataset('fashion-mnist-small', 'train');
    const test = await loadDataset('fashion-mnist-small', 'test');
    expect([train.n, train.c, train.h, train.w, test.n]).toEqual([20000, 1, 28, 28, 2000]);
    for (const [s, per] of [
      [train, 2000],
      [test, 200],
    ] as const)
      expect(Array.from({ length: 10 }, (_, c) => s.labels!.filter((l) => l === c).length)).toEqual(new Array(10).fill(per));
    expect(train.classes[0]).toBe('T-shirt/top');
    const readme = fs.readFileSync(path.join(EMBEDDED_DIR, 'README.md'), 'utf8');
    for (const f of fs.readdirSync(EMBEDDED_DIR).filter((f) => f.endsWith('.gz'))) {
      const sum = crypto
        .createHash('sha256')
        .update(fs.readFileSync(path.join(EMBEDDED_DIR, f)))
        .digest('hex');
      expect(readme).toContain(`${sum}  ${f}`);
    }
  });
});

describe.runIf(hasFashion)("Fashion-MNIST from Debian's package", () => {
  it('loads 60k + 10k 28×28 images with 10 balanced classes, then from the decoded cache', async () => {
    isolatedCache();
    const tr = await loadDataset('fashion-mnist', 'train', { dataDir: FASHION_DIR });
    expect([tr.n, tr.c, tr.h, tr.w]).toEqual([60000, 1, 28, 28]);
    expect(tr.labels!.filter((l) => l === 9).length).toBe(6000);
    const t0 = Date.now();
    const again = await loadDataset('fashion-mnist', 'train', { dataDir: FASHION_DIR });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(again.pixels.subarray(0, 2000)).toEqual(tr.pixels.subarray(0, 2000));
    const te = await loadDataset('fashion-mnist', 'test', { dataDir: FASHION_DIR });
    expect(te.n).toBe(10000);
  });
});
