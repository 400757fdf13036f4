/**
 * `sslkit quantize MODEL.onnx` and `sslkit export RUN --int8`: an ONNX image encoder (sslkit's or
 * foreign) to its int8 QDQ form (quantize.ts), calibrated on real images of a data set, measured
 * against the float model on held-out images before it is kept: kNN top-1 of both (where the data
 * has labels) and the cosine between their embeddings of the same images. The file records how it
 * was quantized, on what, what it measured, and the SHA-256 of the float model it came from (the
 * service tells an index of that float model apart from one of another model).
 */
import path from 'node:path';
import fs from 'node:fs';
import { decodeModel, encodeModel } from '../core/onnx/onnx-proto.js';
import { OnnxEncoder, type Preprocessing } from '../core/runtime/onnx-encoder.js';
import { loadDataset } from '../data/datasets.js';
import { sampleIndices, type ImageSet } from '../core/image-set.js';
import { preprocessImages } from '../core/preprocess.js';
import { knnAccuracy, normalizeRows } from '../core/vectors.js';
import { fileSha256, writeFileAtomic } from '../core/fs.js';
import { UserError } from '../core/errors.js';
import { DEFAULT_CALIBRATION, quantizeModel, type CalibrationMethod, type QuantizeReport } from './quantize.js';

export interface Int8Options {
  /** The data set whose images calibrate and check the model (a name or `folder:PATH`). */
  data: string;
  dataDir?: string;
  /** Calibration images (a seeded, class-stratified sample of the training split). */
  calibration?: number;
  method?: CalibrationMethod;
  percentile?: number;
  /** Held-out images the float and int8 models are compared on (kNN queries). */
  checkImages?: number;
  /** kNN memory: training images not used for calibration. */
  memoryImages?: number;
  /** Preprocessing for a model whose metadata lacks it (as for `sslkit index`). */
  preprocessing?: Partial<Preprocessing> | string;
  seed?: number;
  log?: (line: string) => void;
}

export interface Int8Report {
  file: string;
  bytes: number;
  floatBytes: number;
  quantization: QuantizeReport;
  calibrationImages: number;
  checkedImages: number;
  /** kNN top-1 (k = 20, exp(s/0.07) votes) of each model, or null where the data has no labels. */
  knnFloat: number | null;
  knnInt8: number | null;
  /** Cosine between the two models' embeddings of the same held-out images. */
  minCosine: number;
  meanCosine: number;
}

export const DEFAULT_CALIBRATION_IMAGES = 256;

/** A kNN drop above this many points is warned about. */
export const WARN_DROP_POINTS = 1;

/** A seeded sample of `n` of the images `pool` of `set`, in proportion to their classes. */
function stratified(set: ImageSet, pool: Int32Array, n: number, seed: number): Int32Array {
  const labels = set.labels ? Int32Array.from(pool, (i) => set.labels![i]) : null;
  return Int32Array.from(sampleIndices(labels, pool.length, Math.min(n, pool.length), seed), (j) => pool[j]);
}

async function embed(enc: OnnxEncoder, set: ImageSet, idx: Int32Array): Promise<Float32Array> {
  const out = new Float32Array(idx.length * enc.dim);
  for (let s = 0; s < idx.length; s += 64) {
    const part = idx.subarray(s, s + 64);
    out.set(await enc.embed(preprocessImages(set, part, enc.preprocessing), part.length), s * enc.dim);
  }
  return normalizeRows(out, enc.dim);
}

