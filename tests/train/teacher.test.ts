/**
 * Teachers: an EMA teacher inside the step graph follows θ_t ← m·θ_t + (1 − m)·θ_s from the
 * student's initial values; a frozen teacher (any ONNX encoder file) fed the views converted to
 * its preprocessing gives the same embeddings as the engine's own encoder graph.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { train } from '../../train/trainer.js';
import { TrainConfigSchema } from '../../train/config.js';
import { METHODS } from '../../train/methods/index.js';
import type { Method } from '../../train/methods/types.js';
import { Ctx, mlp } from '../../train/engine/nn.js';
import { Graph } from '../../train/engine/graph.js';
import * as o from '../../train/engine/ops.js';
import { teacherMomentum } from '../../train/engine/optim.js';
import { OnnxEncoder } from '../../core/runtime/onnx-encoder.js';
import { toTeacherInput } from '../../train/methods/distill.js';
import { buildEncoderGraph, Embedder } from '../../train/encoder.js';
import { encodeModel } from '../../core/onnx/onnx-proto.js';
import { loadCheckpoint } from '../../train/checkpoint.js';
import { makeBackbone } from '../../train/backbones/index.js';
import { FASHION_DIR, hasFashion, isolatedCache, tmpDir } from '../helpers.js';

/** A minimal BYOL-shaped probe: student predicts the EMA teacher's embedding of the other view. */
const emaProbe: Method = {
  name: 'ema-probe',
  summary: 'test only',
  views: 2,
  augment: 'simclr',
  params: {},
  optimizer: { name: 'sgd', lrPer256: 0.1, weightDecay: 0 },
  teacherMomentum: () => 0.9,
  build(ctx, backbone, views) {
    const s = mlp(ctx, 'head', backbone.build(ctx, views[0]).features, { dims: [8] });
    const tctx = new Ctx(ctx.g, { training: true, seed: ctx.o.seed, teacher: true });
    const t = o.stopGradient(mlp(tctx, 'head', backbone.build(tctx, views[1]).features, { dims: [8] }));
    return { loss: o.reduceMean(o.square(o.sub(o.l2normalize(s), o.l2normalize(t)))), monitor: s };
  },
};

describe.runIf(hasFashion)('EMA teacher', () => {
  isolatedCache();
  it('after one step the teacher is m·θ₀ + (1 − m)·θ_student, starting from the student', async () => {
    METHODS['ema-probe'] = emaProbe;
    try {
      const out = tmpDir();
      const cfg = TrainConfigSchema.parse({
        method: 'ema-probe',
        data: 'fashion-mnist',
        dataDir: FASHION_DIR,
        width: 0.25,
        epochs: 2,
        batchSize: 32,
        limit: 64,
        maxSteps: 1,
        knnMemory: 0,
        knnQueries: 0,
        tuneConv: false,
        device: 'cpu',
        workers: 0,
        out,
      });
      await train(cfg, { log: () => {} });
      const ck = loadCheckpoint(path.join(out, 'checkpoint.ckpt')).tensors;
      // Initial values: a fresh build with the same seed.
      const g = new Graph('train');
      const ctx = new Ctx(g, { training: true, seed: 0 });
      mlp(ctx, 'head', makeBackbone('convnet', { width: 0.25 }).build(ctx, g.input('x', [2, 1, 28, 28])).features, { dims: [8] });
      const m = teacherMomentum(0, 4, 0.9);
      let compared = 0;
      for (const name of ['stem.conv.weight', 'stage2.conv1.weight', 'head.0.weight', 'head.0.bias']) {
        const init = g.params.get(name)!.init.data as Float32Array;
        const student = ck.get(name)!.data;
        const teacher = ck.get(`teacher.${name}`)!.data;
        expect(student).not.toEqual(init); // the student moved
        teacher.forEach((v, i) => expect(v).toBeCloseTo(m * init[i] + (1 - m) * student[i], 6));
        compared++;
      }
      expect(compared).toBe(4);
    } finally {
      delete METHODS['ema-probe'];
    }
  });
});

describe('frozen ONNX teacher (distill, bownet)', () => {
  it("the views, converted to the teacher file's preprocessing, embed like the engine encoder it was written from", async () => {
    const spec = { backbone: 'convnet', widthMult: 0.25, channels: 1, height: 28, width: 28 };
    const g0 = new Graph('train');
    const ctx = new Ctx(g0, { training: false, seed: 4 });
    makeBackbone('convnet', { width: 0.25 }).build(ctx, g0.input('x', [1, 1, 28, 28]));
    const values = new Map([...g0.params].map(([n, p]) => [n, p.init.data as Float32Array]));
    const file = path.join(tmpDir(), 'teacher.onnx');
    fs.writeFileSync(file, encodeModel(buildEncoderGraph(spec, values, 'N').g.toModel()));
    const views = Float32Array.from({ length: 5 * 784 }, (_, i) => Math.sin(i * 0.01));
    // No metadata in the file: OnnxEncoder assumes ImageNet's grey values (0.449, 0.226), so a run
    // normalised the same way needs no change and both must agree.
    const teacher = await OnnxEncoder.load(file, { log: () => {} });
    expect([teacher.preprocessing.mean, teacher.preprocessing.std, teacher.assumed]).toEqual([
      [0.449],
      [0.226],
      expect.arrayContaining(['mean', 'std']),
    ]);
    const x = toTeacherInput(views, 5, { mean: [0.449], std: [0.226] }, teacher.preprocessing);
    x.forEach((v, i) => expect(v).toBeCloseTo(views[i], 5));
    const t = await teacher.embed(x, 5, 5);
    const e = await Embedder.create(spec, values, { batch: 5 });
    const ref = await e.embed(views, 5);
    expect(teacher.dim).toBe(e.dim);
    t.forEach((v, i) => expect(v).toBeCloseTo(ref[i], 4));
    // Another normalisation is undone and redone: the pixel value is what is preserved.
    const y = toTeacherInput(Float32Array.of(1), 1, { mean: [0.5], std: [0.25] }, teacher.preprocessing);
    expect(y[0]).toBeCloseTo((0.75 - 0.449) / 0.226, 5);
    await teacher.release();
    await e.release();
  });
});
