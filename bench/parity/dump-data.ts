/**
 * bench/parity/dump-data: writes the images a parity run trains and scores on, as sslkit selects
 * them (`--limit N` is a seeded, class-stratified sample), in a raw form the PyTorch side reads:
 * train.u8 / test.u8 (N×C×H×W), train.labels / test.labels (int32), meta.json (shape, classes,
 * and the per-channel mean/std that sslkit normalises with).
 *
 *   npx tsx bench/parity/dump-data.ts --data cifar10 --data-dir DIR --limit 10000 --out /tmp/parity-data
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sampleSet } from '../../core/image-set.js';
import { loadDataset } from '../../data/datasets.js';
import { channelStats } from '../../train/augment/views.js';

export async function dumpParityData(o: {
  data: string;
  dataDir?: string;
  limit?: number;
  testLimit?: number;
  out: string;
  /** Resample to this size and channel count, as a run at that size reads the set (--image-size, --init). */
  size?: number;
  channels?: 1 | 3;
}) {
  const at = { dataDir: o.dataDir, size: o.size, channels: o.channels };
  const train = sampleSet(await loadDataset(o.data, 'train', at), o.limit);
  const test = sampleSet(await loadDataset(o.data, 'test', at), o.testLimit);
  fs.mkdirSync(o.out, { recursive: true });
  for (const [name, s] of [
    ['train', train],
    ['test', test],
  ] as const) {
    fs.writeFileSync(path.join(o.out, `${name}.u8`), s.pixels);
    fs.writeFileSync(path.join(o.out, `${name}.labels`), new Uint8Array(s.labels!.buffer));
  }
  const meta = { c: train.c, h: train.h, w: train.w, train: train.n, test: test.n, classes: train.classes, ...channelStats(train) };
  fs.writeFileSync(path.join(o.out, 'meta.json'), JSON.stringify(meta));
  return meta;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values: a } = parseArgs({
    options: {
      data: { type: 'string', default: 'cifar10' },
      'data-dir': { type: 'string' },
      limit: { type: 'string', default: '10000' },
      out: { type: 'string', default: '/tmp/parity-data' },
    },
  });
  console.log(JSON.stringify(await dumpParityData({ data: a.data!, dataDir: a['data-dir'], limit: Number(a.limit), out: a.out! })));
}
