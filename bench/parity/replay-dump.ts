/**
 * bench/parity/replay-dump: runs the first N steps of an sslkit SimCLR run (the real trainer, the
 * real loader) and writes what PyTorch needs to replay them exactly: the initial parameters and
 * BatchNorm buffers, every step's two views and learning rate, and sslkit's loss per step.
 * `replay.py` then trains the same network in PyTorch from the same start on the same batches,
 * so any difference in the loss curve is in the step (forward, backward, optimiser), not in the data.
 * Run it for a whole recipe (`--steps 117` is 3 epochs of 10,000 images) and `replay.py --knn`
 * scores the PyTorch model trained on sslkit's batches: the same kNN as sslkit's own run means the
 * engine learns what PyTorch learns, and any gap to PyTorch's own run is in the data.
 *
 *   npx tsx bench/parity/replay-dump.ts --data-dir DIR --steps 20 --out /tmp/replay
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { train } from '../../train/trainer.js';
import { TrainConfigSchema } from '../../train/config.js';

const { values: a } = parseArgs({
  options: {
    data: { type: 'string', default: 'cifar10' },
    'data-dir': { type: 'string' },
    steps: { type: 'string', default: '20' },
    epochs: { type: 'string', default: '3' },
    batch: { type: 'string', default: '256' },
    limit: { type: 'string', default: '10000' },
    out: { type: 'string', default: '/tmp/sslkit-replay' },
    set: { type: 'string', multiple: true, default: [] },
  },
});
const out = path.resolve(a.out!);
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
const steps = Number(a.steps);
const hp = Object.fromEntries(a.set!.map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
const cfg = TrainConfigSchema.parse({
  method: 'simclr',
  data: a.data,
  dataDir: a['data-dir'],
  epochs: Number(a.epochs),
  batchSize: Number(a.batch),
  optimizer: 'adamw',
  lr: 1e-3,
  weightDecay: 1e-6,
  warmupEpochs: 0,
  lrSchedule: 'constant',
  hp: { proj_hidden: 256, temperature: 0.2, ...hp },
  limit: Number(a.limit),
  knnMemory: 0,
  // The whole run when the steps cover it, so that it ends like one (BN re-estimated, as run.ts scores it).
  maxSteps: steps < Math.floor(Number(a.limit) / Number(a.batch)) * Number(a.epochs) ? steps : undefined,
  out: path.join(out, 'run'),
});
const views = fs.openSync(path.join(out, 'views.f32'), 'w');
const log: { step: number; lr: number; loss: number }[] = [];
await train(cfg, {
  log: () => {},
  onStepRun: ({ step, feeds, out: res }) => {
    if (step === 0) {
      const names = Object.keys(feeds).filter((n) => !n.startsWith('view') && !n.startsWith('opt.') && feeds[n] instanceof Float32Array);
      const manifest = names.map((n) => ({ name: n, size: (feeds[n] as Float32Array).length }));
      fs.writeFileSync(path.join(out, 'init.json'), JSON.stringify(manifest));
      fs.writeFileSync(path.join(out, 'init.f32'), Buffer.concat(names.map((n) => Buffer.from((feeds[n] as Float32Array).buffer))));
    }
    for (const v of ['view0', 'view1']) fs.writeSync(views, feeds[v] as Float32Array);
    log.push({ step, lr: feeds.lr as number, loss: (res.loss as Float32Array)[0] });
  },
});
fs.closeSync(views);
fs.writeFileSync(path.join(out, 'steps.json'), JSON.stringify({ batch: Number(a.batch), hp: cfg.hp, steps: log }));
console.log(log.map((s) => `${s.step}\t${s.loss.toFixed(5)}`).join('\n'));
