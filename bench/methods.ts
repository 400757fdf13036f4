/**
 * bench/methods: every method trained with the same budget (backbone, width, epochs, batch size,
 * optimizer; each method's own augmentation preset and heads scaled as in the tests) on a
 * dataset's train split, then scored by `sslkit eval` on its test split: kNN top-1 (k=200
 * weighted), linear probe, k-means NMI; with wall time and training images/s. Two baselines run
 * in the same process: kNN on raw pixels, and the same encoder untrained (`--methods random,...`).
 * distill and bownet learn from the SimCLR run (exported with its feature map). Prints a markdown table and writes JSON next to it.
 *
 *   npx tsx bench/methods.ts --data cifar10 --data-dir ../shared/datasets --limit 5000 --epochs 2
 *   npx tsx bench/methods.ts --data fashion-mnist --limit 5000 --epochs 2 [--methods simclr,byol]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { train } from '../train/trainer.js';
import { TrainConfigSchema } from '../train/config.js';
import { exportRun } from '../export/exporter.js';
import { evaluate, evaluateEncoder, runEncoder } from '../eval/evaluate.js';
import { encoderSpec } from '../train/config.js';
import { readRunConfig } from '../train/run.js';
import { buildEncoderGraph, recalibrateBatchNorm } from '../train/encoder.js';
import { plainImages } from '../train/augment/views.js';
import { METHODS } from '../train/methods/index.js';
import { loadDataset } from '../data/datasets.js';
import { knnAccuracy, normalizeRows } from '../core/vectors.js';
import { sampleSet } from '../core/image-set.js';

const { values: a } = parseArgs({
  options: {
    data: { type: 'string', default: 'cifar10' },
    'data-dir': { type: 'string' },
    limit: { type: 'string', default: '5000' },
    epochs: { type: 'string', default: '2' },
    batch: { type: 'string', default: '128' },
    width: { type: 'string', default: '0.5' },
    backbone: { type: 'string', default: 'convnet' },
    'test-limit': { type: 'string', default: '5000' },
    methods: { type: 'string' },
    out: { type: 'string', default: 'runs/bench-methods' },
  },
});
const SMALL: Record<string, Record<string, number>> = {
  simclr: { proj_hidden: 512 },
  moco: { proj_hidden: 512, queue: 4096 },
  triplet: { proj_hidden: 512, hard: 0 },
  nce: {},
  negsample: { clusters: 50 },
  dae: {},
  context: {},
  distill: {},
  byol: { proj_hidden: 1024, proj_out: 128 },
  simsiam: { proj_dim: 512, pred_hidden: 128 },
  dino: { out_dim: 1024, head_hidden: 512, bottleneck: 128, local_crops: 2, warmup_teacher_temp_frac: 0, teacher_temp: 0.04, ema: 0.99 },
  barlow: { proj_dim: 512 },
  vicreg: { proj_dim: 512 },
  wmse: { proj_hidden: 512 },
  deepcluster: { clusters: 100 },
  bownet: { vocab: 512 },
  obow: { vocab: 2048, ema: 0.95 },
  swav: { prototypes: 100, proj_hidden: 512, local_crops: 2 },
};
const methods = a.methods ? a.methods.split(',').filter((m) => m !== 'random') : Object.keys(METHODS);
const data = a.data!;
const dataDir = a['data-dir'];
fs.mkdirSync(a.out!, { recursive: true });
console.log(
  `# bench/methods — ${data}, ${a.limit} train images × ${a.epochs} epochs, batch ${a.batch}, ${a.backbone} ×${a.width}, AdamW 2e-3; ` +
    `${os.cpus()[0].model}, ${os.cpus().length} cores; ${new Date().toISOString()}`,
);

// Raw-pixel baseline: kNN (k=200 weighted, cosine) on the same memory and test images.
const trainSet = await loadDataset(data, 'train', { dataDir });
const testSet = await loadDataset(data, 'test', { dataDir });
const mem = sampleSet(trainSet, Number(a.limit));
const qs = sampleSet(testSet, Number(a['test-limit']));
const px = (s: typeof mem) =>
  normalizeRows(
    Float32Array.from(s.pixels, (v) => v / 255),
    s.c * s.h * s.w,
  );
const rawKnn = knnAccuracy(px(mem), mem.labels!, px(qs), qs.labels!, mem.c * mem.h * mem.w, {
  k: 200,
  temperature: 0.1,
  classes: trainSet.classes.length,
});

const rows: Record<string, unknown>[] = [];
let teacher: string | undefined;

/** The same encoder at its random start (BN statistics re-estimated), scored the same way. */
async function randomInitRow(): Promise<Record<string, unknown>> {
  const out = path.join(a.out!, `${data}-random-init`);
  fs.rmSync(out, { recursive: true, force: true });
  // One step at a negligible learning rate only to write a run folder (config.json) for the encoder spec.
  await train(
    TrainConfigSchema.parse({
      method: 'simclr',
      data,
      dataDir,
      backbone: a.backbone,
      width: Number(a.width),
      batchSize: Number(a.batch),
      limit: Number(a.limit),
      lr: 1e-30,
      maxSteps: 1,
      knnMemory: 0,
      tuneConv: false,
      out,
    }),
    { log: () => {} },
  );
  const cfg = readRunConfig(out);
  const spec = encoderSpec(cfg);
  const init = new Map([...buildEncoderGraph(spec, new Map(), 1).g.params].map(([n, p]) => [n, p.init.data as Float32Array]));
  const sample = sampleSet(mem, 2048);
  const values = await recalibrateBatchNorm(spec, init, plainImages(sample, cfg.resolved.augment.mean, cfg.resolved.augment.std), sample.n);
  const e = await evaluateEncoder('random init', await runEncoder(out, values), {
    data,
    dataDir,
    trainLimit: Number(a.limit),
    testLimit: Number(a['test-limit']),
    probeEpochs: 20,
  });
  return {
    method: 'random init (same encoder, untrained)',
    knn: e.knn_top1_k200,
    probe: e.linear_probe_top1,
    nmi: e.kmeans_nmi,
    collapse: e.collapse_std,
    train_s: 0,
    img_s: 0,
  };
}
if (!a.methods || a.methods.split(',').includes('random')) {
  const r = await randomInitRow();
  rows.push(r);
  console.log(JSON.stringify(r));
}
for (const method of methods) {
  const out = path.join(a.out!, `${data}-${method}`);
  fs.rmSync(out, { recursive: true, force: true });
  const t0 = Date.now();
  try {
    const cfg = TrainConfigSchema.parse({
      method,
      data,
      dataDir,
      backbone: a.backbone,
      width: Number(a.width),
      epochs: Number(a.epochs),
      batchSize: Number(a.batch),
      limit: Number(a.limit),
      optimizer: 'adamw',
      lr: 2e-3,
      hp: SMALL[method] ?? {},
      knnMemory: 0,
      tuneConv: true,
      workers: 1,
      out,
      teacher: method === 'distill' || method === 'bownet' ? teacher : undefined,
    });
    if ((method === 'distill' || method === 'bownet') && !teacher)
      throw new Error(`${method} needs the SimCLR run as its teacher: keep simclr before it in --methods`);
    await train(cfg, { log: () => {} });
    const trainS = (Date.now() - t0) / 1000;
    const steps = fs
      .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((m) => m.type === 'step')
      .map((m) => m.img_s as number)
      .sort((x, y) => x - y);
    if (method === 'simclr') {
      teacher = path.join(out, 'model.onnx');
      await exportRun(out, { out: teacher, featureMap: true, log: () => {} });
    }
    const e = await evaluate(out, { data, dataDir, trainLimit: Number(a.limit), testLimit: Number(a['test-limit']), probeEpochs: 20 });
    const row = {
      method,
      knn: e.knn_top1_k200,
      probe: e.linear_probe_top1,
      nmi: e.kmeans_nmi,
      collapse: e.collapse_std,
      train_s: trainS,
      img_s: steps[Math.floor(steps.length / 2)],
    };
    rows.push(row);
    console.log(JSON.stringify(row));
  } catch (err) {
    rows.push({ method, error: (err as Error).message });
    console.log(`${method}: failed: ${(err as Error).message}`);
  }
}
fs.writeFileSync(path.join(a.out!, `${data}.json`), JSON.stringify({ data, args: a, rawKnn, rows }, null, 2));
const pct = (v: unknown) => (typeof v === 'number' ? `${(100 * v).toFixed(1)}` : '—');
console.log(`\n| method | kNN top-1 (k=200) | linear probe | k-means NMI | train time | images/s |`);
console.log('| --- | --- | --- | --- | --- | --- |');
console.log(`| raw pixels (baseline) | ${pct(rawKnn)} | — | — | — | — |`);
for (const r of rows)
  console.log(
    r.error
      ? `| ${r.method} | failed: ${r.error} | | | | |`
      : `| ${r.method} | ${pct(r.knn)} | ${pct(r.probe)} | ${(r.nmi as number).toFixed(3)} | ${(r.train_s as number).toFixed(0)} s | ${(r.img_s as number).toFixed(0)} |`,
  );
