/**
 * Foreign encoders (written by torch.onnx, not sslkit) as first-class inputs: their embeddings
 * through sslkit equal the producer's saved outputs to 1e-4, for a dynamic-batch CNN with a
 * [N, D, 1, 1] output and a fixed-batch token model with [N, T, D]; preprocessing comes from
 * metadata, options, a JSON file or stated defaults; bad models get a one-line error.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OnnxEncoder } from '../../core/runtime/onnx-encoder.js';
import { inspectModel } from '../../core/onnx/inspect.js';
import { Graph } from '../../train/engine/graph.js';
import * as o from '../../train/engine/ops.js';
import { encodeModel } from '../../core/onnx/onnx-proto.js';
import { preprocessImages } from '../../core/preprocess.js';
import { tmpDir } from '../helpers.js';

const FIX = path.resolve(import.meta.dirname, '../fixtures/foreign');
const f32 = (file: string) => {
  const b = fs.readFileSync(path.join(FIX, file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
};

function writeGraph(build: (g: Graph) => void): string {
  const g = new Graph('infer');
  build(g);
  const file = path.join(tmpDir(), 'm.onnx');
  fs.writeFileSync(file, encodeModel(g.toModel()));
  return file;
}

describe('foreign ONNX encoders', () => {
  it('torch.onnx CNN, dynamic batch, [N, D, 1, 1]: equals PyTorch to 1e-4; assumed preprocessing is stated', async () => {
    const logs: string[] = [];
    const enc = await OnnxEncoder.load(path.join(FIX, 'tiny-cnn.onnx'), { log: (l) => logs.push(l) });
    expect(enc.outputKind).toBe('[N, D, 1, 1]');
    expect(enc.fixedBatch).toBeNull();
    expect(enc.dim).toBe(48);
    expect(enc.preprocessing).toMatchObject({ channels: 3, height: 32, width: 32, mean: [0.485, 0.456, 0.406] });
    expect(enc.assumed).toEqual(['mean', 'std', 'pixelScale', 'resize']);
    expect(logs.join('\n')).toMatch(
      /tiny-cnn.onnx: no mean, std, pixelScale, resize in the model or the options; assuming .*mean \[0.485,0.456,0.406\]/,
    );
    const got = await enc.embed(f32('tiny-cnn.input.bin'), 4, 3); // batches of 3 then 1
    const want = f32('tiny-cnn.output.bin');
    expect(got).toHaveLength(want.length);
    got.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-4));
    await enc.release();
  });

  it('torch.onnx token model, fixed batch 2, [N, T, D]: CLS token and mean pooling equal PyTorch; odd counts are padded', async () => {
    const x = f32('tiny-tokens.input.bin');
    const want = f32('tiny-tokens.output.bin'); // [2, 17, 32]
    const cls = await OnnxEncoder.load(path.join(FIX, 'tiny-tokens.onnx'), { log: () => {} });
    expect([cls.fixedBatch, cls.outputKind, cls.dim]).toEqual([2, '[N, T, D]', 32]);
    // Three images: a full batch of 2, then 1 padded to 2.
    const three = new Float32Array(3 * 3072);
    three.set(x);
    three.set(x.subarray(0, 3072), 2 * 3072);
    const e = await cls.embed(three, 3);
    for (let i = 0; i < 3; i++)
      for (let d = 0; d < 32; d++) expect(Math.abs(e[i * 32 + d] - want[(i % 2) * 17 * 32 + d])).toBeLessThan(1e-4);
    const mean = await OnnxEncoder.load(path.join(FIX, 'tiny-tokens.onnx'), { pooling: 'mean', log: () => {} });
    const m = await mean.embed(x, 2);
    for (let i = 0; i < 2; i++)
      for (let d = 0; d < 32; d++) {
        let acc = 0;
        for (let t = 0; t < 17; t++) acc += want[i * 17 * 32 + t * 32 + d];
        expect(Math.abs(m[i * 32 + d] - acc / 17)).toBeLessThan(1e-4);
      }
    await cls.release();
    await mean.release();
  });

  it('inspect reads the foreign files: producer, dynamic and fixed batch, no metadata', () => {
    const cnn = inspectModel(path.join(FIX, 'tiny-cnn.onnx'));
    expect(cnn.producer).toMatch(/^pytorch/);
    expect(cnn.inputs).toEqual([{ name: 'input', dtype: 'float32', shape: ['batch', 3, 32, 32] }]);
    expect(cnn.outputs[0].shape).toEqual(['batch', 48, 1, 1]);
    expect(cnn.parameters).toBe(11088);
    expect(inspectModel(path.join(FIX, 'tiny-tokens.onnx')).inputs[0].shape).toEqual([2, 3, 32, 32]);
  });

  it('preprocessing from options or a JSON file; contradictions and bad fields are errors naming them', async () => {
    const dir = tmpDir();
    const good = path.join(dir, 'pre.json');
    fs.writeFileSync(good, JSON.stringify({ mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], pixel_scale: 1 / 255, resize: 'stretch' }));
    const enc = await OnnxEncoder.load(path.join(FIX, 'tiny-cnn.onnx'), { preprocessing: good, log: () => {} });
    expect(enc.preprocessing).toMatchObject({ mean: [0.5, 0.5, 0.5], resize: 'stretch' });
    expect(enc.assumed).toEqual([]);
    await enc.release();
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ std: [0, 1, 1] }));
    await expect(OnnxEncoder.load(path.join(FIX, 'tiny-cnn.onnx'), { preprocessing: bad })).rejects.toThrow(
      /bad.json: invalid preprocessing: std.0: /,
    );
    fs.writeFileSync(bad, JSON.stringify({ means: [1] }));
    await expect(OnnxEncoder.load(path.join(FIX, 'tiny-cnn.onnx'), { preprocessing: bad })).rejects.toThrow(
      /bad.json: invalid preprocessing: .*means/,
    );
    await expect(OnnxEncoder.load(path.join(FIX, 'tiny-cnn.onnx'), { preprocessing: { height: 224 }, log: () => {} })).rejects.toThrow(
      /input is \[batch, 3, 32, 32\], but preprocessing says height = 224/,
    );
  });

  it('a model with no float image input, or whose output is not an embedding, is refused with the reason', async () => {
    const ids = writeGraph((g) => {
      g.output(o.cast(g.input('token_ids', ['N', 8], 'int64'), 'float32'), 'y');
    });
    await expect(OnnxEncoder.load(ids)).rejects.toThrow(/no float image input \[N, C, H, W\]; inputs are token_ids int64 \[N, 8\]/);
    const spatial = writeGraph((g) => {
      g.output(o.relu(g.input('x', ['N', 3, 8, 8])), 'map');
    });
    await expect(OnnxEncoder.load(spatial, { log: () => {} })).rejects.toThrow(/output 'map' has shape \[1, 3, 8, 8\], not an embedding/);
    // One value for the whole batch: [1, 1] whatever N is (issue 18: it passed a batch-of-1 probe
    // and indexing stored zeros for every image but the first).
    const pooled = writeGraph((g) => {
      g.output(o.reshape(o.reduceMean(g.input('x', ['N', 3, 8, 8]), [0, 1, 2, 3], true), [1, 1]), 'embeddings');
    });
    await expect(OnnxEncoder.load(pooled, { log: () => {} })).rejects.toThrow(
      /output 'embeddings' has shape \[1, 1\] for a batch of 2: not one embedding per image/,
    );
  });

  it('the resize policy is validated and applied: stretch fills the input, cover crops it', async () => {
    const dir = tmpDir();
    const bogus = path.join(dir, 'bogus.json');
    fs.writeFileSync(bogus, JSON.stringify({ resize: 'bogus-policy' }));
    await expect(OnnxEncoder.load(path.join(FIX, 'tiny-cnn.onnx'), { preprocessing: bogus, log: () => {} })).rejects.toThrow(
      /bogus.json: invalid preprocessing: resize/,
    );
    await expect(
      OnnxEncoder.load(path.join(FIX, 'tiny-cnn.onnx'), { preprocessing: { resize: 'stretch-ish' }, log: () => {} }),
    ).rejects.toThrow(/resize 'stretch-ish' is not one sslkit implements \(cover-center-crop, stretch\)/);
    // A 2×4 image whose left and right columns differ from the centre ones, to a 2×2 input.
    const set = { n: 1, c: 1, h: 2, w: 4, pixels: Uint8Array.from([0, 100, 100, 0, 0, 100, 100, 0]), labels: new Int32Array(1) };
    const p = { channels: 1, height: 2, width: 2, pixelScale: 1, mean: [0], std: [1] };
    const cover = preprocessImages(set as never, [0], { ...p, resize: 'cover-center-crop' });
    const stretch = preprocessImages(set as never, [0], { ...p, resize: 'stretch' });
    expect(Array.from(cover, Math.round)).toEqual([100, 100, 100, 100]); // the centre two columns
    expect(Array.from(stretch, Math.round)).toEqual([50, 50, 50, 50]); // each output pixel averages an edge and a centre column
  });
});
