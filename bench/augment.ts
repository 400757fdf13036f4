/**
 * bench/augment: augmented views per second for the SimCLR preset at 28×28 (Fashion-MNIST) and
 * 32×32 (CIFAR-10 from ../shared, when present), on the calling thread and with 1 and 2 worker
 * threads, beside the rate the training step consumes views (from a SimCLR step measured in the
 * same run), so the headroom ratio is visible.
 *
 *   npx tsx bench/augment.ts [--batches 40]
 */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { loadDataset } from '../data/datasets.js';
import { ViewLoader } from '../train/augment/loader.js';
import { presetViews } from '../train/augment/presets.js';
import { channelStats } from '../train/augment/views.js';
import { subset, type ImageSet } from '../core/image-set.js';
import { Program } from '../train/engine/program.js';
import { buildSimclrStep } from './simclr-step.js';

const { values: args } = parseArgs({ options: { batches: { type: 'string', default: '40' } } });
const BATCH = 128;
const batches = Number(args.batches);

async function viewsPerSecond(s: ImageSet, workers: number): Promise<number> {
  const cfg = { views: presetViews('simclr', s.h, 2), ...channelStats(s) };
  const loader = new ViewLoader(s, cfg, { batchSize: BATCH, workers, seed: 1, prefetch: 2 * Math.max(1, workers) });
  let warm = 0;
  for await (const _b of loader.epoch(0)) if (++warm >= 2 * Math.max(1, workers)) break; // start-up (thread boot, tsx) out of the timing
  const t = performance.now();
  let n = 0;
  for await (const b of loader.epoch(1)) {
    n += b.indices.length * b.views.length;
    if (n >= batches * BATCH * 2) break;
  }
  const dt = (performance.now() - t) / 1000;
  await loader.close();
  return n / dt;
}

/** Views per second the SimCLR convnet step consumes at this image shape (median of 5 steps). */
async function stepConsumption(c: number, size: number): Promise<number> {
  const { g, feeds } = buildSimclrStep({ backbone: 'convnet', batch: BATCH, channels: c, size });
  const prog = await Program.compile(g, { device: 'cpu' });
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t = performance.now();
    await prog.run(feeds);
    times.push(performance.now() - t);
  }
  await prog.release();
  const ms = times.slice(2).sort((a, b) => a - b)[2];
  return (2 * BATCH) / (ms / 1000);
}

console.log(
  `# bench/augment — SimCLR preset, batch ${BATCH}, ${batches} batches; ${os.cpus()[0].model}, ${os.cpus().length} cores; ${new Date().toISOString()}`,
);
const sets: [string, ImageSet][] = [];
sets.push([
  '28×28×1 Fashion-MNIST',
  subset(
    await loadDataset('fashion-mnist', 'train'),
    Int32Array.from({ length: 20000 }, (_, i) => i),
  ),
]);
const cifarArchive = path.resolve(import.meta.dirname, '../../shared/datasets');
if (fs.existsSync(path.join(cifarArchive, 'cifar10-jpg.tar.gz')))
  sets.push(['32×32×3 CIFAR-10', await loadDataset('cifar10', 'test', { dataDir: cifarArchive })]);
console.log('| images | inline | 1 worker | 2 workers | step consumes | headroom (best/step) |\n|---|---|---|---|---|---|');
for (const [name, s] of sets) {
  const r = [await viewsPerSecond(s, 0), await viewsPerSecond(s, 1), await viewsPerSecond(s, 2)];
  const step = await stepConsumption(s.c, s.h);
  console.log(
    `| ${name} | ${r.map((v) => `${Math.round(v)} views/s`).join(' | ')} | ${Math.round(step)} views/s | ${(Math.max(...r) / step).toFixed(1)}× |`,
  );
}
