/**
 * Export round trips: for every backbone, fp32 and fp16, the written file (loaded by
 * onnxruntime, dynamic batch) agrees with the engine's eval-mode graph; folding, normalisation,
 * the projector head, opsets, metadata and `inspect`, and the bad files `inspect` must refuse.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportRun } from '../../export/exporter.js';
import { inspectModel } from '../../core/onnx/inspect.js';
import { OnnxEncoder } from '../../core/runtime/onnx-encoder.js';
import { fromHalfBits, toHalfBits } from '../../export/fp16.js';
import { hasFashion, isolatedCache, tmpDir, trainTinyRun } from '../helpers.js';

const runs: Record<string, string> = {};

async function embed(file: string, n: number, c = 1, hw = 28) {
  const s = await ort.InferenceSession.create(file);
  const x = Float32Array.from({ length: n * c * hw * hw }, (_, i) => Math.sin(i * 0.01));
  const out = await s.run({ pixel_values: new ort.Tensor('float32', x, [n, c, hw, hw]) });
  await s.release();
  return out.embeddings;
}

describe('half precision', () => {
  it('converts exactly representable values exactly and rounds to nearest even', () => {
    for (const v of [0, 1, -2, 0.5, 65504, 2 ** -24, -(2 ** -14)]) expect(fromHalfBits(toHalfBits(v))).toBe(v);
    expect(toHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(toHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(fromHalfBits(toHalfBits(1e6))).toBe(Infinity);
    expect(Math.abs(fromHalfBits(toHalfBits(0.1)) - 0.1)).toBeLessThan(1e-4);
  });
});

describe.runIf(hasFashion)('sslkit export', () => {
  beforeAll(async () => {
    isolatedCache();
    for (const backbone of ['convnet', 'resnet10', 'vit']) {
      runs[backbone] = await trainTinyRun({ backbone, hp: { proj_hidden: 64, proj_out: 32 }, limit: 128, knnQueries: 0 });
    }
  }, 300_000);

  it.each(['convnet', 'resnet10', 'vit'])('%s: fp32 and fp16 files agree with the engine, with a dynamic batch', async (backbone) => {
    const dir = tmpDir();
    const f32 = await exportRun(runs[backbone], { out: path.join(dir, 'm.onnx'), log: () => {} });
    expect(f32.maxAbsDiff).toBeLessThanOrEqual(1e-4);
    expect(f32.checkedImages).toBe(64);
    const f16 = await exportRun(runs[backbone], { out: path.join(dir, 'm16.onnx'), fp16: true, log: () => {} });
    expect(f16.maxAbsDiff).toBeLessThanOrEqual(1e-2);
    expect(f16.maxAbsDiff).toBeGreaterThan(0); // the weights really are rounded
    expect(f16.bytes).toBeLessThan(0.6 * f32.bytes);
    for (const n of [1, 5]) expect((await embed(path.join(dir, 'm.onnx'), n)).dims).toEqual([n, f32.embeddingDim]);
    const info = inspectModel(path.join(dir, 'm.onnx'));
    expect(info.inputs).toEqual([{ name: 'pixel_values', dtype: 'float32', shape: ['N', 1, 28, 28] }]);
    expect(info.outputs[0]).toEqual({ name: 'embeddings', dtype: 'float32', shape: ['N', f32.embeddingDim] });
    expect(info.metadata).toMatchObject({
      method: 'simclr',
      backbone,
      embedding_dim: String(f32.embeddingDim),
      input_channels: '1',
      layout: 'NCHW',
      weights_dtype: 'float32',
    });
    expect(JSON.parse(info.metadata.preprocessing)).toMatchObject({ channels: 1, height: 28, width: 28, pixel_scale: 1 / 255 });
    expect(inspectModel(path.join(dir, 'm16.onnx')).metadata.weights_dtype).toBe('float16');
    if (backbone === 'vit') expect(info.outputs.map((o) => o.name)).toContain('attention');
  });

  it('folds every BatchNorm of a CNN into its convolution, and --no-fold keeps them with the same output', async () => {
    const dir = tmpDir();
    const folded = await exportRun(runs.convnet, { out: path.join(dir, 'f.onnx'), log: () => {} });
    const kept = await exportRun(runs.convnet, { out: path.join(dir, 'k.onnx'), fold: false, log: () => {} });
    expect(folded.foldedBatchNorms).toBe(9);
    expect(inspectModel(path.join(dir, 'f.onnx')).opCounts.BatchNormalization).toBeUndefined();
    expect(inspectModel(path.join(dir, 'k.onnx')).opCounts.BatchNormalization).toBe(9);
    expect(kept.foldedBatchNorms).toBe(0);
    const a = (await embed(path.join(dir, 'f.onnx'), 4)).data as Float32Array;
    const b = (await embed(path.join(dir, 'k.onnx'), 4)).data as Float32Array;
    a.forEach((v, i) => expect(v).toBeCloseTo(b[i], 4));
  });

  it('--normalize gives unit vectors; --head projector gives the projector output', async () => {
    const dir = tmpDir();
    const r = await exportRun(runs.convnet, {
      out: path.join(dir, 'p.onnx'),
      normalize: true,
      head: 'projector',
      opset: 18,
      log: () => {},
    });
    expect(r.embeddingDim).toBe(32);
    expect(r.opset).toBe(18);
    const e = (await embed(path.join(dir, 'p.onnx'), 3)).data as Float32Array;
    for (let i = 0; i < 3; i++) expect(Math.hypot(...e.subarray(i * 32, (i + 1) * 32))).toBeCloseTo(1, 5);
  });

  it('refuses an opset the graph cannot be written in, naming why', async () => {
    await expect(exportRun(runs.vit, { out: path.join(tmpDir(), 'v.onnx'), opset: 16 })).rejects.toThrow(
      /opset 16 is not possible .* \(LayerNormalization needs 17\)/,
    );
    await expect(exportRun(runs.convnet, { out: path.join(tmpDir(), 'c.onnx'), opset: 99 })).rejects.toThrow(/opsets 13-21/);
    const low = exportRun(runs.convnet, { out: path.join(tmpDir(), 'c.onnx'), opset: 12 });
    await expect(low).rejects.toThrow(/opset 12 is not possible for this graph: it can be written at opsets 13-21 \(sslkit writes/);
    await expect(low).rejects.not.toThrow(/undefined/);
    expect(
      (await exportRun(runs.convnet, { out: path.join(tmpDir(), 'c13.onnx'), opset: 13, log: () => {} })).maxAbsDiff,
    ).toBeLessThanOrEqual(1e-4);
  });

  it("the metadata's kNN score is the checkpoint's own: none for a run stopped before its first epoch ended", async () => {
    const stopped = await trainTinyRun({ knnMemory: 200, knnQueries: 100, maxSteps: 2 });
    // The initialisation's score is in the metrics (epoch 0) but is not this model's.
    expect(fs.readFileSync(path.join(stopped, 'metrics.jsonl'), 'utf8')).toMatch(/"epoch":0,"step":0,"knn_top1"/);
    const a = path.join(tmpDir(), 'a.onnx');
    await exportRun(stopped, { out: a, log: () => {} });
    expect(inspectModel(a).metadata.knn_top1).toBe('unknown');
    const finished = await trainTinyRun({ knnMemory: 200, knnQueries: 100 });
    const epoch1 = fs
      .readFileSync(path.join(finished, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((m) => m.type === 'epoch' && m.epoch === 1);
    const b = path.join(tmpDir(), 'b.onnx');
    await exportRun(finished, { out: b, log: () => {} });
    expect(inspectModel(b).metadata.knn_top1).toBe(epoch1.knn_top1.toFixed(4));
  });

  it('an exported model loads as an OnnxEncoder with its preprocessing from the metadata, nothing assumed', async () => {
    const file = path.join(tmpDir(), 'm.onnx');
    await exportRun(runs.convnet, { out: file, log: () => {} });
    const enc = await OnnxEncoder.load(file, { log: () => {} });
    expect(enc.assumed).toEqual([]);
    expect(enc.preprocessing).toMatchObject({ channels: 1, height: 28, width: 28, resize: 'cover-center-crop' });
    // Fashion-MNIST's image edges are black: a transparent image is composited on black.
    const [r, g, b] = enc.preprocessing.background!;
    expect([g, b]).toEqual([r, r]);
    expect(r).toBe(0);
    expect(enc.info.metadata.background).toMatch(
      /^transparent pixels composited on rgb\(\d+, \d+, \d+\), the median colour of the training data's image edges$/,
    );
    expect(enc.outputKind).toBe('[N, D]');
    await enc.release();
  });

  it('sslkit inspect: a table and --json; bad files get a one-line error', () => {
    const dir = tmpDir();
    const bin = path.resolve(import.meta.dirname, '../../bin/sslkit.js');
    const run = (...a: string[]) => spawnSync(process.execPath, [bin, ...a], { encoding: 'utf8' });
    const e = run('export', runs.convnet, '--out', path.join(dir, 'm.onnx'));
    expect(e.status, e.stderr).toBe(0);
    expect(e.stdout).toMatch(/check: max \|onnxruntime − engine\| = .* over 64 images \(allowed 0.0001\)/);
    const table = run('inspect', path.join(dir, 'm.onnx'));
    expect(table.stdout).toMatch(/input\s+pixel_values\s+float32 \[N, 1, 28, 28\]/);
    expect(table.stdout).toMatch(/knn_top1/);
    expect(JSON.parse(run('inspect', path.join(dir, 'm.onnx'), '--json').stdout).nodes).toBeGreaterThan(5);
    const bytes = fs.readFileSync(path.join(dir, 'm.onnx'));
    fs.writeFileSync(path.join(dir, 'cut.onnx'), bytes.subarray(0, bytes.length >> 1));
    fs.writeFileSync(path.join(dir, 'text.onnx'), 'hello, this is not a model\n');
    for (const [f, msg] of [
      ['cut.onnx', /cut.onnx: not a valid ONNX file/],
      ['text.onnx', /text.onnx: not a valid ONNX file/],
      ['missing.onnx', /missing.onnx: no such file/],
    ] as const) {
      const r = run('inspect', path.join(dir, f));
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(msg);
    }
  });
});
