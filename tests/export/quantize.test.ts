/**
 * int8 quantization (issue 33): the arithmetic against hand-computed values and against
 * onnxruntime's own QuantizeLinear/DequantizeLinear; a quantized graph against its float graph,
 * run by onnxruntime's integer kernels (QLinearConv in the optimised graph); a foreign torch.onnx
 * encoder and an sslkit one quantized by `sslkit quantize` / `sslkit export --int8`, checked,
 * recorded in the metadata and served; an index of the float model refused for the int8 one
 * unless asked; models that cannot be quantized refused, or kept float where needed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { activationParams, quantizeModel, quantizeValue, quantizeWeights, roundHalfEven } from '../../export/quantize.js';
import { DataType, decodeModel, encodeModel, type ModelMsg } from '../../core/onnx/onnx-proto.js';
import { f32Tensor } from '../../export/model-transforms.js';
import { inspectModel } from '../../core/onnx/inspect.js';
import { OnnxEncoder } from '../../core/runtime/onnx-encoder.js';
import { buildIndex } from '../../serve/build-index.js';
import { startServer } from '../../serve/server.js';
import { imageToInput } from '../../serve/images.js';
import sharp from 'sharp';
import { FASHION_DIR, hasFashion, httpJson, isolatedCache, tmpDir, trainTinyRun } from '../helpers.js';

const bin = path.resolve(import.meta.dirname, '../../bin/sslkit.js');
const FOREIGN = path.resolve(import.meta.dirname, '../fixtures/foreign/tiny-cnn.onnx');
const sslkit = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

/** A one-node-at-a-time model: `nodes` between a float input [shape] and output `y`. */
function tinyModel(nodes: ModelMsg['graph']['node'], initializer: ModelMsg['graph']['initializer'], shape: number[], out = 'y'): ModelMsg {
  const vi = (name: string, dims?: number[]) => ({
    name,
    type: { tensor_type: { elem_type: DataType.float32, ...(dims ? { shape: { dim: dims.map((d) => ({ dim_value: d })) } } : {}) } },
  });
  return {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: { name: 'g', node: nodes, initializer, input: [vi('x', shape)], output: [vi(out)] },
  };
}

const cosine = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i] * b[i];
    na += a[i] ** 2;
    nb += b[i] ** 2;
  }
  return d / Math.sqrt(na * nb);
};

describe('int8 arithmetic', () => {
  it('rounds half to even, saturates, and picks scales and zero points as worked out by hand', () => {
    expect([0.5, 1.5, 2.5, -2.5, 3.5, -0.5, 2.4, -2.6].map(roundHalfEven)).toEqual([0, 2, 2, -2, 4, -0, 2, -3]);
    // Activations in [-1, 3]: 255 steps of 4/255; zero point round(1 / (4/255)) = round(63.75) = 64.
    const a = activationParams(-1, 3);
    expect(a.scale).toBeCloseTo(4 / 255, 7);
    expect(a.zeroPoint).toBe(64);
    expect(quantizeValue(1, a.scale, a.zeroPoint, 0, 255)).toBe(128); // 63.75 → 64, + 64
    expect(quantizeValue(-5, a.scale, a.zeroPoint, 0, 255)).toBe(0); // saturates
    expect(quantizeValue(9, a.scale, a.zeroPoint, 0, 255)).toBe(255);
    // A range that does not hold 0 is widened to it (ReLU outputs: zero point 0).
    expect(activationParams(0.5, 2.55)).toEqual({ scale: Math.fround(0.01), zeroPoint: 0 });
    // Weights per channel, symmetric: channel 0's largest is 1.27 (scale 0.01), channel 1's is 2 (scale 2/127).
    const w = quantizeWeights(Float32Array.of(0.5, -1.27, 0.1, 2, 0, -0.02), 2, 0);
    expect(Array.from(w.scales)).toEqual([Math.fround(0.01), Math.fround(2 / 127)]);
    expect(Array.from(w.q)).toEqual([50, -127, 10, 127, 0, -1]);
    // Axis 1: the channels are the columns of a [3, 2] matrix (MatMul's weight [in, out]).
    const m = quantizeWeights(Float32Array.of(0.5, 2, -1.27, 0, 0.1, -0.02), 2, 1);
    expect(Array.from(m.q)).toEqual([50, 127, -127, 0, 10, -1]);
  });

  it("onnxruntime's QuantizeLinear/DequantizeLinear give the values computed here", async () => {
    const { scale, zeroPoint } = activationParams(-1, 3);
    const model = tinyModel(
      [
        { op_type: 'QuantizeLinear', input: ['x', 's', 'z'], output: ['q'] },
        { op_type: 'DequantizeLinear', input: ['q', 's', 'z'], output: ['y'] },
      ],
      [f32Tensor('s', [], Float32Array.of(scale)), { name: 'z', dims: [], data_type: DataType.uint8, raw_data: Uint8Array.of(zeroPoint) }],
      [7],
    );
    const x = Float32Array.of(-2, -1, 0, 0.5, 1, 2.99, 10);
    const s = await ort.InferenceSession.create(encodeModel(model));
    const y = (await s.run({ x: new ort.Tensor('float32', x, [7]) })).y.data as Float32Array;
    await s.release();
    const want = Array.from(x, (v) => (quantizeValue(v, scale, zeroPoint, 0, 255) - zeroPoint) * scale);
    expect(Array.from(y)).toEqual(want.map(Math.fround));
  });
});

