/**
 * `sslkit eval`: the same evaluation for every method and for any encoder. Embeds the train split
 * (kNN memory, probe training set) and the test split (scored) with a run's checkpoint or any ONNX
 * encoder, then reports
 *  - kNN top-1 with cosine similarity, k = 200 weighted exp(s/0.1), and k = 20;
 *  - a linear probe on frozen features;
 *  - k-means on test embeddings (K = classes): NMI and Hungarian-matched accuracy;
 *  - the collapse statistic (mean per-dimension std of normalised embeddings, ≈ 1/√d healthy);
 * and draws a PCA map of the test embeddings and the run's loss / kNN curves.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadDataset } from '../data/datasets.js';
import { sampleSet, type ImageSet } from '../core/image-set.js';
import { centreRows, collapseStd, knnAccuracy, meanRow, normalizeRows, sameImageRows } from '../core/vectors.js';
import { kmeans } from '../core/kmeans.js';
import { UserError } from '../core/errors.js';
import type { Device } from '../core/runtime/session.js';
import { Embedder } from '../train/encoder.js';
import { plainImages } from '../train/augment/views.js';
import { encoderSpec } from '../train/config.js';
import { readRunConfig, runParameters } from '../train/run.js';
import { OnnxEncoder } from '../core/runtime/onnx-encoder.js';
import { preprocessImages } from '../core/preprocess.js';
import { linearProbe } from './linear-probe.js';
import { hungarianAccuracy, nmi } from './cluster-metrics.js';
import { curvesPng, embeddingMapPng } from './plots.js';

export interface EvalOptions {
  data?: string;
  dataDir?: string;
  /** A labelled folder without train/ and test/: the held-out share of each class (default: the run's, else 0.1; 0: leave-one-out). */
  testFraction?: number;
  trainLimit?: number;
  testLimit?: number;
  probeEpochs?: number;
  device?: Device;
  threads?: number;
  /** For an ONNX model: preprocessing JSON when its metadata lacks it, and token pooling. */
  preprocessing?: string;
  pooling?: 'cls' | 'mean';
  /** kNN and k-means on embeddings centred on the memory's mean (as a centred index searches and clusters). */
  centre?: boolean;
  /** Folder for the pictures (none when absent). */
  out?: string;
  log?: (l: string) => void;
}

export interface EvalResult {
  encoder: string;
  data: string;
  trainImages: number;
  testImages: number;
  dim: number;
  knn_top1_k200: number;
  knn_top1_k20: number;
  /** Whether kNN and k-means used embeddings centred on the memory's mean. */
  centred: boolean;
  /** How the scored images relate to the memory: a test split, a held-out share, or leave-one-out on the same images. */
  split: string;
  /** Null when no image is held out (a probe fitted on the images it is scored on says nothing). */
  linear_probe_top1: number | null;
  kmeans_nmi: number;
  kmeans_accuracy: number;
  collapse_std: number;
  healthy_std: number;
  seconds: number;
  pictures: string[];
}

type Embed = (s: ImageSet) => Promise<{ x: Float32Array; dim: number }>;

/** What evaluate() needs of an encoder: a way to embed an image set. */
export interface EvalEncoder {
  embed: Embed;
  /** The run's dataset, where it was read from and its held-out share, when the encoder comes from a run. */
  data?: string;
  dataDir?: string;
  testFraction?: number;
  /** The run folder (for its training curves). */
  run?: string;
  /** The square size and channels images are loaded at (a run's, or a cover-cropping model's input). */
  input?: { size: number; channels: 1 | 3 };
  release: () => Promise<void>;
}

/** A run's encoder with the given parameters (the checkpoint's, or others such as the random start). */
export async function runEncoder(run: string, values: Map<string, Float32Array>, o: EvalOptions = {}): Promise<EvalEncoder> {
  const cfg = readRunConfig(run);
  const emb = await Embedder.create(encoderSpec(cfg), values, { device: o.device, threads: o.threads });
  const { mean, std } = cfg.resolved.augment;
  return {
    data: cfg.data,
    dataDir: cfg.dataDir,
    testFraction: cfg.testFraction,
    run,
    input: { size: cfg.resolved.imageSize, channels: cfg.resolved.channels as 1 | 3 },
    embed: async (s) => ({ x: await emb.embed(plainImages(s, mean, std), s.n), dim: emb.dim }),
    release: () => emb.release(),
  };
}

async function encoderFor(target: string, o: EvalOptions): Promise<EvalEncoder> {
  if (fs.existsSync(target) && fs.statSync(target).isDirectory()) return runEncoder(target, runParameters(target), o);
  const enc = await OnnxEncoder.load(target, {
    device: o.device,
    threads: o.threads,
    preprocessing: o.preprocessing,
    pooling: o.pooling,
    log: o.log,
  });
  const p = enc.preprocessing;
  return {
    // A folder decodes straight to the model's size (never a photo's full size); the crop is the model's own.
    input: p.resize === 'cover-center-crop' && p.height === p.width ? { size: p.height, channels: p.channels as 1 | 3 } : undefined,
    embed: async (s) => {
      const out = new Float32Array(s.n * enc.dim);
      for (let i = 0; i < s.n; i += 512) {
        const idx = Int32Array.from({ length: Math.min(512, s.n - i) }, (_, j) => i + j);
        out.set(await enc.embed(preprocessImages(s, idx, enc.preprocessing), idx.length), i * enc.dim);
      }
      return { x: out, dim: enc.dim };
    },
    release: () => enc.release(),
  };
}

