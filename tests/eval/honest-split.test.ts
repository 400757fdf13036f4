/**
 * No score counts an image against itself (issue 20): a labelled folder without train/ and test/
 * holds out a seeded, class-stratified share that is never trained on, and scoring on the
 * training images themselves is leave-one-out. On noise images with random labels every score
 * is chance.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { evaluate } from '../../eval/evaluate.js';
import { loadDataset } from '../../data/datasets.js';
import { knnAccuracy, normalizeRows } from '../../core/vectors.js';
import { Rng } from '../../core/random.js';
import { isolatedCache, tmpDir, trainTinyRun } from '../helpers.js';

const FOREIGN = path.resolve(import.meta.dirname, '../fixtures/foreign/tiny-cnn.onnx');
const CHANCE = 0.1;

/** n distinct 8×8 RGB noise images, each in one of 10 class folders drawn at random. */
async function noiseFolder(n: number, seed: number): Promise<string> {
  const dir = tmpDir('sslkit-noise-');
  const rng = new Rng(seed);
  for (let c = 0; c < 10; c++) fs.mkdirSync(path.join(dir, `class${c}`));
  await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const px = Uint8Array.from({ length: 8 * 8 * 3 }, () => rng.int(256));
      const cls = rng.int(10);
      return sharp(px, { raw: { width: 8, height: 8, channels: 3 } })
        .png()
        .toFile(path.join(dir, `class${cls}`, `img${String(i).padStart(5, '0')}.png`));
    }),
  );
  return dir;
}

describe('honest scores on a plain folder', () => {
  let small: string;
  let large: string;
  beforeAll(async () => {
    isolatedCache();
    small = await noiseFolder(1000, 1);
    large = await noiseFolder(2000, 2);
  }, 120_000);

  it('holds out a class-stratified share: the splits are disjoint, cover the folder, and every class is in both', async () => {
    const train = await loadDataset(`folder:${small}`, 'train', { size: 8 });
    const test = await loadDataset(`folder:${small}`, 'test', { size: 8 });
    expect(train.n + test.n).toBe(1000);
    expect(test.n).toBeGreaterThan(80);
    expect(test.n).toBeLessThan(120);
    const trainSources = new Set(train.sources);
    expect(test.sources!.some((s) => trainSources.has(s))).toBe(false);
    expect(new Set(test.labels).size).toBe(10);
    // The same images every time (a resumed run and eval hold out what training held out).
    expect((await loadDataset(`folder:${small}`, 'test', { size: 8 })).sources).toEqual(test.sources);
    const half = await loadDataset(`folder:${small}`, 'test', { size: 8, testFraction: 0.5 });
    expect(half.n).toBeGreaterThan(450);
  });

  it('leave-one-out: the query is never its own neighbour (k = 1 on the memory itself is chance, not 100%)', () => {
    const rng = new Rng(3);
    const [n, d] = [1000, 16];
    const x = normalizeRows(
      Float32Array.from({ length: n * d }, () => rng.normal()),
      d,
    );
    const y = Int32Array.from({ length: n }, () => rng.int(10));
    const self = Int32Array.from({ length: n }, (_, i) => i);
    expect(knnAccuracy(x, y, x, y, d, { k: 1, temperature: 0.1, classes: 10 })).toBe(1);
    for (const k of [1, 5, 20, 200])
      expect(Math.abs(knnAccuracy(x, y, x, y, d, { k, temperature: 0.1, classes: 10, exclude: self }) - CHANCE)).toBeLessThan(0.03);
  });

  it('eval with --test-fraction 0 scores leave-one-out at chance, and fits no probe on the scored images', async () => {
    const r = await evaluate(FOREIGN, { data: `folder:${small}`, testFraction: 0, probeEpochs: 5 });
    expect(r.split).toMatch(/leave-one-out on 1000 images/);
    expect(r.linear_probe_top1).toBeNull();
    for (const v of [r.knn_top1_k200, r.knn_top1_k20]) expect(Math.abs(v - CHANCE)).toBeLessThan(0.03);
  });

  it('a folder with train/ and test/ whose file names repeat is scored on its test split, with a probe', async () => {
    // The same relative names in both splits (class0/img00000.png …): different images all the same.
    const split = tmpDir('sslkit-split-');
    fs.cpSync(small, path.join(split, 'train'), { recursive: true });
    fs.cpSync(large, path.join(split, 'test'), { recursive: true });
    const test = await loadDataset(`folder:${split}`, 'test');
    expect(test.sources![0]).toMatch(/^test\/class\d\/img\d{5}\.png$/);
    const r = await evaluate(FOREIGN, { data: `folder:${split}`, probeEpochs: 5 });
    expect(r.split).toBe('2000 test images apart from the 1000 of the memory');
    expect(r.linear_probe_top1).not.toBeNull();
  });

  it('eval on the held-out share scores kNN and the probe at chance', async () => {
    const r = await evaluate(FOREIGN, { data: `folder:${large}`, testFraction: 0.5, probeEpochs: 10 });
    expect(r.split).toMatch(/test images apart from the/);
    expect(r.testImages).toBeGreaterThan(950);
    for (const v of [r.knn_top1_k200, r.knn_top1_k20, r.linear_probe_top1!]) expect(Math.abs(v - CHANCE)).toBeLessThan(0.03);
  });

  it('training never sees the held-out images, and eval of the run holds out the same ones', async () => {
    const run = await trainTinyRun({ data: `folder:${small}`, dataDir: undefined, limit: undefined, knnMemory: 500, knnQueries: 500 });
    const cfg = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
    const test = await loadDataset(`folder:${small}`, 'test', { size: 8 });
    expect(cfg.testFraction).toBe(0.1);
    expect(cfg.resolved.trainImages).toBe(1000 - test.n);
    const r = await evaluate(run, { probeEpochs: 5 });
    expect([r.trainImages, r.testImages]).toEqual([1000 - test.n, test.n]);
  });
});