describe('quantizeModel', () => {
  it('quantizes a torch.onnx encoder: onnxruntime runs it with integer kernels and it stays within int8 error of the float graph', async () => {
    const model = decodeModel(fs.readFileSync(FOREIGN));
    const n = 64;
    const images = Float32Array.from({ length: n * 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.013) + 0.5 * Math.cos(i * 0.00071));
    const { model: q, report } = await quantizeModel(model, { images, n, shape: [3, 32, 32], inputName: 'input' });
    expect(report.quantized).toEqual({ Conv: 2 });
    expect(report.keptFloat).toEqual([]);
    const bytes = encodeModel(q);
    const dir = tmpDir();
    const optimised = path.join(dir, 'opt.onnx');
    const [fs32, s8] = [
      await ort.InferenceSession.create(FOREIGN),
      await ort.InferenceSession.create(bytes, { optimizedModelFilePath: optimised } as ort.InferenceSession.SessionOptions),
    ];
    // The integer kernels, not float convolutions on dequantized weights.
    const ops = decodeModel(fs.readFileSync(optimised)).graph.node.map((nd) => nd.op_type);
    expect(ops.filter((o) => o === 'QLinearConv')).toHaveLength(2);
    expect(ops).not.toContain('Conv');
    // Unseen inputs: close to the float model, and not equal to it (it really is 8-bit).
    const x = Float32Array.from({ length: 8 * 3 * 32 * 32 }, (_, i) => Math.cos(i * 0.0071) - 0.3 * Math.sin(i * 0.031));
    const feed = { input: new ort.Tensor('float32', x, [8, 3, 32, 32]) };
    const [a, b] = [(await fs32.run(feed)).features.data as Float32Array, (await s8.run(feed)).features.data as Float32Array];
    await fs32.release();
    await s8.release();
    for (let i = 0; i < 8; i++) expect(cosine(a.subarray(i * 48, (i + 1) * 48), b.subarray(i * 48, (i + 1) * 48))).toBeGreaterThan(0.995);
    expect(Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])))).toBeGreaterThan(1e-4);
    // A quarter of the float file, or near it (int8 weights, float scales per channel).
    expect(bytes.length).toBeLessThan(0.4 * fs.statSync(FOREIGN).size);
  });

  it('refuses a model with nothing to quantize, and keeps float (saying why) a Conv whose weights are computed', async () => {
    const pool = tinyModel([{ op_type: 'GlobalAveragePool', input: ['x'], output: ['y'] }], [], [1, 3, 8, 8]);
    await expect(quantizeModel(pool, { images: new Float32Array(192), n: 1, shape: [3, 8, 8], inputName: 'x' })).rejects.toThrow(
      /nothing to quantize: the model has no Conv, Gemm or MatMul with constant float weights/,
    );
    const w = Float32Array.from({ length: 4 * 3 * 9 }, (_, i) => Math.sin(i));
    const mixed = tinyModel(
      [
        { op_type: 'Conv', input: ['x', 'w1'], output: ['a'], name: 'fixed', attribute: [{ name: 'pads', type: 7, ints: [1, 1, 1, 1] }] },
        { op_type: 'Mul', input: ['w1b', 'two'], output: ['w2'] },
        {
          op_type: 'Conv',
          input: ['a', 'w2'],
          output: ['y'],
          name: 'computed',
          attribute: [{ name: 'pads', type: 7, ints: [1, 1, 1, 1] }],
        },
      ],
      [
        f32Tensor('w1', [4, 3, 3, 3], w),
        f32Tensor(
          'w1b',
          [4, 4, 3, 3],
          Float32Array.from({ length: 144 }, (_, i) => Math.cos(i)),
        ),
        f32Tensor('two', [], Float32Array.of(2)),
      ],
      [4, 3, 8, 8],
    );
    const images = Float32Array.from({ length: 4 * 192 }, (_, i) => Math.sin(i * 0.1));
    const { report } = await quantizeModel(mixed, { images, n: 4, shape: [3, 8, 8], inputName: 'x', method: 'minmax' });
    expect(report.quantized).toEqual({ Conv: 1 });
    expect(report.keptFloat).toEqual([{ node: 'computed', op: 'Conv', why: 'its weights are not a constant initialiser' }]);
    const old = { ...pool, opset_import: [{ domain: '', version: 11 }] };
    await expect(quantizeModel(old, { images: new Float32Array(192), n: 1, shape: [3, 8, 8], inputName: 'x' })).rejects.toThrow(
      /the model is opset 11: per-channel int8 needs opset 13 or later/,
    );
  });
});