/** Quantizes `floatFile` into `out` (written atomically, after the comparison), and says what it measured. */
export async function quantizeFile(floatFile: string, out: string, o: Int8Options): Promise<Int8Report> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (path.resolve(floatFile) === path.resolve(out)) throw new UserError(`${out}: the int8 model needs a file of its own (--out)`);
  const seed = o.seed ?? 0;
  const float = await OnnxEncoder.load(floatFile, { preprocessing: o.preprocessing, log });
  const p = float.preprocessing;
  // A folder of photos decodes straight to a cover-cropping model's size, as `sslkit index` does.
  const atModelSize = o.data.startsWith('folder:') && p.resize === 'cover-center-crop' && p.height === p.width;
  const opts = { dataDir: o.dataDir, log: () => {}, ...(atModelSize ? { size: p.height, channels: p.channels as 1 | 3 } : {}) };
  const train = await loadDataset(o.data, 'train', opts);
  const test = await loadDataset(o.data, 'test', opts).catch(() => null);
  // Calibration and kNN memory: disjoint class-stratified samples of the training split; queries:
  // the test split (else more training images). Images in a folder come class by class, so every
  // sample is stratified, never a prefix.
  const all = Int32Array.from({ length: train.n }, (_, i) => i);
  const calibration = stratified(train, all, o.calibration ?? DEFAULT_CALIBRATION_IMAGES, seed);
  const nCal = calibration.length;
  const taken = new Set(calibration);
  const memory = stratified(
    train,
    all.filter((i) => !taken.has(i)),
    Math.min(o.memoryImages ?? 2000, Math.floor((train.n - nCal) / 2)),
    seed + 1,
  );
  for (const i of memory) taken.add(i);
  const queriesFrom = test ?? train;
  const queries = test
    ? stratified(
        test,
        Int32Array.from({ length: test.n }, (_, i) => i),
        o.checkImages ?? 1000,
        seed,
      )
    : stratified(
        train,
        all.filter((i) => !taken.has(i)),
        o.checkImages ?? 1000,
        seed + 2,
      );
  if (queries.length === 0) throw new UserError(`${o.data}: no images left to check the int8 model on (it has ${train.n})`);

  const model = decodeModel(fs.readFileSync(floatFile), floatFile);
  log(`int8: calibrating on ${nCal} images of ${o.data} (${o.method ?? DEFAULT_CALIBRATION})`);
  const { model: q, report } = await quantizeModel(model, {
    images: preprocessImages(train, calibration, p),
    n: nCal,
    shape: [p.channels, p.height, p.width],
    inputName: float.input,
    method: o.method,
    percentile: o.percentile,
  });
  for (const k of report.keptFloat) log(`int8: ${k.node} (${k.op}) stays float: ${k.why}`);

  // The comparison, on a temporary file: the int8 model is only written once it has been measured.
  const tmp = `${out}.${process.pid}.check.onnx`;
  const metadata = new Map((q.metadata_props ?? []).map((e) => [e.key, e.value]));
  fs.writeFileSync(tmp, encodeModel(q));
  let int8: OnnxEncoder | null = null;
  let knnFloat: number | null = null;
  let knnInt8: number | null = null;
  let minCosine = 1;
  let cosSum = 0;
  try {
    int8 = await OnnxEncoder.load(tmp, { preprocessing: o.preprocessing, log: () => {} });
    const [fq, iq] = [await embed(float, queriesFrom, queries), await embed(int8, queriesFrom, queries)];
    const d = float.dim;
    for (let i = 0; i < queries.length; i++) {
      let c = 0;
      for (let j = 0; j < d; j++) c += fq[i * d + j] * iq[i * d + j];
      minCosine = Math.min(minCosine, c);
      cosSum += c;
    }
    if (train.labels && queriesFrom.labels && memory.length > 0) {
      const labelsOf = (set: ImageSet, idx: Int32Array) => Int32Array.from(idx, (i) => set.labels![i]);
      const knn = { k: 20, temperature: 0.07, classes: train.classes.length };
      const [fm, im] = [await embed(float, train, memory), await embed(int8, train, memory)];
      knnFloat = knnAccuracy(fm, labelsOf(train, memory), fq, labelsOf(queriesFrom, queries), d, knn);
      knnInt8 = knnAccuracy(im, labelsOf(train, memory), iq, labelsOf(queriesFrom, queries), d, knn);
    }
  } finally {
    await int8?.release();
    await float.release();
    fs.rmSync(tmp, { force: true });
  }
  const meanCosine = cosSum / queries.length;
  const floatSha = fileSha256(floatFile);
  const facts: Record<string, string> = {
    quantized: 'int8',
    quantization: JSON.stringify({
      format: 'QDQ',
      weights: 'int8, symmetric; per output channel for Conv, per tensor for Gemm/MatMul',
      activations: 'uint8, asymmetric',
      calibration: {
        method: report.method,
        ...(report.percentile !== undefined ? { percentile: report.percentile } : {}),
        images: nCal,
        data: `${o.data} (training split, seed ${seed})`,
      },
      quantized_ops: report.quantized,
      kept_float: report.keptFloat,
    }),
    quantized_from: floatSha,
    weights_dtype: 'int8',
    int8_check: JSON.stringify({
      images: queries.length,
      knn_top1_float: knnFloat,
      knn_top1_int8: knnInt8,
      min_cosine: Number(minCosine.toFixed(6)),
      mean_cosine: Number(meanCosine.toFixed(6)),
    }),
  };
  for (const [k, v] of Object.entries(facts)) metadata.set(k, v);
  q.metadata_props = [...metadata].map(([key, value]) => ({ key, value }));
  const bytes = encodeModel(q);
  writeFileAtomic(path.resolve(out), [bytes]);
  if (knnFloat !== null && knnInt8 !== null && (knnFloat - knnInt8) * 100 > WARN_DROP_POINTS)
    log(
      `int8: warning: kNN top-1 drops ${((knnFloat - knnInt8) * 100).toFixed(2)} points (${(100 * knnFloat).toFixed(2)}% → ${(100 * knnInt8).toFixed(2)}%); ` +
        `try --calibration-method ${report.method === 'percentile' ? 'minmax' : 'percentile'} or more --calibration images`,
    );
  return {
    file: path.resolve(out),
    bytes: bytes.length,
    floatBytes: fs.statSync(floatFile).size,
    quantization: report,
    calibrationImages: nCal,
    checkedImages: queries.length,
    knnFloat,
    knnInt8,
    minCosine,
    meanCosine,
  };
}

/** One line for people: sizes, the kNN of both models, and the agreement of their embeddings. */
export function formatInt8Report(r: Int8Report): string {
  const ops = Object.entries(r.quantization.quantized)
    .map(([op, n]) => `${n} ${op}`)
    .join(', ');
  const knn =
    r.knnFloat !== null && r.knnInt8 !== null
      ? `kNN top-1 on ${r.checkedImages} held-out images: int8 ${(100 * r.knnInt8).toFixed(2)}% · float ${(100 * r.knnFloat).toFixed(2)}%; `
      : '';
  return (
    `wrote ${r.file}: ${(r.bytes / 1024).toFixed(1)} KiB (float ${(r.floatBytes / 1024).toFixed(1)} KiB), int8 QDQ with ${ops} quantized` +
    `${r.quantization.keptFloat.length ? `, ${r.quantization.keptFloat.length} kept float` : ''}, calibrated on ${r.calibrationImages} images (${r.quantization.method})\n` +
    `check: ${knn}cosine to the float embeddings min ${r.minCosine.toFixed(4)}, mean ${r.meanCosine.toFixed(4)}\n`
  );
}
