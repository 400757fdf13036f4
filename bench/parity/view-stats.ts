/**
 * bench/parity/view-stats: do sslkit's augmentations make the views torchvision makes? Writes
 * sslkit's views of the first N parity images for one preset, then runs view_stats.py, which makes
 * torchvision's views of the same images (train_torch.py's transforms) and prints per-view
 * statistics of both side by side: colour, contrast, sharpness (blur), solarisation, greyscale,
 * and how far each view is from its partner and from the plain image.
 *
 *   npx tsx bench/parity/view-stats.ts --data /tmp/sslkit-parity/data --preset byol [--n 4096] [--python /usr/bin/python3]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { presetViews, type AugmentPreset } from '../../train/augment/presets.js';
import { makeBatchViews } from '../../train/augment/views.js';

const { values: a } = parseArgs({
  options: {
    data: { type: 'string', default: '/tmp/sslkit-parity/data' },
    preset: { type: 'string', default: 'byol' },
    n: { type: 'string', default: '4096' },
    seed: { type: 'string', default: '0' },
    python: { type: 'string', default: 'python3' },
  },
});
const meta = JSON.parse(fs.readFileSync(path.join(a.data!, 'meta.json'), 'utf8'));
const n = Math.min(Number(a.n), meta.train);
const pixels = new Uint8Array(fs.readFileSync(path.join(a.data!, 'train.u8')));
const views = presetViews(a.preset as AugmentPreset, meta.h, 2);
const indices = Array.from({ length: n }, (_, i) => i);
const out = makeBatchViews({ pixels, c: meta.c, h: meta.h, w: meta.w }, indices, { views, mean: meta.mean, std: meta.std }, Number(a.seed));
const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'view-stats-')), 'views.f32');
fs.writeFileSync(file, Buffer.concat(out.map((v) => Buffer.from(v.buffer))));
const here = path.dirname(new URL(import.meta.url).pathname);
const r = spawnSync(a.python!, [path.join(here, 'view_stats.py'), a.data!, file, '--preset', a.preset!, '--n', String(n)], {
  stdio: 'inherit',
});
fs.rmSync(path.dirname(file), { recursive: true, force: true });
process.exit(r.status ?? 1);
