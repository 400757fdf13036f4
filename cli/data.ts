/** `sslkit data info | fetch | preview`. */
import path from 'node:path';
import { Command } from 'commander';
import sharp from 'sharp';
import { loadDataset, parseDatasetName, type Split } from '../data/datasets.js';
import { cacheDir } from '../core/fs.js';
import { fetchFile } from '../data/fetch.js';
import { SOURCES } from '../data/sources.js';
import { AUGMENT_PRESETS, presetViews, type AugmentPreset } from '../train/augment/presets.js';
import { augmentView } from '../train/augment/views.js';
import { fromUint8, type Img } from '../core/image.js';
import { Rng } from '../core/random.js';
import { UserError } from '../core/errors.js';
import { intOption } from './options.js';
import { progressBar } from './progress.js';
import type { ImageSet } from '../core/image-set.js';

const splitOption = (v: string): Split => {
  if (v !== 'train' && v !== 'test') throw new UserError(`--split must be 'train' or 'test', got '${v}'`);
  return v;
};

export function dataCommand(): Command {
  const data = new Command('data').description('datasets: inspect, download, preview augmentations');

  data
    .command('info')
    .description('counts, shape and classes of a dataset (fashion-mnist, mnist, cifar10, folder:PATH)')
    .argument('<name>', 'dataset name')
    .option('--data-dir <dir>', 'look here first for dataset files')
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: { dataDir?: string; json?: boolean }) => {
      const info: Record<string, unknown> = { name };
      for (const split of ['train', 'test'] as Split[]) {
        let s: ImageSet;
        try {
          s = await loadDataset(name, split, { dataDir: o.dataDir });
        } catch (e) {
          if (split === 'test') continue; // folders may have no test split
          throw e;
        }
        const counts = s.labels ? s.classes.map((_, c) => s.labels!.reduce((a, l) => a + (l === c ? 1 : 0), 0)) : null;
        info[split] = { images: s.n, shape: [s.c, s.h, s.w], labelled: !!s.labels, classes: s.classes, perClass: counts };
        if (parseDatasetName(name).kind === 'folder') break;
      }
      if (o.json) {
        process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
        return;
      }
      process.stdout.write(`dataset ${name}\n`);
      for (const split of ['train', 'test']) {
        const s = info[split] as { images: number; shape: number[]; classes: string[]; perClass: number[] | null } | undefined;
        if (!s) continue;
        process.stdout.write(
          `  ${split.padEnd(5)} ${String(s.images).padStart(6)} images, ${s.shape.join('×')} (C×H×W), ${s.classes.length ? `${s.classes.length} classes` : 'unlabelled'}\n`,
        );
      }
      const tr = info.train as { classes: string[]; perClass: number[] | null };
      if (tr.classes.length)
        process.stdout.write(`  classes: ${tr.classes.map((c, i) => `${c}${tr.perClass ? ` (${tr.perClass[i]})` : ''}`).join(', ')}\n`);
    });

  data
    .command('fetch')
    .description('download a dataset from its canonical address, verify its checksum, store it atomically')
    .argument('<name>', `one of: ${Object.keys(SOURCES).join(', ')}`)
    .option('--data-dir <dir>', 'where to store it (default: the user cache)')
    .option('--mirror <url>', 'fetch from this base URL instead of the canonical host')
    .action(async (name: string, o: { dataDir?: string; mirror?: string }) => {
      const src = SOURCES[name];
      if (!src) throw new UserError(`no download known for '${name}' (known: ${Object.keys(SOURCES).join(', ')})`);
      const dir = path.join(o.dataDir ?? path.join(cacheDir(), 'data'), src.folders[0]);
      for (const f of src.files) {
        let bar: ReturnType<typeof progressBar> | null = null;
        const file = await fetchFile(f, dir, {
          baseUrl: o.mirror,
          onProgress: (_n, got, total) => {
            bar ??= progressBar(total ?? 0, `  ${f.name} [{bar}] {percentage}% {value}/{total} bytes`, 0);
            bar.update(got);
          },
        });
        (bar as ReturnType<typeof progressBar> | null)?.stop();
        process.stdout.write(`ok ${file}\n`);
      }
    });

  data
    .command('preview')
    .description('a PNG grid: each row is a sample image followed by its augmented views')
    .argument('<name>', 'dataset name')
    .requiredOption('--out <file.png>', 'output PNG')
    .option('--data-dir <dir>', 'look here first for dataset files')
    .option('--split <split>', 'train or test', splitOption, 'train')
    .option('--preset <preset>', `augmentation preset (${AUGMENT_PRESETS.join(', ')})`, 'simclr')
    .option('--rows <n>', 'sample images', intOption('--rows', 1), 8)
    .option('--views <n>', 'augmented views per image', intOption('--views', 1), 6)
    .option('--scale <n>', 'pixel magnification', intOption('--scale', 1), 3)
    .option('--seed <n>', 'random seed', intOption('--seed'), 0)
    .action(
      async (
        name: string,
        o: { out: string; dataDir?: string; split: Split; preset: string; rows: number; views: number; scale: number; seed: number },
      ) => {
        if (!AUGMENT_PRESETS.includes(o.preset as AugmentPreset))
          throw new UserError(`unknown preset '${o.preset}' (expected: ${AUGMENT_PRESETS.join(', ')})`);
        const s = await loadDataset(name, o.split, { dataDir: o.dataDir });
        const png = await previewGrid(s, o.preset as AugmentPreset, o);
        await sharp(png.data, { raw: { width: png.width, height: png.height, channels: 3 } })
          .png()
          .toFile(o.out);
        process.stdout.write(`wrote ${o.out} (${o.rows} images × 1 original + ${o.views} ${o.preset} views)\n`);
      },
    );
  return data;
}

/** RGB raster of originals and views, `scale`× magnified, 2 px gaps. */
export function previewGrid(s: ImageSet, preset: AugmentPreset, o: { rows: number; views: number; scale: number; seed: number }) {
  const rng = new Rng(o.seed);
  const views = presetViews(preset, s.h, o.views);
  const cell = s.h * o.scale;
  const gap = 2;
  const cols = 1 + o.views;
  const rows = Math.min(o.rows, s.n);
  const width = cols * (cell + gap) + gap;
  const height = rows * (cell + gap) + gap;
  const data = new Uint8Array(width * height * 3).fill(255);
  const blit = (img: Img, r: number, c: number) => {
    const hw = img.h * img.w;
    for (let y = 0; y < cell; y++)
      for (let x = 0; x < cell; x++) {
        const sy = Math.floor((y * img.h) / cell);
        const sx = Math.floor((x * img.w) / cell);
        const p = ((gap + r * (cell + gap) + y) * width + gap + c * (cell + gap) + x) * 3;
        for (let k = 0; k < 3; k++) data[p + k] = Math.round(255 * img.data[(img.c === 3 ? k : 0) * hw + sy * img.w + sx]);
      }
  };
  for (let r = 0; r < rows; r++) {
    const i = Math.floor((r * s.n) / rows);
    const img = fromUint8(s.pixels, i, s.c, s.h, s.w);
    blit(img, r, 0);
    views.forEach((v, k) => blit(augmentView(rng, img, v), r, 1 + k));
  }
  return { data, width, height };
}
