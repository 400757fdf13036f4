/**
 * bench/quantize: float32, fp16-weight and int8 (QDQ) forms of the same encoders, in one run:
 * file size and onnxruntime-node latency at batch 1 and batch 32 (median of repeated runs, the
 * same inputs, `--threads` intra-op threads), with the speed-up of int8 against float32.
 * With `--accuracy DATA`, also the kNN top-1 of the float and the int8 model on DATA's held-out
 * images for each calibration method (min-max, percentile), as `sslkit quantize` measures it.
 *
 *   npx tsx bench/quantize.ts MODEL.onnx [MODEL2.onnx …] [--calibrate DATA] [--data-dir DIR]
 *     [--accuracy DATA] [--threads 2] [--repeats 5]
 * Calibration images come from `--calibrate` (a data set or folder:PATH), else synthetic images
 * (speed only: the kernels run the same whatever the ranges).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { decodeModel, encodeModel } from '../core/onnx/onnx-proto.js';
import { OnnxEncoder } from '../core/runtime/onnx-encoder.js';
import { loadDataset } from '../data/datasets.js';
import { sampleIndices } from '../core/image-set.js';
import { preprocessImages } from '../core/preprocess.js';
import { halfPrecisionWeights } from '../export/model-transforms.js';
import { quantizeModel, type CalibrationMethod } from '../export/quantize.js';
import { quantizeFile } from '../export/int8.js';
import { medianMs } from '../train/engine/profile.js';

const { values: args, positionals: models } = parseArgs({
  allowPositionals: true,
  options: {
    calibrate: { type: 'string' },
    accuracy: { type: 'string' },
    'data-dir': { type: 'string' },
    threads: { type: 'string', default: '2' },
    repeats: { type: 'string', default: '5' },
  },
});
if (!models.length) throw new Error('usage: npx tsx bench/quantize.ts MODEL.onnx [MODEL2.onnx …] [--calibrate DATA] [--accuracy DATA]');
const threads = Number(args.threads);
const repeats = Number(args.repeats);

console.log(
  `bench/quantize: ${os.cpus()[0].model}, ${os.cpus().length} cores, onnxruntime-node ${ort.env.versions.common}, ${threads} threads`,
);
for (const file of models) {
  const enc = await OnnxEncoder.load(file, { log: () => {} });
  const p = enc.preprocessing;
  await enc.release();
  const shape: [number, number, number] = [p.channels, p.height, p.width];
  const per = shape[0] * shape[1] * shape[2];
  let images: Float32Array;
  let n = 64;
  if (args.calibrate) {
    const set = await loadDataset(args.calibrate, 'train', { dataDir: args['data-dir'], log: () => {} });
    const idx = sampleIndices(set.labels, set.n, Math.min(256, set.n));
    images = preprocessImages(set, idx, p);
    n = idx.length;
  } else images = Float32Array.from({ length: n * per }, (_, i) => Math.sin(i * 0.0123) + Math.cos(i * 0.000071));
  const model = decodeModel(fs.readFileSync(file));
  const inputName = model.graph.input[0].name;
  const forms: [string, Uint8Array][] = [
    ['float32', fs.readFileSync(file)],
    ['fp16 weights', encodeModel(halfPrecisionWeights(model))],
    ['int8 (QDQ)', encodeModel((await quantizeModel(model, { images, n, shape, inputName })).model)],
  ];
  console.log(`\n${path.basename(file)} (${shape.join('×')} input)`);
  console.log('| form | file | batch 1 | batch 32 | images/s at 32 | vs float32 at 32 |');
  console.log('|---|---|---|---|---|---|');
  let base = 0;
  for (const [name, bytes] of forms) {
    const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1 });
    const x = Float32Array.from({ length: 32 * per }, (_, i) => Math.sin(i * 0.0071) - 0.3 * Math.cos(i * 0.00031));
    const t1 = await medianMs(() => s.run({ [inputName]: new ort.Tensor('float32', x.subarray(0, per), [1, ...shape]) }), repeats * 4);
    const t32 = await medianMs(() => s.run({ [inputName]: new ort.Tensor('float32', x, [32, ...shape]) }), repeats);
    await s.release();
    if (!base) base = t32;
    console.log(
      `| ${name} | ${(bytes.length / 2 ** 20).toFixed(2)} MiB | ${t1.toFixed(1)} ms | ${t32.toFixed(0)} ms | ${((32 * 1000) / t32).toFixed(0)} | ${(base / t32).toFixed(2)}× |`,
    );
  }
  if (args.accuracy) {
    console.log(`\nkNN top-1 on ${args.accuracy} (k = 20, 2,000 memory images, 1,000 held-out queries; 256 calibration images):`);
    console.log('| calibration | float | int8 | drop (points) | min cosine | mean cosine |');
    console.log('|---|---|---|---|---|---|');
    for (const method of ['minmax', 'percentile'] as CalibrationMethod[]) {
      const out = path.join(os.tmpdir(), `bench-quantize-${process.pid}.onnx`);
      const r = await quantizeFile(file, out, { data: args.accuracy, dataDir: args['data-dir'], method, log: () => {} });
      fs.rmSync(out, { force: true });
      const pct = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(2)}%`);
      const drop = r.knnFloat !== null && r.knnInt8 !== null ? (100 * (r.knnFloat - r.knnInt8)).toFixed(2) : 'n/a';
      console.log(
        `| ${method} | ${pct(r.knnFloat)} | ${pct(r.knnInt8)} | ${drop} | ${r.minCosine.toFixed(4)} | ${r.meanCosine.toFixed(4)} |`,
      );
    }
  }
}
