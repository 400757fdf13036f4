/**
 * `sslkit export RUN --out model.onnx`: the trained encoder as an inference graph with its
 * weights as initialisers, a dynamic batch, input `pixel_values` [N, C, H, W] float32 and output
 * `embeddings` [N, D], and the metadata a consumer needs (preprocessing, sizes, method, data,
 * accuracy). After writing, the file is loaded with onnxruntime and checked against the engine's
 * own eval-mode graph on real images; a difference above 1e-4 (fp32) or 1e-2 (fp16) fails.
 */
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { encodeModel, type ModelMsg } from '../core/onnx/onnx-proto.js';
import { writeFileAtomic } from '../core/fs.js';
import { readRunConfig, runCheckpoint } from '../train/run.js';
import { encoderSpec } from '../train/config.js';
import { buildEncoderGraph, Embedder, type EncoderSpec } from '../train/encoder.js';
import { loadDataset } from '../data/datasets.js';
import { makePlainBatch } from '../train/augment/views.js';
import { edgeColour } from '../core/preprocess.js';
import { DEFAULT_BACKGROUND } from '../core/gallery-format.js';
import { foldBatchNorm, halfPrecisionWeights } from './model-transforms.js';
import { setOpset } from './opset.js';

export interface ExportOptions {
  out: string;
  /** ONNX opset to write (17 by default). */
  opset?: number;
  /** Fold BatchNorm into the preceding convolution (default true). */
  fold?: boolean;
  /** Store weights in half precision. */
  fp16?: boolean;
  /** L2-normalise the output. */
  normalize?: boolean;
  /** 'backbone' (default) or 'projector' (backbone + the method's projection head). */
  head?: 'backbone' | 'projector';
  /** Add the last feature map as a second output, `feature_map` (to teach BoWNet). */
  featureMap?: boolean;
  /** Images used to check the file against the engine. */
  checkImages?: number;
  dataDir?: string;
  log?: (line: string) => void;
}

export interface ExportReport {
  file: string;
  bytes: number;
  opset: number;
  nodes: number;
  parameters: number;
  foldedBatchNorms: number;
  embeddingDim: number;
  maxAbsDiff: number;
  tolerance: number;
  checkedImages: number;
  metadata: Record<string, string>;
}

export class ExportCheckFailed extends Error {}

/**
 * The kNN score measured on the checkpoint's very weights: the end-of-epoch record at its step.
 * Never the initialisation's (epoch 0), nor an earlier epoch's for a run stopped mid-epoch.
 */
function checkpointKnn(runDir: string, step: number): number | null {
  const file = path.join(runDir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return null;
  let knn: number | null = null;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.includes('"knn_top1"')) continue;
    const m = JSON.parse(line) as { type?: string; epoch?: number; step?: number; knn_top1: number };
    if (m.type === 'epoch' && (m.epoch ?? 0) > 0 && m.step === step) knn = m.knn_top1;
  }
  return knn;
}