describe.runIf(hasFashion)('sslkit quantize and sslkit export --int8', () => {
  let run: string;
  let floatModel: string;

  beforeAll(async () => {
    isolatedCache();
    run = await trainTinyRun({ limit: 512 });
    floatModel = path.join(run, 'model.onnx');
  }, 180_000);

  it('export --int8 writes both models; the int8 one is checked against the float one and says how it was made', () => {
    const r = sslkit(['export', run, '--out', floatModel, '--int8', '--calibration', '128', '--data-dir', FASHION_DIR]);
    expect(r.status, r.stderr).toBe(0);
    const int8 = path.join(run, 'model.int8.onnx');
    expect(r.stdout).toMatch(
      new RegExp(
        `wrote ${int8.replace(/[.]/g, '\\.')}: [\\d.]+ KiB \\(float [\\d.]+ KiB\\), int8 QDQ with \\d+ Conv(, \\d+ Gemm)? quantized, calibrated on 128 images \\(percentile\\)\\n` +
          `check: kNN top-1 on 1000 held-out images: int8 \\d+\\.\\d\\d% · float \\d+\\.\\d\\d%; cosine to the float embeddings min 0\\.9\\d+, mean 0\\.9\\d+`,
      ),
    );
    const md = inspectModel(int8).metadata;
    expect(md.quantized).toBe('int8');
    expect(JSON.parse(md.quantization)).toMatchObject({ format: 'QDQ', calibration: { method: 'percentile', images: 128 } });
    expect(md.quantized_from).toMatch(/^[0-9a-f]{64}$/);
    const check = JSON.parse(md.int8_check);
    // The convnet keeps what it learned: at most two points of kNN lost on this tiny run (192 memory images).
    expect(check.knn_top1_float - check.knn_top1_int8).toBeLessThan(0.02);
    expect(check.mean_cosine).toBeGreaterThan(0.99);
    // The float model's own metadata (preprocessing, method) is carried over.
    expect(md.method).toBe('simclr');
    expect(fs.statSync(int8).size).toBeLessThan(0.5 * fs.statSync(floatModel).size);
  }, 120_000);

  it('the service runs the int8 model; an index of the float model is refused for it unless --allow-requantized', async () => {
    const int8 = path.join(run, 'model.int8.onnx');
    if (!fs.existsSync(int8)) sslkit(['export', run, '--out', floatModel, '--int8', '--calibration', '64', '--data-dir', FASHION_DIR]);
    const idx = path.join(tmpDir(), 'float.idx');
    await buildIndex(floatModel, idx, { data: 'fashion-mnist', dataDir: FASHION_DIR, limit: 100, log: () => {} });
    await expect(startServer({ model: int8, index: idx, port: 0, device: 'cpu', log: () => {} })).rejects.toThrow(
      /was built with .*model\.onnx, and .*model\.int8\.onnx is the int8 quantization of the model it was built with: their vectors differ slightly.*pass --allow-requantized/,
    );
    const lines: string[] = [];
    const s = await startServer({ model: int8, index: idx, port: 0, device: 'cpu', allowRequantized: true, log: (l) => lines.push(l) });
    try {
      expect(lines.join('\n')).toMatch(/serving vectors of .*model\.onnx with the int8 quantization of the model/);
      const png = await sharp({ create: { width: 28, height: 28, channels: 3, background: '#777' } })
        .composite([{ input: Buffer.from('<svg width="28" height="28"><rect x="6" y="4" width="12" height="20" fill="#eee"/></svg>') }])
        .png()
        .toBuffer();
      const enc = await OnnxEncoder.load(floatModel, { log: () => {} });
      const want = await enc.embed(await imageToInput(png, enc.preprocessing, 1e6, 'image'), 1);
      await enc.release();
      const got = await httpJson(`${s.url}/v1/embeddings`, { input: png.toString('base64') });
      expect(got.status).toBe(200);
      expect(cosine(got.body.data[0].embedding, want)).toBeGreaterThan(0.98);
      expect((await httpJson(`${s.url}/v1/search`, { embedding: got.body.data[0].embedding, k: 3 })).body.data).toHaveLength(3);
    } finally {
      await s.close();
    }
  }, 120_000);

  it('sslkit quantize: a foreign torch.onnx encoder, calibrated on a data set with its preprocessing given; bad calls are clear', () => {
    const dir = tmpDir();
    const pre = path.join(dir, 'pre.json');
    fs.writeFileSync(pre, JSON.stringify({ channels: 3, height: 32, width: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }));
    const out = path.join(dir, 'tiny.int8.onnx');
    const r = sslkit([
      'quantize',
      FOREIGN,
      '--out',
      out,
      '--data',
      'fashion-mnist',
      '--data-dir',
      FASHION_DIR,
      '--preprocessing',
      pre,
      '--calibration',
      '64',
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/int8 QDQ with 2 Conv quantized, calibrated on 64 images/);
    expect(r.stdout).toMatch(/cosine to the float embeddings min 0\.9\d+/);
    expect(inspectModel(out).metadata.quantized).toBe('int8');
    const again = sslkit(['quantize', out, '--data', 'fashion-mnist', '--data-dir', FASHION_DIR, '--preprocessing', pre]);
    expect(again.status).not.toBe(0);
    expect(again.stderr).toMatch(/already quantized/);
    const same = sslkit(['quantize', FOREIGN, '--out', FOREIGN, '--data', 'fashion-mnist', '--data-dir', FASHION_DIR]);
    expect(same.stderr).toMatch(/the int8 model needs a file of its own/);
    const noData = sslkit(['quantize', FOREIGN, '--out', out, '--data', 'folder:/nonexistent/photos']);
    expect(noData.status).not.toBe(0);
    expect(noData.stderr).toMatch(/\/nonexistent\/photos/);
  }, 120_000);
});
