/**
 * The evaluation: clustering scores against hand-worked cases and brute force, the linear probe on
 * synthetic features with a known answer, and `sslkit eval` on a real run and on its exported
 * ONNX file (the same encoder must score the same).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hungarian, hungarianAccuracy, nmi } from '../../eval/cluster-metrics.js';
import { linearProbe } from '../../eval/linear-probe.js';
import { Rng } from '../../core/random.js';
import { hasFashion, isolatedCache, tmpDir, trainTinyRun } from '../helpers.js';
import { exportRun } from '../../export/exporter.js';
import { evaluate } from '../../eval/evaluate.js';

const bin = path.resolve(import.meta.dirname, '../../bin/sslkit.js');

describe('clustering scores', () => {
  it('NMI and Hungarian accuracy: a relabelled perfect clustering, an independent one, a worked case', () => {
    expect(nmi([2, 2, 0, 0, 1, 1], [0, 0, 1, 1, 2, 2], 3, 3)).toBeCloseTo(1, 12);
    expect(hungarianAccuracy([2, 2, 0, 0, 1, 1], [0, 0, 1, 1, 2, 2], 3, 3)).toBe(1);
    // Clusters independent of classes: no information.
    expect(nmi([0, 0, 1, 1], [0, 1, 0, 1], 2, 2)).toBeCloseTo(0, 12);
    expect(hungarianAccuracy([0, 0, 1, 1], [0, 1, 0, 1], 2, 2)).toBe(0.5);
    // pred [0,0,0,1], truth [0,0,1,1]: H(pred) = H(truth)... worked by hand:
    // I = ½·log(4/3) + ¼·log(2/3) + ¼·log 2;  H(pred) = −(¾ log ¾ + ¼ log ¼);  H(truth) = log 2.
    const I = 0.5 * Math.log(4 / 3) + 0.25 * Math.log(2 / 3) + 0.25 * Math.log(2);
    const hp = -(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25));
    expect(nmi([0, 0, 0, 1], [0, 0, 1, 1], 2, 2)).toBeCloseTo(I / ((hp + Math.log(2)) / 2), 12);
    expect(hungarianAccuracy([0, 0, 0, 1], [0, 0, 1, 1], 2, 2)).toBe(0.75);
  });

  it('the Hungarian algorithm finds the brute-force optimum', () => {
    const rng = new Rng(3);
    const perms = (n: number): number[][] =>
      n === 1 ? [[0]] : perms(n - 1).flatMap((p) => Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]));
    for (let t = 0; t < 20; t++) {
      const n = 2 + (t % 5);
      const cost = Array.from({ length: n }, () => Array.from({ length: n }, () => rng.int(20)));
      const best = Math.min(...perms(n).map((p) => p.reduce((s, c, r) => s + cost[r][c], 0)));
      const match = hungarian(cost);
      expect(new Set(match).size).toBe(n);
      expect(match.reduce((s, c, r) => s + cost[r][c], 0)).toBe(best);
    }
  });
});

describe('linear probe', () => {
  it('separates linearly separable classes and stays at chance on random labels', async () => {
    const rng = new Rng(1);
    const [n, d, classes] = [600, 8, 3];
    const make = (random: boolean) => {
      const x = new Float32Array(n * d);
      const y = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        y[i] = rng.int(classes);
        for (let j = 0; j < d; j++) x[i * d + j] = rng.normal() + (random ? 0 : j === y[i] ? 4 : 0);
      }
      return { x, y };
    };
    const tr = make(false);
    const te = make(false);
    expect(await linearProbe(tr.x, tr.y, te.x, te.y, d, classes, { epochs: 20, batch: 100 })).toBeGreaterThan(0.97);
    const rtr = make(true);
    const rte = make(true);
    expect(await linearProbe(rtr.x, rtr.y, rte.x, rte.y, d, classes, { epochs: 20, batch: 100 })).toBeLessThan(0.45);
  });
});

describe.runIf(hasFashion)('sslkit eval', () => {
  it('scores a run and its exported ONNX file alike, and draws the map and the curves', async () => {
    const cache = isolatedCache();
    const run = await trainTinyRun({ knnMemory: 200, knnQueries: 100 });
    const model = path.join(run, 'model.onnx');
    await exportRun(run, { out: model, log: () => {} });
    const cli = (...args: string[]) => {
      const r = spawnSync(
        process.execPath,
        [bin, 'eval', ...args, '--train-limit', '2000', '--test-limit', '500', '--json', '--probe-epochs', '5'],
        {
          encoding: 'utf8',
          env: { ...process.env, SSLKIT_CACHE: cache },
        },
      );
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout);
    };
    const fromRun = cli(run);
    const out = tmpDir();
    const fromOnnx = cli(model, '--data', 'fashion-mnist', '--out', out);
    for (const r of [fromRun, fromOnnx]) {
      expect(r.trainImages).toBe(2000);
      expect(r.testImages).toBe(500);
      for (const k of ['knn_top1_k200', 'knn_top1_k20', 'linear_probe_top1', 'kmeans_accuracy']) expect(r[k]).toBeGreaterThan(0.3);
      expect(r.kmeans_nmi).toBeGreaterThan(0.1);
    }
    // The exported model is the trained encoder (BN folded): the same neighbours.
    expect(fromOnnx.knn_top1_k200).toBeCloseTo(fromRun.knn_top1_k200, 2);
    expect(fromRun.pictures.map((p: string) => path.basename(p))).toEqual(['embedding-map.png', 'training-curves.png']);
    expect(fromOnnx.pictures).toEqual([path.join(out, 'embedding-map.png')]);
    for (const p of [...fromRun.pictures, ...fromOnnx.pictures]) expect(fs.readFileSync(p).subarray(1, 4).toString()).toBe('PNG');
    // A foreign model's preprocessing from --preprocessing changes what it sees.
    const foreign = path.resolve(import.meta.dirname, '../fixtures/foreign/tiny-cnn.onnx');
    const pre = path.join(out, 'pre.json');
    fs.writeFileSync(pre, JSON.stringify({ mean: [0, 0, 0], std: [1, 1, 1] }));
    const assumed = cli(foreign, '--data', 'fashion-mnist');
    const given = cli(foreign, '--data', 'fashion-mnist', '--preprocessing', pre);
    expect(given.collapse_std).not.toBeCloseTo(assumed.collapse_std, 5);
    // A model without --data is a clear error.
    const bad = spawnSync(process.execPath, [bin, 'eval', model], { encoding: 'utf8', env: { ...process.env, SSLKIT_CACHE: cache } });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/an ONNX model needs --data/);
  });
});

describe('a run remembers its data', () => {
  it("eval RUN finds a data set that only the run's --data-dir had", async () => {
    isolatedCache();
    // CIFAR-10's binary format, written small in a folder no default lookup searches.
    const dir = tmpDir('sslkit-cifar-bin-');
    const rng = new Rng(5);
    const batch = (n: number) => {
      const b = new Uint8Array(n * 3073);
      for (let i = 0; i < n; i++) {
        b[i * 3073] = i % 10;
        for (let p = 1; p < 3073; p++) b[i * 3073 + p] = (i % 10) * 20 + rng.int(40);
      }
      return b;
    };
    for (let i = 1; i <= 5; i++) fs.writeFileSync(path.join(dir, `data_batch_${i}.bin`), batch(20));
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), batch(40));
    const run = await trainTinyRun({ data: 'cifar10', dataDir: dir, limit: undefined, batchSize: 32 });
    const r = await evaluate(run, { probeEpochs: 1 });
    expect(r.trainImages).toBe(100);
    expect(r.testImages).toBe(40);
    // An explicit --data-dir wins over the remembered one.
    await expect(evaluate(run, { dataDir: tmpDir('sslkit-empty-'), probeEpochs: 1 })).rejects.toThrow(/cifar/i);
  });
});
