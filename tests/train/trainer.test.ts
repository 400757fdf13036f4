/**
 * The trainer on real Fashion-MNIST images: SimCLR with the convnet lowers its loss and beats a
 * randomly initialised encoder's kNN accuracy on the test split; a run stopped and resumed follows
 * the uninterrupted loss trajectory; a diverging run stops with a clear message and keeps the last
 * good checkpoint.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resume, train, TrainingDiverged } from '../../train/trainer.js';
import { TrainConfigSchema } from '../../train/config.js';
import { runParameters } from '../../train/run.js';
import { loadCheckpoint } from '../../train/checkpoint.js';
import { FASHION_DIR, hasFashion, isolatedCache, tmpDir } from '../helpers.js';

const quiet = { log: () => {} };
const base = {
  method: 'simclr',
  data: 'fashion-mnist',
  dataDir: FASHION_DIR,
  backbone: 'convnet',
  width: 0.5,
  hp: { proj_hidden: 256 },
  device: 'cpu',
  workers: 1,
  tuneConv: false,
};

describe.runIf(hasFashion)('trainer (SimCLR, convnet, Fashion-MNIST)', () => {
  isolatedCache();

  it('lowers the loss and beats the random encoder on held-out kNN after one epoch', async () => {
    const out = tmpDir();
    // AdamW: LARS at SimCLR's 0.3×B/256 is built for long large-batch runs and barely moves in 64 steps.
    const cfg = TrainConfigSchema.parse({
      ...base,
      epochs: 1,
      batchSize: 64,
      limit: 4096,
      optimizer: 'adamw',
      lr: 2e-3,
      weightDecay: 1e-4,
      knnMemory: 2000,
      knnQueries: 1000,
      out,
    });
    const r = await train(cfg, quiet);
    const h = r.lossHistory;
    const first = h.slice(0, 5).reduce((a, b) => a + b) / 5;
    const last = h.slice(-5).reduce((a, b) => a + b) / 5;
    expect(h).toHaveLength(64);
    expect(last).toBeLessThan(first - 0.2);
    expect(r.initialKnnTop1).not.toBeNull();
    // Measured here: 46.5% → 57.4%; the margin leaves room for thread-count rounding differences.
    expect(r.knnTop1!).toBeGreaterThan(r.initialKnnTop1! + 0.05);
    // Run folder: resolved config, a metric per step and per epoch, a checkpoint with every parameter.
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(config.resolved.lr).toBe(2e-3);
    expect(config.resolved.optimizer).toMatchObject({ name: 'adamw', weightDecay: 1e-4 });
    expect(config.resolved.augment.views[0].scale).toEqual([0.2, 1]);
    const metrics = fs
      .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(metrics.filter((m) => m.type === 'step')).toHaveLength(64);
    const epochs = metrics.filter((m) => m.type === 'epoch');
    expect(epochs.map((m) => m.epoch)).toEqual([0, 1]);
    // Projector output (d = 128): healthy ≈ 1/√128 ≈ 0.088; measured 0.07-0.085.
    expect(epochs[1].collapse_std).toBeGreaterThan(0.5 / Math.sqrt(128));
    expect(runParameters(out).get('stem.conv.weight')!.length).toBe(16 * 1 * 9);
  });

  it('resumes from a checkpoint along the uninterrupted loss trajectory', async () => {
    const cfg = { ...base, epochs: 2, batchSize: 64, limit: 640, knnMemory: 0, knnQueries: 0, seed: 3 };
    const whole = await train(TrainConfigSchema.parse({ ...cfg, out: tmpDir() }), quiet);
    const out = tmpDir();
    const first = await train(TrainConfigSchema.parse({ ...cfg, out, maxSteps: 13 }), quiet);
    expect(first.stopped).toBe('max-steps');
    expect(loadCheckpoint(path.join(out, 'checkpoint.ckpt')).position).toEqual({ step: 13, epoch: 1, batch: 3 });
    const rest = await resume(out, {}, quiet);
    const joined = [...first.lossHistory, ...rest.lossHistory];
    expect(joined).toHaveLength(whole.lossHistory.length);
    joined.forEach((l, i) => expect(l).toBeCloseTo(whole.lossHistory[i], 5));
  });

  it('stops on a non-finite loss with a clear message and keeps the last good checkpoint', async () => {
    const out = tmpDir();
    const cfg = TrainConfigSchema.parse({
      ...base,
      epochs: 1,
      batchSize: 64,
      limit: 640,
      knnMemory: 0,
      knnQueries: 0,
      optimizer: 'sgd',
      lr: 1e12,
      warmupEpochs: 0,
      out,
    });
    await expect(train(cfg, quiet)).rejects.toThrow(TrainingDiverged);
    await expect(train(TrainConfigSchema.parse({ ...cfg, out: tmpDir() }), quiet)).rejects.toThrow(
      /(loss became (NaN|-?Infinity)|parameter '[\w.]+' became non-finite) .*at step \d+ .*kept the last good checkpoint/,
    );
    const ck = loadCheckpoint(path.join(out, 'checkpoint.ckpt'));
    for (const [, t] of ck.tensors) expect(t.data.every(Number.isFinite)).toBe(true);
  });

  it('refuses to overwrite an existing run', async () => {
    const out = tmpDir();
    fs.writeFileSync(path.join(out, 'checkpoint.ckpt'), 'x');
    await expect(train(TrainConfigSchema.parse({ ...base, epochs: 1, batchSize: 64, limit: 128, out }), quiet)).rejects.toThrow(
      /already holds a run; pass --resume/,
    );
  });
});
