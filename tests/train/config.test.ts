/**
 * One resolution of a run's settings: a new run's defaults come from TRAIN_DEFAULTS through the
 * schema; a resume keeps the run's settings, takes the invocation's anew and refuses changes to the rest.
 */
import { describe, expect, it } from 'vitest';
import { parseTrainConfig, resumeConfig, TRAIN_DEFAULTS, type ResolvedConfig } from '../../train/config.js';

const saved = {
  ...parseTrainConfig({
    method: 'vicreg',
    epochs: 4,
    batchSize: 64,
    hp: { proj_dim: 64 },
    knnMemory: 100,
    maxSteps: 13,
    threads: 1,
    out: '/runs/a',
  }),
  resolved: { stepsPerEpoch: 10, totalSteps: 40 },
} as unknown as ResolvedConfig;

describe('run configuration', () => {
  it('fills a new run with the declared defaults and names the flag of a bad value', () => {
    const cfg = parseTrainConfig({ out: 'x' });
    expect(cfg).toMatchObject({ method: TRAIN_DEFAULTS.method, epochs: TRAIN_DEFAULTS.epochs, workers: TRAIN_DEFAULTS.workers });
    expect(() => parseTrainConfig({ out: 'x', batchSize: 1 })).toThrow(/^--batch-size: /);
  });

  it('resumes with the saved run settings and this invocation’s own defaults', () => {
    const cfg = resumeConfig('/runs/a', saved, {});
    expect(cfg).toMatchObject({ epochs: 4, knnMemory: 100, method: 'vicreg', batchSize: 64 });
    // maxSteps and threads belonged to the invocation that saved the run.
    expect(cfg.maxSteps).toBeUndefined();
    expect(cfg.threads).toBe(TRAIN_DEFAULTS.threads);
    expect(cfg.resolved.totalSteps).toBe(40);
  });

  it('extends the schedule when more epochs are given', () => {
    const cfg = resumeConfig('/runs/a', saved, { epochs: 6, maxSteps: 5 });
    expect(cfg).toMatchObject({ epochs: 6, maxSteps: 5 });
    expect(cfg.resolved.totalSteps).toBe(60);
  });

  it('refuses a change to a setting the run was trained with, naming its flag, and accepts the same value', () => {
    expect(() => resumeConfig('/runs/a', saved, { batchSize: 128, hp: { proj_dim: 32 } })).toThrow(
      /--batch-size, --set cannot change on --resume/,
    );
    expect(() => resumeConfig('/runs/a', saved, { batchSize: 64, hp: { proj_dim: 64 }, method: 'vicreg', out: '/runs/a' })).not.toThrow();
    expect(() => resumeConfig('/runs/a', saved, { out: '/runs/b' })).toThrow(/name different folders/);
    expect(() => resumeConfig('/runs/a', saved, { epochs: 0 })).toThrow(/^--epochs: /);
  });
});
