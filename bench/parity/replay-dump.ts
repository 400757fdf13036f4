/**
 * bench/parity/replay-dump: runs the first N steps of an sslkit SimCLR or BYOL run (the real
 * trainer, the real loader) and writes what PyTorch needs to replay them exactly: the initial
 * parameters and BatchNorm buffers (BYOL: the target network's too), every step's two views,
 * learning rate and (BYOL) target momentum, and sslkit's loss per step.
 * `replay.py` then trains the same network in PyTorch from the same start on the same batches,
 * so any difference in the loss curve is in the step (forward, backward, optimiser), not in the data.
 * Run it for a whole recipe (`--steps 117` is 3 epochs of 10,000 images) and `replay.py --knn`
 * scores the PyTorch model trained on sslkit's batches: the same kNN as sslkit's own run means the
 * engine learns what PyTorch learns, and any gap to PyTorch's own run is in the data.
 *
 *   npx tsx bench/parity/replay-dump.ts --data-dir DIR --steps 20 --out /tmp/replay [--method byol]
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { train } from '../../train/trainer.js';
import { TrainConfigSchema } from '../../train/config.js';

const { values: a } = parseArgs({
  options: {
    method: { type: 'string', default: 'simclr' },
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
// The parity recipe's heads (bench/parity/run.ts).
const heads: Record<string, Record<string, number>> = {
  simclr: { proj_hidden: 256, temperature: 0.2 },
  byol: { proj_hidden: 256, proj_out: 128, ema: 0.99 },
};
if (!heads[a.method!]) throw new Error(`--method: simclr or byol, got ${a.method}`);
const cfg = TrainConfigSchema.parse({
  method: a.method,
  data: a.data,
  dataDir: a['data-dir'],
  epochs: Number(a.epochs),
  batchSize: Number(a.batch),
  optimizer: 'adamw',
  lr: 1e-3,
  weightDecay: 1e-6,
  warmupEpochs: 0,
  lrSchedule: 'constant',
  hp: { ...heads[a.method!], ...hp },
  limit: Number(a.limit),
  knnMemory: 0,
  // The whole run when the steps cover it, so that it ends like one (BN re-estimated, as run.ts scores it).
  maxSteps: steps < Math.floor(Number(a.limit) / Number(a.batch)) * Number(a.epochs) ? steps : undefined,
  out: path.join(out, 'run'),
});
const views = fs.openSync(path.join(out, 'views.f32'), 'w');
const log: { step: number; lr: number; loss: number; momentum?: number }[] = [];
await train(cfg, {
  log: () => {},
  onStepRun: ({ step, views: batch, parameters, lr, teacherMomentum, loss }) => {
    if (step === 0) {
      const manifest = [...parameters].map(([name, v]) => ({ name, size: v.length }));
      fs.writeFileSync(path.join(out, 'init.json'), JSON.stringify(manifest));
      fs.writeFileSync(
        path.join(out, 'init.f32'),
        Buffer.concat([...parameters.values()].map((v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength))),
      );
    }
    for (const v of batch) fs.writeSync(views, v);
    log.push({ step, lr, loss, ...(teacherMomentum === undefined ? {} : { momentum: teacherMomentum }) });
  },
});
fs.closeSync(views);
fs.writeFileSync(path.join(out, 'steps.json'), JSON.stringify({ method: a.method, batch: Number(a.batch), hp: cfg.hp, steps: log }));
console.log(log.map((s) => `${s.step}\t${s.loss.toFixed(5)}`).join('\n'));
