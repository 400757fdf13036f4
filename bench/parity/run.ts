/**
 * bench/parity: one recipe trained by sslkit and by PyTorch (train_torch.py) on the same images,
 * scored the same way, printed side by side: kNN top-1 (k = 200 and 20, cosine, exp(s/0.1), the
 * training images as memory, backbone features), the loss per epoch and the wall time.
 *
 * The recipe (issue 13): the `convnet` backbone, batch 256, AdamW lr 1e-3 wd 1e-6, constant
 * learning rate without warm-up, each method's heads as recipe.ts gives them (both sides), a
 * seeded class-stratified sample of `--limit` CIFAR-10 training images, the whole test split.
 * `--methods all` runs every method that has a PyTorch side (recipe.ts PARITY_HEADS).
 *
 *   npx tsx bench/parity/run.ts --data-dir DIR [--methods simclr,byol,vicreg|all] [--epochs 10] [--limit 10000] [--seed 0]
 *       [--sslkit-only | --torch-only] [--set conv-init=kaiming-fan-out] [--schedule cosine]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { train } from '../../train/trainer.js';
import { TrainConfigSchema } from '../../train/config.js';
import { evaluate } from '../../eval/evaluate.js';
import { dumpParityData } from './dump-data.js';
import { PARITY_HEADS, PARITY_RECIPE } from './recipe.js';

const { values: a } = parseArgs({
  options: {
    data: { type: 'string', default: 'cifar10' },
    'data-dir': { type: 'string' },
    methods: { type: 'string', default: 'simclr,byol,vicreg' },
    epochs: { type: 'string', default: '10' },
    limit: { type: 'string', default: '10000' },
    'conv-init': { type: 'string' },
    schedule: { type: 'string', default: 'constant' },
    // Both sides' seed (init, batch order, augmentations): several seeds show the run-to-run spread.
    seed: { type: 'string', default: '0' },
    'sslkit-only': { type: 'boolean', default: false },
    'torch-only': { type: 'boolean', default: false },
    python: { type: 'string', default: '/usr/bin/python3' },
    threads: { type: 'string', default: '2' },
    work: { type: 'string', default: path.join(os.tmpdir(), 'sslkit-parity') },
  },
});
const epochs = Number(a.epochs);
const limit = Number(a.limit);
const dataDir = path.join(a.work!, 'data');
const meta = await dumpParityData({ data: a.data!, dataDir: a['data-dir'], limit, out: dataDir });
const pct = (v: number | undefined) => (v === undefined ? 'n/a' : `${(100 * v).toFixed(2)}%`);
console.log(`# bench/parity — ${a.data}, ${meta.train} train images (seeded, stratified) × ${epochs} epochs, ${meta.test} test images`);
console.log(
  `# convnet, batch 256, AdamW 1e-3 wd 1e-6, ${a.schedule} lr, no warm-up; ${os.cpus()[0].model}, ${os.cpus().length} cores; ${new Date().toISOString()}`,
);
const rows: string[][] = [];
for (const method of a.methods === 'all' ? Object.keys(PARITY_HEADS) : a.methods!.split(',')) {
  const head = PARITY_HEADS[method];
  if (!head) throw new Error(`bench/parity covers ${Object.keys(PARITY_HEADS).join(', ')}, not '${method}'`);
  if (!a['torch-only']) {
    const out = path.join(a.work!, `sslkit-${method}`);
    fs.rmSync(out, { recursive: true, force: true });
    const t0 = Date.now();
    await train(
      TrainConfigSchema.parse({
        method,
        data: a.data,
        dataDir: a['data-dir'],
        epochs,
        ...PARITY_RECIPE,
        lrSchedule: a.schedule,
        convInit: a['conv-init'],
        seed: Number(a.seed),
        hp: head.hp,
        limit,
        knnMemory: 0,
        threads: Number(a.threads),
        out,
      }),
      { log: (l) => console.error(`  sslkit ${method}: ${l}`) },
    );
    const trainS = (Date.now() - t0) / 1000;
    const e = await evaluate(out, { data: a.data, dataDir: a['data-dir'], trainLimit: limit, probeEpochs: 1 });
    const epochLoss = fs
      .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((m) => m.type === 'epoch' && m.loss_mean !== undefined)
      .map((m) => m.loss_mean.toFixed(3));
    rows.push([`${method}`, 'sslkit', pct(e.knn_top1_k200), pct(e.knn_top1_k20), epochLoss.join(' → '), `${trainS.toFixed(0)} s`]);
    console.log(`| ${rows[rows.length - 1].join(' | ')} |`);
  }
  if (!a['sslkit-only']) {
    const args = [
      path.join(import.meta.dirname, 'train_torch.py'),
      dataDir,
      '--method',
      method,
      '--epochs',
      String(epochs),
      '--schedule',
      a.schedule!,
      '--seed',
      a.seed!,
    ];
    args.push('--threads', a.threads!, ...head.torch);
    if (a['conv-init'] === 'kaiming-fan-out') args.push('--init', 'kaiming-fan-out');
    const lines = execFileSync(a.python!, args, { encoding: 'utf8', cwd: import.meta.dirname, maxBuffer: 1 << 26 })
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const fin = lines.find((l) => l.final);
    const epochLoss = lines.filter((l) => l.loss_mean !== undefined).map((l) => l.loss_mean.toFixed(3));
    rows.push([`${method}`, `PyTorch ${fin.torch}`, pct(fin.knn200), pct(fin.knn20), epochLoss.join(' → '), `${fin.train_s.toFixed(0)} s`]);
    // sslkit scores with BatchNorm statistics re-estimated on plain training images; PyTorch's own figure uses its running ones.
    rows.push([`${method}`, `PyTorch, sslkit's BN re-estimation`, pct(fin.precise_bn.knn200), pct(fin.precise_bn.knn20), '', '']);
    console.log(`| ${rows[rows.length - 1].join(' | ')} |`);
  }
}
console.log('\n| method | side | kNN k=200 | kNN k=20 | loss per epoch | train time |\n|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
