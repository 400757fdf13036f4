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
import { encodeModel, type ModelMsg, type NodeMsg } from '../core/onnx/onnx-proto.js';
import { writeFileAtomic } from '../core/fs.js';
import { readRunConfig, runCheckpoint } from '../train/run.js';
import { encoderSpec } from '../train/config.js';
import { buildEncoderGraph, Embedder, type EncoderSpec } from '../train/encoder.js';
import { loadDataset } from '../data/datasets.js';
import { makePlainBatch } from '../train/augment/views.js';
import { edgeColour } from '../core/preprocess.js';
import { DEFAULT_BACKGROUND } from '../core/gallery-format.js';
import { f32Tensor, foldBatchNorm, halfPrecisionWeights, pruneInitializers } from './model-transforms.js';
import { setOpset } from './opset.js';
import { isImported } from '../train/backbones/index.js';
import { INSERTED_EPS, insertedBatchNorm, readImported } from '../train/backbones/onnx-import.js';
import { initCopy, prepareInit } from '../train/init.js';
import { UserError } from '../core/errors.js';
import { readTensor } from '../core/onnx/tensor.js';

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
  const r = cfg.resolved;
  const imported = isImported(cfg.backbone);
  if (imported && (head !== 'backbone' || o.normalize || o.featureMap))
    throw new UserError(
      `${runDir} started from an ONNX encoder (--init): its export is that graph with the trained weights; --head projector, --normalize and --feature-map are not available for it`,
    );
  const { g } = buildEncoderGraph(spec, values, imported ? 1 : 'N');
  const embeddingDim = g.outputs[0].shape[1] as number;
  // An imported encoder keeps its own opset unless one is asked for.
  const start = imported
    ? await prepareInit({ ...cfg, init: cfg.init ?? initCopy(runDir), imageSize: r.imageSize }, runDir, () => {})
    : null;
  const source = start ? readImported(start.file) : null;
  // The normalisation consumers apply: an imported encoder's own (its scale), else the run's on 0-1 pixels.
  const norm = start ? start.preprocessing : { pixelScale: 1 / 255, mean: r.augment.mean, std: r.augment.std };
  const opset = o.opset ?? source?.opset ?? 17;
  const knn = checkpointKnn(runDir, position.step);
  // The run's images: the export check embeds some, and their edges give the background colour.
  const dataOpts = {
    dataDir: o.dataDir ?? cfg.dataDir,
    testFraction: cfg.testFraction,
    size: r.imageSize,
    channels: r.channels as 1 | 3,
    log: () => {},
  };
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
    input_name: source?.input.name ?? 'pixel_values',
    output_name: source?.output.name ?? 'embeddings',
    layout: 'NCHW',
    input_channels: String(r.channels),
    input_height: String(r.imageSize),
    input_width: String(r.imageSize),
    pixel_scale: String(norm.pixelScale),
    mean: JSON.stringify(norm.mean),
    std: JSON.stringify(norm.std),
    resize: `resize to cover ${r.imageSize}x${r.imageSize} (shorter side), centre crop`,
    background: test
      ? `transparent pixels composited on rgb(${background.join(', ')}), the median colour of the training data's image edges`
      : `transparent pixels composited on rgb(${background.join(', ')}) (white: the training data was not at hand to measure its edges)`,
    preprocessing: JSON.stringify({
      layout: 'NCHW',
      channels: r.channels,
      height: r.imageSize,
      width: r.imageSize,
      pixel_scale: norm.pixelScale,
      mean: norm.mean,
      std: norm.std,
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
  if (source) metadata.init = `${cfg.init ?? 'an ONNX encoder'}, trained on with ${cfg.method}`;
  let model: ModelMsg = source
    ? withTrainedWeights(source.model, values)
    : g.toModel({ docString: `sslkit ${cfg.method} ${cfg.backbone} encoder`, graphName: 'sslkit_encoder' });
  let folded = 0;
  if (o.fold ?? true) ({ model, folded } = foldBatchNorm(model));
  metadata.batchnorm_folded = String(folded);
  model = setOpset(model, opset);
  if (o.fp16) model = halfPrecisionWeights(model);
  // An imported encoder keeps its own metadata beside sslkit's (sslkit's wins on the same key).
  const own = (model.metadata_props ?? []).filter((e) => !(e.key in metadata));
  model.metadata_props = [...own, ...Object.entries(metadata).map(([key, value]) => ({ key, value }))];
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
        [metadata.input_name]: new ort.Tensor('float32', images.slice(s * per, e * per), [e - s, r.channels, r.imageSize, r.imageSize]),
      });
      const got = pooled(out[metadata.output_name]);
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

/**
 * The imported encoder's own graph with the run's values in its initialisers: same input, output,
 * opset and nodes, so it drops into whatever served the original. Parameters that torch.onnx
 * named through Identity nodes (equal values stored once) become initialisers of their own, and
 * a BatchNorm that --insert-batchnorm put after a convolution becomes a BatchNormalization node
 * there, which foldBatchNorm folds back into the convolution as it folds sslkit's own.
 */
function withTrainedWeights(original: ModelMsg, values: Map<string, Float32Array>): ModelMsg {
  const graph = original.graph;
  const initializer = graph.initializer.map((t) => {
    const v = values.get(t.name);
    if (!v) return t;
    if (v.length !== readTensor(t).data.length) throw new TypeError(`initialiser '${t.name}': the run holds ${v.length} values`);
    return f32Tensor(t.name, t.dims, v);
  });
  const dims = new Map(graph.initializer.map((t) => [t.name, t.dims]));
  const node = graph.node.flatMap((n): NodeMsg[] => {
    if (n.op_type === 'Identity' && values.has(n.output[0]) && dims.has(n.input[0])) {
      initializer.push(f32Tensor(n.output[0], dims.get(n.input[0])!, values.get(n.output[0])!));
      return [];
    }
    const bn = insertedBatchNorm(n.input[1] ?? '');
    if (n.op_type !== 'Conv' || !values.has(`${bn}.weight`)) return [n];
    const stats = ['weight', 'bias', 'running_mean', 'running_var'].map((k) => `${bn}.${k}`);
    for (const name of stats) initializer.push(f32Tensor(name, [values.get(name)!.length], values.get(name)!));
    const before = `${n.output[0]}_before_bn`;
    return [
      { ...n, output: [before] },
      {
        op_type: 'BatchNormalization',
        name: `${n.name || n.output[0]}_bn`,
        input: [before, ...stats],
        output: [n.output[0]],
        attribute: [{ name: 'epsilon', type: 1, f: INSERTED_EPS }],
      },
    ];
  });
  return pruneInitializers({ ...original, graph: { ...graph, node, initializer } });
}

/** An encoder's output as [N, D]: [N, D, 1, 1] or a feature map averaged over its positions, a token sequence's first token. */
function pooled(t: ort.Tensor): Float32Array {
  const d = t.dims.map(Number);
  const x = t.data as Float32Array;
  if (d.length === 2) return x;
  if (d.length === 3) {
    const out = new Float32Array(d[0] * d[2]);
    for (let n = 0; n < d[0]; n++) out.set(x.subarray(n * d[1] * d[2], n * d[1] * d[2] + d[2]), n * d[2]);
    return out;
  }
  const hw = d[2] * d[3];
  const out = new Float32Array(d[0] * d[1]);
  for (let i = 0; i < out.length; i++) {
    let s = 0;
    for (let p = 0; p < hw; p++) s += x[i * hw + p];
    out[i] = s / hw;
  }
  return out;
}