export async function evaluate(target: string, o: EvalOptions = {}): Promise<EvalResult> {
  return evaluateEncoder(target, await encoderFor(target, o), o);
}

/** evaluate() for an encoder built by the caller (bench/methods scores the random start this way). */
export async function evaluateEncoder(target: string, enc: EvalEncoder, o: EvalOptions = {}): Promise<EvalResult> {
  const t0 = Date.now();
  const log = o.log ?? (() => {});
  const data = o.data ?? enc.data;
  // A run remembers where its data came from; another data set needs its own --data-dir.
  const dataDir = o.dataDir ?? (o.data === undefined || o.data === enc.data ? enc.dataDir : undefined);
  if (!data) throw new UserError(`${target}: an ONNX model needs --data (fashion-mnist, mnist, cifar10 or folder:PATH)`);
  let train: ImageSet;
  let test: ImageSet;
  let tr: { x: Float32Array; dim: number };
  let te: { x: Float32Array; dim: number };
  try {
    const testFraction = o.testFraction ?? (data === enc.data ? enc.testFraction : undefined);
    // A run's images come at its size (any data set); a model's folder images at its input size, while
    // stored sets keep theirs and are resampled in float by the model's preprocessing.
    const input = enc.input && (enc.run || data.startsWith('folder:')) ? { size: enc.input.size, channels: enc.input.channels } : {};
    train = sampleSet(await loadDataset(data, 'train', { dataDir, testFraction, log, ...input }), o.trainLimit);
    test = sampleSet(await loadDataset(data, 'test', { dataDir, testFraction, log: () => {}, ...input }), o.testLimit);
    if (!train.labels || !test.labels) throw new UserError(`${data}: evaluation needs labels (a folder of class sub-folders)`);
    log(`embedding ${train.n} train and ${test.n} test images`);
    tr = await enc.embed(train);
    te = await enc.embed(test);
  } finally {
    await enc.release();
  }
  const d = tr.dim;
  const classes = train.classes.length;
  const m = normalizeRows(Float32Array.from(tr.x), d);
  const q = normalizeRows(Float32Array.from(te.x), d);
  if (o.centre) {
    const mean = meanRow(m, d);
    centreRows(m, d, mean);
    centreRows(q, d, mean);
  }
  // Scored on the images of the memory (a plain folder with --test-fraction 0): leave-one-out.
  const exclude = sameImageRows(train.sources, test.sources);
  const split = exclude
    ? `leave-one-out on ${test.n} images that are also the memory (nothing held out); no linear probe`
    : `${test.n} test images apart from the ${train.n} of the memory`;
  log(`scoring: ${split}`);
  const knn = (k: number) =>
    knnAccuracy(m, train.labels!, q, test.labels!, d, {
      k: Math.min(k, train.n - (exclude ? 1 : 0)),
      temperature: 0.1,
      classes,
      exclude: exclude ?? undefined,
    });
  const knn200 = knn(200);
  const knn20 = knn(20);
  const probe = exclude ? null : await linearProbe(tr.x, train.labels!, te.x, test.labels!, d, classes, { epochs: o.probeEpochs ?? 30 });
  const km = kmeans(q, d, classes, { seed: 0 });
  const pictures: string[] = [];
  if (o.out) {
    fs.mkdirSync(o.out, { recursive: true });
    const name = path.basename(target.replace(/\/+$/, ''));
    const map = path.join(o.out, 'embedding-map.png');
    await embeddingMapPng(map, te.x, d, test.labels, test.classes, `${name}: PCA of ${test.n} ${data} test embeddings, coloured by class`);
    pictures.push(map);
    const metrics = enc.run ? path.join(enc.run, 'metrics.jsonl') : null;
    if (metrics && fs.existsSync(metrics)) {
      const rows = fs
        .readFileSync(metrics, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, number | string>);
      const steps = rows.filter((r) => r.type === 'step');
      const every = Math.max(1, Math.floor(steps.length / 400));
      const curve = path.join(o.out, 'training-curves.png');
      await curvesPng(
        curve,
        [
          {
            name: 'loss',
            color: '#d62728',
            points: steps.filter((_, i) => i % every === 0).map((r) => [r.step as number, r.loss as number]),
          },
          {
            name: 'kNN top-1 (held-out)',
            color: '#1f77b4',
            points: rows.filter((r) => r.type === 'epoch' && r.knn_top1 !== undefined).map((r) => [r.step as number, r.knn_top1 as number]),
          },
        ],
        `${name}: training curves`,
      );
      pictures.push(curve);
    }
  }
  return {
    encoder: target,
    data,
    trainImages: train.n,
    testImages: test.n,
    dim: d,
    knn_top1_k200: knn200,
    knn_top1_k20: knn20,
    centred: !!o.centre,
    split,
    linear_probe_top1: probe,
    kmeans_nmi: nmi(km.assign, test.labels!, classes, classes),
    kmeans_accuracy: hungarianAccuracy(km.assign, test.labels!, classes, classes),
    collapse_std: collapseStd(te.x, d),
    healthy_std: 1 / Math.sqrt(d),
    seconds: (Date.now() - t0) / 1000,
    pictures,
  };
}
