/**
 * What a run watches while it trains: held-out kNN accuracy each epoch (memory from the train
 * split, queries from the test split, the encoder with freshly estimated BatchNorm statistics)
 * and the collapse monitor's per-dimension spread of the method's embeddings.
 */
import { sampleSet, type ImageSet } from '../core/image-set.js';
import { collapseStd, knnAccuracy, normalizeRows, sameImageRows } from '../core/vectors.js';
import { loadDataset } from '../data/datasets.js';
import { plainImages } from './augment/views.js';
import { Embedder, recalibrateBatchNorm } from './encoder.js';
import { encoderSpec, type ResolvedConfig } from './config.js';
import { calibrateInsertedBatchNorm } from './init.js';

export interface KnnSets {
  mem: ImageSet;
  queries: ImageSet;
}

/** The per-epoch check's images, or null when it is off or the data has no labelled test split. */
export async function knnSets(cfg: ResolvedConfig, trainSet: ImageSet, log: (l: string) => void): Promise<KnnSets | null> {
  if (cfg.knnMemory <= 0 || cfg.knnQueries <= 0 || !trainSet.labels) return null;
  try {
    const test = await loadDataset(cfg.data, 'test', {
      dataDir: cfg.dataDir,
      testFraction: cfg.testFraction,
      log: () => {},
      size: cfg.resolved.imageSize,
      channels: cfg.resolved.channels as 1 | 3,
    });
    if (!test.labels) return null;
    const sets = { mem: sampleSet(trainSet, cfg.knnMemory), queries: sampleSet(test, cfg.knnQueries) };
    if (sameImageRows(sets.mem.sources, sets.queries.sources))
      log('kNN check: no held-out images (--test-fraction 0), so leave-one-out on training images');
    return sets;
  } catch (e) {
    log(`kNN check off: ${(e as Error).message}`);
    return null;
  }
}

/** kNN top-1 of the encoder on held-out images (k = 200, weights exp(cos/0.1)) and the features' spread. */
export async function knnCheck(
  cfg: ResolvedConfig,
  values: Map<string, Float32Array>,
  sets: KnnSets,
): Promise<{ top1: number; collapse: number }> {
  const emb = await Embedder.create(encoderSpec(cfg), values, { batch: 256, device: cfg.device, threads: cfg.threads });
  try {
    const { mean, std } = cfg.resolved.augment;
    const m = normalizeRows(await emb.embed(plainImages(sets.mem, mean, std), sets.mem.n), emb.dim);
    const q = normalizeRows(await emb.embed(plainImages(sets.queries, mean, std), sets.queries.n), emb.dim);
    const top1 = knnAccuracy(m, sets.mem.labels!, q, sets.queries.labels!, emb.dim, {
      k: Math.min(200, sets.mem.n),
      temperature: 0.1,
      classes: cfg.resolved.classes.length,
      // A query never counts itself as a neighbour (a plain folder scored on its training images).
      exclude: sameImageRows(sets.mem.sources, sets.queries.sources) ?? undefined,
    });
    return { top1, collapse: collapseStd(q, emb.dim) };
  } finally {
    await emb.release();
  }
}

/**
 * The same kNN on the raw pixels (x / 255, each image one unit vector): the baseline an encoder
 * must beat to be worth its embedding. Images whose sizes differ from the memory's are not compared.
 */
export function pixelKnn(cfg: ResolvedConfig, sets: KnnSets): number {
  const d = sets.mem.c * sets.mem.h * sets.mem.w;
  const rows = (s: ImageSet) =>
    normalizeRows(
      Float32Array.from(s.pixels, (v) => v / 255),
      d,
    );
  return knnAccuracy(rows(sets.mem), sets.mem.labels!, rows(sets.queries), sets.queries.labels!, d, {
    k: Math.min(200, sets.mem.n),
    temperature: 0.1,
    classes: cfg.resolved.classes.length,
    exclude: sameImageRows(sets.mem.sources, sets.queries.sources) ?? undefined,
  });
}

/**
 * The BatchNorm statistics passes, on one sample of up to 2,048 plain training images (what the
 * exported encoder sees): re-estimating every BatchNorm's running statistics (what each
 * checkpoint keeps), and calibrating the BatchNorms an --init run inserted (before its first step).
 */
export function batchNormCalibrator(cfg: ResolvedConfig, trainSet: ImageSet) {
  const sample = sampleSet(trainSet, Math.min(2048, trainSet.n));
  const images = plainImages(sample, cfg.resolved.augment.mean, cfg.resolved.augment.std);
  const o = { device: cfg.device, threads: cfg.threads };
  return {
    recalibrate: (params: Map<string, Float32Array>) => recalibrateBatchNorm(encoderSpec(cfg), params, images, sample.n, o),
    calibrateInserted: (params: Map<string, Float32Array>) => calibrateInsertedBatchNorm(encoderSpec(cfg), params, images, sample.n, o),
  };
}

/** Mean per-dimension std of the method's embeddings (every 10 steps); null while healthy, else a warning. */
export function collapseWarning(collapseStd: number, dim: number): string | null {
  // Healthy ≈ 1/√d; a fall towards 0 means every image maps to nearly the same point.
  const healthy = 1 / Math.sqrt(dim);
  return collapseStd < 0.2 * healthy
    ? `warning: embeddings are collapsing (mean per-dimension std ${collapseStd.toExponential(2)}, healthy ≈ ${healthy.toFixed(3)})`
    : null;
}
