/**
 * bench/continue (issue 31): what continued self-supervised training from an imported encoder
 * buys, beside PyTorch doing the same. A torchvision ResNet-18 is trained with labels on CIFAR-10
 * in PyTorch (parity/pretrain_torch.py) and exported by torch.onnx; then, on another domain
 * (Fashion-MNIST at 32×32×3), at the same budget:
 *
 *   frozen            the exported file as it is, and with its BatchNorm statistics re-estimated on
 *                     the target's plain images (what every sslkit checkpoint gets; PyTorch, 0 epochs)
 *   sslkit --init     SimCLR from the file with BatchNorm kept (training=PRESERVE export)
 *   sslkit --init     SimCLR from the file with BatchNorm folded into the convolutions (the default
 *                     export): trained as it is, and with --insert-batchnorm
 *   sslkit scratch    SimCLR on tv-resnet18 (the same network) from a random start
 *   PyTorch           SimCLR from the same weights with the same recipe (parity/train_torch.py), as
 *                     trained and with sslkit's BatchNorm re-estimation
 *
 * The recipe is bench/parity's (batch 256, AdamW 1e-3, wd 1e-6, constant lr, projector 256→128),
 * with the imported encoder at the heads' rate (--init-lr-scale 1, as the PyTorch side trains;
 * sslkit's own default is 0.1).
 * Every encoder is scored the same way: `sslkit eval` on its ONNX file (kNN top-1 at k = 200 and
 * 20, linear probe) with the training images as memory and the whole test split as queries.
 *
 *   npx tsx bench/continue.ts --cifar DIR (holding CIFAR-10, e.g. ../shared/datasets) [--pretrain-epochs 5] [--pretrain-limit 10000]
 *       [--epochs 5] [--limit 5000] [--init-lr-scale 1] [--threads 2]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { train } from '../train/trainer.js';
import { TrainConfigSchema } from '../train/config.js';
import { exportRun } from '../export/exporter.js';
import { evaluate } from '../eval/evaluate.js';
import { dumpParityData } from './parity/dump-data.js';
import { PARITY_HEADS, PARITY_RECIPE } from './parity/recipe.js';

const { values: a } = parseArgs({
  options: {
    cifar: { type: 'string' },
    target: { type: 'string', default: 'fashion-mnist-small' },
    size: { type: 'string', default: '32' },
    'pretrain-epochs': { type: 'string', default: '5' },
    'pretrain-limit': { type: 'string', default: '10000' },
    epochs: { type: 'string', default: '5' },
    limit: { type: 'string', default: '5000' },
    'init-lr-scale': { type: 'string', default: '1' },
    seed: { type: 'string', default: '0' },
    python: { type: 'string', default: '/usr/bin/python3' },
    threads: { type: 'string', default: '2' },
    work: { type: 'string', default: path.join(os.tmpdir(), 'sslkit-continue') },
    rows: { type: 'string', default: 'frozen,bn,folded,inserted,scratch,torch' },
  },
});
const size = Number(a.size);
const epochs = Number(a.epochs);
const limit = Number(a.limit);
const rowsWanted = new Set(a.rows!.split(','));
const work = a.work!;
fs.mkdirSync(work, { recursive: true });
const pct = (v: number | null | undefined) => (v === null || v === undefined ? 'n/a' : `${(100 * v).toFixed(2)}%`);
const py = (args: string[]) =>
  execFileSync(a.python!, args, { encoding: 'utf8', cwd: path.join(import.meta.dirname, 'parity'), maxBuffer: 1 << 26 })
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

// 1. The starting encoder, in PyTorch, on CIFAR-10 (reused when it is there).
const pre = path.join(work, 'pretrained');
if (!fs.existsSync(path.join(pre, 'pretrained.bn.onnx'))) {
  if (!a.cifar) throw new Error('--cifar DIR (or the CIFAR-10 archive) is needed for the pretraining');
  const cifar = path.join(work, 'cifar');
  await dumpParityData({ data: 'cifar10', dataDir: a.cifar, limit: Number(a['pretrain-limit']), out: cifar, size, channels: 3 });
  const lines = py(['pretrain_torch.py', cifar, pre, '--epochs', a['pretrain-epochs']!, '--threads', a.threads!, '--seed', a.seed!]);
  console.error(`pretrained: ${JSON.stringify(lines[lines.length - 2])} ${JSON.stringify(lines[lines.length - 1])}`);
}

// 2. The target domain, as every row reads it.
const target = path.join(work, 'target');
const meta = await dumpParityData({ data: a.target!, limit, out: target, size, channels: 3 });
console.log(
  `# bench/continue — ResNet-18 pretrained with labels on CIFAR-10 (${a['pretrain-limit']} images × ${a['pretrain-epochs']} epochs, PyTorch), ` +
    `then SimCLR on ${a.target} (${meta.train} images × ${epochs} epochs at ${size}×${size}×3), scored on its ${meta.test} test images`,
);
console.log(
  `# batch 256, AdamW 1e-3 wd 1e-6, constant lr, projector 256→128, --init-lr-scale ${a['init-lr-scale']}; ${os.cpus()[0].model}, ${os.cpus().length} cores; ${new Date().toISOString()}`,
);

const rows: string[][] = [];
async function score(label: string, model: string, seconds: number | null) {
  const e = await evaluate(model, { data: a.target, trainLimit: limit, probeEpochs: 30, threads: Number(a.threads) });
  rows.push([
    label,
    pct(e.knn_top1_k200),
    pct(e.knn_top1_k20),
    pct(e.linear_probe_top1),
    seconds === null ? '–' : `${seconds.toFixed(0)} s`,
  ]);
  console.log(`| ${rows[rows.length - 1].join(' | ')} |`);
}

async function sslkitRow(label: string, key: string, o: { init?: string; backbone?: string; insertBatchnorm?: boolean }) {
  if (!rowsWanted.has(key)) return;
  const out = path.join(work, `sslkit-${key}`);
  fs.rmSync(out, { recursive: true, force: true });
  const t0 = Date.now();
  await train(
    TrainConfigSchema.parse({
      method: 'simclr',
      data: a.target,
      ...o,
      imageSize: o.init ? undefined : size,
      initLrScale: o.init ? Number(a['init-lr-scale']) : undefined,
      epochs,
      ...PARITY_RECIPE,
      lrSchedule: 'constant',
      seed: Number(a.seed),
      hp: PARITY_HEADS.simclr.hp,
      limit,
      knnMemory: 0,
      threads: Number(a.threads),
      out,
    }),
    { log: (l) => console.error(`  ${label}: ${l}`) },
  );
  const seconds = (Date.now() - t0) / 1000;
  const model = path.join(out, 'model.onnx');
  await exportRun(out, { out: model, log: () => {} });
  await score(label, model, seconds);
}

if (rowsWanted.has('frozen')) await score('frozen (the imported file)', path.join(pre, 'pretrained.bn.onnx'), null);
await sslkitRow('sslkit --init, BatchNorm kept', 'bn', { init: path.join(pre, 'pretrained.bn.onnx') });
await sslkitRow('sslkit --init, BatchNorm folded, --no-insert-batchnorm', 'folded', {
  init: path.join(pre, 'pretrained.folded.onnx'),
  insertBatchnorm: false,
});
await sslkitRow('sslkit --init, BatchNorm folded, --insert-batchnorm', 'inserted', {
  init: path.join(pre, 'pretrained.folded.onnx'),
  insertBatchnorm: true,
});
await sslkitRow('sslkit from scratch (tv-resnet18)', 'scratch', { backbone: 'tv-resnet18' });
/** PyTorch continuing the same weights for `n` epochs (0: the frozen file, re-exported), both BatchNorm conventions. */
async function torchRows(n: number, label: string) {
  const model = path.join(work, `torch-${n}.onnx`);
  const lines = py([
    'train_torch.py',
    target,
    '--method',
    'simclr',
    '--epochs',
    String(n),
    '--seed',
    a.seed!,
    '--threads',
    a.threads!,
    ...PARITY_HEADS.simclr.torch,
    '--resnet18-state',
    path.join(pre, 'pretrained.pt'),
    '--export-onnx',
    model,
  ]);
  const fin = lines.find((l) => l.final);
  if (n > 0) await score(`${label.replace('PyTorch', `PyTorch ${fin.torch}`)}`, model, fin.train_s);
  await score(
    `${label}${n > 0 ? ', BatchNorm re-estimated as sslkit does' : ''}`,
    model.replace('.onnx', '.precise-bn.onnx'),
    n > 0 ? fin.train_s : null,
  );
}
if (rowsWanted.has('frozen')) await torchRows(0, 'frozen, BatchNorm statistics re-estimated on the target');
if (rowsWanted.has('torch')) await torchRows(epochs, 'PyTorch continuing the same weights');
console.log('\n| encoder | kNN k=200 | kNN k=20 | linear probe | train time |\n|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