export async function exportRun(runDir: string, o: ExportOptions): Promise<ExportReport> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const cfg = readRunConfig(runDir);
  const { parameters: values, position } = runCheckpoint(runDir);
  const head = o.head ?? 'backbone';
  const spec: EncoderSpec = {
    ...encoderSpec(cfg),
    head: head === 'projector' ? { method: cfg.method, hp: cfg.resolved.hp } : undefined,
    normalize: !!o.normalize,
    featureMap: !!o.featureMap,
  };
  const { g } = buildEncoderGraph(spec, values, 'N');
  const embeddingDim = g.outputs[0].shape[1] as number;
  const opset = o.opset ?? 17;
  const r = cfg.resolved;
  const knn = checkpointKnn(runDir, position.step);
  // The run's images: the export check embeds some, and their edges give the background colour.
  const dataOpts = { dataDir: o.dataDir ?? cfg.dataDir, testFraction: cfg.testFraction };
  const test = await loadDataset(cfg.data, 'test', dataOpts)
    .catch(() => loadDataset(cfg.data, 'train', dataOpts))
    .catch(() => null);
  const background = test ? edgeColour(test) : DEFAULT_BACKGROUND;
  const metadata: Record<string, string> = {
    producer: 'sslkit',
    sslkit_version: r.sslkitVersion,
    method: cfg.method,
    backbone: cfg.backbone,
    backbone_width: String(cfg.width),
    head,
    normalized: String(!!o.normalize),
    embedding_dim: String(embeddingDim),
    input_name: 'pixel_values',
    output_name: 'embeddings',
    layout: 'NCHW',
    input_channels: String(r.channels),
    input_height: String(r.imageSize),
    input_width: String(r.imageSize),
    pixel_scale: String(1 / 255),
    mean: JSON.stringify(r.augment.mean),
    std: JSON.stringify(r.augment.std),
    resize: `resize to cover ${r.imageSize}x${r.imageSize} (shorter side), centre crop`,
    background: test
      ? `transparent pixels composited on rgb(${background.join(', ')}), the median colour of the training data's image edges`
      : `transparent pixels composited on rgb(${background.join(', ')}) (white: the training data was not at hand to measure its edges)`,
    preprocessing: JSON.stringify({
      layout: 'NCHW',
      channels: r.channels,
      height: r.imageSize,
      width: r.imageSize,
      pixel_scale: 1 / 255,
      mean: r.augment.mean,
      std: r.augment.std,
      resize: 'cover-center-crop',
      background,
    }),
    training_data: cfg.data + (cfg.limit ? ` (first ${cfg.limit} images)` : ''),
    classes: JSON.stringify(r.classes),
    knn_top1: knn === null ? 'unknown' : knn.toFixed(4),
    opset: String(opset),
    weights_dtype: o.fp16 ? 'float16' : 'float32',
  };
  if (g.outputs.some((t) => t.name === 'attention'))
    metadata.attention_output = "attention: [N, heads, patches], the CLS token's last-block self-attention";
  let model: ModelMsg = g.toModel({ docString: `sslkit ${cfg.method} ${cfg.backbone} encoder`, graphName: 'sslkit_encoder' });
  let folded = 0;
  if (o.fold ?? true) ({ model, folded } = foldBatchNorm(model));
  metadata.batchnorm_folded = String(folded);
  model = setOpset(model, opset);
  if (o.fp16) model = halfPrecisionWeights(model);
  model.metadata_props = Object.entries(metadata).map(([key, value]) => ({ key, value }));
  const bytes = encodeModel(model);
  writeFileAtomic(path.resolve(o.out), [bytes]);

  // Check the written file against the engine's own eval-mode graph (unfolded, float32).
  const tolerance = o.fp16 ? 1e-2 : 1e-4;
  let images: Float32Array;
  let n: number;
  if (test) {
    n = Math.min(o.checkImages ?? 64, test.n);
    images = makePlainBatch(
      test,
      Int32Array.from({ length: n }, (_, i) => i),
      r.augment.mean,
      r.augment.std,
    );
  } else {
    log(`export check: the run's data (${cfg.data}) is not here; checking on synthetic images`);
    n = o.checkImages ?? 64;
    images = Float32Array.from({ length: n * r.channels * r.imageSize * r.imageSize }, (_, i) => Math.sin(i * 0.37) * 1.5);
  }
  const per = r.channels * r.imageSize * r.imageSize;
  const session = await ort.InferenceSession.create(bytes);
  const ref = await Embedder.create(spec, values, { batch: n });
  let maxAbsDiff = 0;
  try {
    const want = await ref.embed(images, n);
    // Two uneven batches exercise the dynamic batch dimension.
    const cut = Math.max(1, Math.floor(n / 3));
    for (const [s, e] of [
      [0, cut],
      [cut, n],
    ]) {
      if (e <= s) continue;
      const out = await session.run({
        pixel_values: new ort.Tensor('float32', images.slice(s * per, e * per), [e - s, r.channels, r.imageSize, r.imageSize]),
      });
      const got = out.embeddings.data as Float32Array;
      for (let i = 0; i < got.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(got[i] - want[s * embeddingDim + i]));
    }
  } finally {
    await ref.release();
    await session.release();
  }
  const parameters = model.graph.initializer.reduce((a, t) => a + t.dims.reduce((x, y) => x * y, 1), 0);
  const report: ExportReport = {
    file: path.resolve(o.out),
    bytes: bytes.length,
    opset,
    nodes: model.graph.node.length,
    parameters,
    foldedBatchNorms: folded,
    embeddingDim,
    maxAbsDiff,
    tolerance,
    checkedImages: n,
    metadata,
  };
  if (!(maxAbsDiff <= tolerance)) {
    throw new ExportCheckFailed(
      `export check failed: ${o.out} differs from the engine by ${maxAbsDiff.toExponential(2)} (max abs over ${n} images; allowed ${tolerance}). The file was written for inspection.`,
    );
  }
  return report;
}
