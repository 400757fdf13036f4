/**
 * bench/quickstart-options: what the quick start should train (issue 32, item 4). Each variant
 * trains on the shipped fashion-mnist-small (20,000 images) as `sslkit quickstart` does, then
 * prints its kNN top-1 on the 2,000 test images (k = 200, exp(s/0.1), 5,000 training images as
 * memory: the quick start's own check) beside the untrained encoder and the raw pixels measured
 * the same way in the same run, and its training time.
 *
 *   npx tsx bench/quickstart-options.ts [--only NAME,NAME] [--epochs-scale 1]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { train } from '../train/trainer.js';
import { TrainConfigSchema } from '../train/config.js';

const { values: a } = parseArgs({
  options: { only: { type: 'string' }, work: { type: 'string', default: path.join(os.tmpdir(), 'sslkit-qs-options') } },
});

/** The quick start's settings (cli/quickstart.ts), and what each variant changes. */
const BASE = {
  method: 'simclr',
  data: 'fashion-mnist-small',
  backbone: 'convnet',
  width: 0.5,
  epochs: 3,
  batchSize: 128,
  optimizer: 'adamw',
  lr: 2e-3,
  weightDecay: 1e-4,
  hp: { proj_hidden: 512 },
  knnMemory: 5000,
  knnQueries: 2000,
};
const VARIANTS: Record<string, Record<string, unknown>> = {
  'simclr-3ep': {},
  'simclr-6ep': { epochs: 6 },
  'simclr-3ep-crop0.5': { cropMinScale: 0.5 },
  'simclr-3ep-weak': { augment: 'weak' },
  'simclr-3ep-w1': { width: 1 },
  'simclr-3ep-crop0.5-w1': { cropMinScale: 0.5, width: 1 },
  'vicreg-3ep': { method: 'vicreg', hp: {} },
  'vicreg-3ep-crop0.5': { method: 'vicreg', hp: {}, cropMinScale: 0.5 },
  'byol-3ep': { method: 'byol', hp: { proj_hidden: 512 } },
};

const pct = (v: number | null | undefined) => (typeof v === 'number' ? `${(100 * v).toFixed(2)}%` : 'n/a');
console.log(`# bench/quickstart-options — ${os.cpus()[0].model}, ${os.cpus().length} cores; ${new Date().toISOString()}`);
console.log('| variant | trained | untrained | raw pixels | trained − pixels | train s | img/s |');
console.log('|---|---|---|---|---|---|---|');
for (const [name, change] of Object.entries(VARIANTS)) {
  if (a.only && !a.only.split(',').includes(name)) continue;
  const out = path.join(a.work!, name);
  fs.rmSync(out, { recursive: true, force: true });
  const t0 = Date.now();
  const r = await train(TrainConfigSchema.parse({ ...BASE, ...change, out }), { log: () => {} });
  const seconds = (Date.now() - t0) / 1000;
  const steps = fs
    .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; img_s?: number })
    .filter((m) => m.type === 'step')
    .map((m) => m.img_s!)
    .sort((x, y) => x - y);
  const gap = r.knnTop1 !== null && r.pixelsKnnTop1 !== null ? `${(100 * (r.knnTop1 - r.pixelsKnnTop1)).toFixed(2)}` : 'n/a';
  console.log(
    `| ${name} | ${pct(r.knnTop1)} | ${pct(r.initialKnnTop1)} | ${pct(r.pixelsKnnTop1)} | ${gap} | ${seconds.toFixed(0)} | ${Math.round(steps[Math.floor(steps.length / 2)])} |`,
  );
}
