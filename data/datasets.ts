/**
 * Datasets by name: `fashion-mnist`, `mnist`, `cifar10` and `folder:PATH`, with splits `train` and
 * `test`. Files are looked for under, in order: an explicit data dir, $SSLKIT_DATA, the user cache
 * (`$SSLKIT_CACHE` or `$XDG_CACHE_HOME/sslkit` or `~/.cache/sslkit`, sub-folder `data`), then
 * /usr/share/datasets (Debian's dataset packages). The decoded images are cached as one compact
 * file per split, keyed by the source files' paths, sizes and times, so later runs start in seconds.
 */
import { checkDecodedSize } from '../core/memory.js';
import { fitImageSet } from '../core/preprocess.js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as tar from 'tar';
import { UserError } from '../core/errors.js';
import { cacheDir } from '../core/fs.js';
import { loadImageSet, saveImageSet, subset, type ImageSet } from '../core/image-set.js';
import { parseIdx } from './idx.js';
import { cifarBatchFiles, parseCifarBatches, CIFAR10_CLASSES } from './cifar-binary.js';
import { heldOutIndices, loadImageFolder } from './folder.js';
import { SOURCES } from './sources.js';

export type Split = 'train' | 'test';
export const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
export const DATASET_NAMES = ['fashion-mnist-small', 'fashion-mnist', 'mnist', 'cifar10', 'folder:PATH'];

/**
 * `fashion-mnist-small` ships inside sslkit (datasets/fashion-mnist-small: 20,000 training and
 * 2,000 test images of Fashion-MNIST, a seeded class-stratified sample in the original IDX
 * format), so the quick start runs from the repository alone, offline.
 */
export const EMBEDDED_DIR = path.resolve(import.meta.dirname, '../datasets/fashion-mnist-small');

export interface DatasetOptions {
  dataDir?: string;
  /** Output size and channels (every data set); folders: the largest default size, and skip or fail on corrupt images. */
  size?: number;
  maxSize?: number;
  channels?: 1 | 3;
  strict?: boolean;
  /** Folder datasets: the RGB colour transparent images are composited on (default white). */
  background?: number[];
  log?: (line: string) => void;
  onProgress?: (done: number, total: number) => void;
  /** A labelled folder without train/ and test/ sub-folders: the share of each class held out as its test split (0: none). */
  testFraction?: number;
}

export const DEFAULT_TEST_FRACTION = 0.1;

export function dataRoots(dataDir?: string): string[] {
  // SSLKIT_NO_SYSTEM_DATA=1 leaves Debian's folder out (tests of a machine without the packages).
  const system = process.env.SSLKIT_NO_SYSTEM_DATA === '1' ? undefined : '/usr/share/datasets';
  const roots = [dataDir, process.env.SSLKIT_DATA, path.join(cacheDir(), 'data'), system];
  return roots.filter((r): r is string => !!r);
}

type IdxKind = 'fashion-mnist-small' | 'fashion-mnist' | 'mnist';

export function parseDatasetName(spec: string): { kind: IdxKind | 'cifar10' | 'folder'; path?: string } {
  if (spec.startsWith('folder:')) {
    const p = spec.slice('folder:'.length);
    if (!p) throw new UserError(`dataset 'folder:' needs a path, e.g. folder:./my-images`);
    return { kind: 'folder', path: path.resolve(p) };
  }
  if (spec === 'fashion-mnist-small' || spec === 'fashion-mnist' || spec === 'mnist' || spec === 'cifar10') return { kind: spec };
  throw new UserError(`unknown dataset '${spec}' (expected one of: ${DATASET_NAMES.join(', ')})`);
}

const IDX_FILES = (split: Split) =>
  split === 'train' ? ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte'] : ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];

/** The first of `names` (with or without .gz) found in a candidate folder of any root. */
function findIdx(kind: IdxKind, split: Split, dataDir?: string): string[] | null {
  if (kind === 'fashion-mnist-small') {
    const files = IDX_FILES(split).map((n) => path.join(EMBEDDED_DIR, `${n}.gz`));
    return files.every((f) => fs.existsSync(f)) ? files : null;
  }
  for (const root of dataRoots(dataDir)) {
    for (const dir of [root, ...SOURCES[kind].folders.map((f) => path.join(root, f))]) {
      const files = IDX_FILES(split).map((n) => [path.join(dir, n), path.join(dir, `${n}.gz`)].find((p) => fs.existsSync(p)));
      if (files.every(Boolean)) return files as string[];
    }
  }
  return null;
}

interface CifarLocation {
  kind: 'binary' | 'folder';
  dir: string;
}

/** CIFAR-10 as extracted binary batches, an image-folder layout, or one of the two archives. */
function findCifar(dataDir?: string): CifarLocation | null {
  for (const root of dataRoots(dataDir)) {
    for (const dir of [root, ...SOURCES.cifar10.folders.map((f) => path.join(root, f))]) {
      if (fs.existsSync(path.join(dir, 'data_batch_1.bin'))) return { kind: 'binary', dir };
      if (fs.existsSync(path.join(dir, 'cifar-10-batches-bin', 'data_batch_1.bin')))
        return { kind: 'binary', dir: path.join(dir, 'cifar-10-batches-bin') };
      if (fs.existsSync(path.join(dir, 'train', 'airplane')) && fs.existsSync(path.join(dir, 'test', 'airplane')))
        return { kind: 'folder', dir };
      for (const archive of ['cifar-10-binary.tar.gz', 'cifar10-jpg.tar.gz']) {
        const a = path.join(dir, archive);
        if (fs.existsSync(a)) return extractArchive(a);
      }
    }
  }
  return null;
}

function extractArchive(archive: string): CifarLocation {
  const key = fileKey([archive]);
  const out = path.join(cacheDir(), 'extracted', `${path.basename(archive).replace(/\.tar\.gz$/, '')}-${key}`);
  if (!fs.existsSync(path.join(out, '.complete'))) {
    fs.rmSync(out, { recursive: true, force: true });
    fs.mkdirSync(out, { recursive: true });
    tar.x({ file: archive, cwd: out, sync: true });
    fs.writeFileSync(path.join(out, '.complete'), '');
  }
  const found = findCifar(out);
  if (!found) throw new UserError(`${archive}: the archive holds neither CIFAR-10 binary batches nor train/ and test/ class folders`);
  return found;
}

/** A short hash of files' paths, sizes and modification times (the decoded-cache key). */
function fileKey(files: string[]): string {
  const h = crypto.createHash('sha256');
  for (const f of files) {
    const st = fs.statSync(f);
    h.update(`${path.resolve(f)}:${st.size}:${st.mtimeMs}\n`);
  }
  return h.digest('hex').slice(0, 16);
}

function cached(name: string, sourceFiles: string[], build: () => ImageSet | Promise<ImageSet>): Promise<ImageSet> | ImageSet {
  const file = path.join(cacheDir(), 'decoded', `${name}-${fileKey(sourceFiles)}.sslds`);
  if (fs.existsSync(file)) {
    try {
      return loadImageSet(file);
    } catch {
      fs.rmSync(file, { force: true }); // a damaged cache is rebuilt, never trusted
    }
  }
  const save = (s: ImageSet) => {
    try {
      saveImageSet(file, s);
    } catch {
      // A read-only cache folder only costs the next run a decode.
    }
    return s;
  };
  const r = build();
  return r instanceof Promise ? r.then(save) : save(r);
}

function notFound(kind: string, dataDir?: string): UserError {
  return new UserError(
    `dataset '${kind}' not found under ${dataRoots(dataDir).join(', ')}; run 'sslkit data fetch ${kind}'` +
      (kind === 'fashion-mnist' ? " or 'apt-get install dataset-fashion-mnist'" : '') +
      ', or pass --data-dir',
  );
}

/**
 * Sources of a split sub-folder, relative to the data set's root: train/cat/0001.jpg and
 * test/cat/0001.jpg are two images, and scoring must not take them for one (leave-one-out).
 */
const inSplit = (s: ImageSet, split: Split): ImageSet => (s.sources ? { ...s, sources: s.sources.map((p) => path.join(split, p)) } : s);

/**
 * A split of a data set. With `size` or `channels`, images come at that size and channel count:
 * folders decode straight to it (shrink-on-load); stored sets (IDX, CIFAR-10) are resampled
 * after loading (cover and centre crop), refused first where the result would not fit in memory.
 */
export async function loadDataset(spec: string, split: Split, o: DatasetOptions = {}): Promise<ImageSet> {
  const set = await loadNative(spec, split, o);
  if ((o.size === undefined || o.size === set.h) && (o.channels === undefined || o.channels === set.c)) return set;
  const size = o.size ?? set.h;
  const channels = o.channels ?? set.c;
  checkDecodedSize(`${spec} (${split})`, set.n, channels, size);
  return fitImageSet(set, size, channels);
}

async function loadNative(spec: string, split: Split, o: DatasetOptions): Promise<ImageSet> {
  const ds = parseDatasetName(spec);
  if (ds.kind === 'folder') {
    // A user's folder changes between runs, so it is decoded each time (sharp: ~2k images/s).
    if (fs.existsSync(path.join(ds.path!, split))) return inSplit(await loadImageFolder(path.join(ds.path!, split), o), split);
    const all = await loadImageFolder(ds.path!, o);
    const fraction = o.testFraction ?? DEFAULT_TEST_FRACTION;
    if (!all.labels || fraction === 0) return all; // nothing to hold out: scoring needs leave-one-out (eval does it)
    const held = heldOutIndices(all.sources!, all.labels, fraction);
    const keep = Array.from({ length: all.n }, (_, i) => i).filter((i) => held.has(i) === (split === 'test'));
    o.log?.(
      `${spec} has no ${split}/ sub-folder: its ${split} split is ${split === 'test' ? 'the held-out' : 'all but the held-out'} ` +
        `${(100 * fraction).toFixed(0)}% of each class (${keep.length} of ${all.n} images; --test-fraction)`,
    );
    return subset(all, keep);
  }
  if (ds.kind === 'cifar10') {
    const loc = findCifar(o.dataDir);
    if (!loc) throw notFound('cifar10', o.dataDir);
    if (loc.kind === 'binary') {
      const files = cifarBatchFiles(loc.dir, split);
      for (const f of files) if (!fs.existsSync(f)) throw new UserError(`${f}: missing CIFAR-10 batch file`);
      return cached(`cifar10-${split}`, files, () => parseCifarBatches(files));
    }
    const dir = path.join(loc.dir, split);
    const set = await cached(`cifar10-${split}`, [dir], async () => {
      const s = await loadImageFolder(dir, { ...o, size: 32, channels: 3 });
      // Class indices follow the official order, not the alphabetical folder order.
      const order = s.classes.map((c) => CIFAR10_CLASSES.indexOf(c));
      if (order.some((i) => i < 0)) return s;
      return { ...s, labels: s.labels && Int32Array.from(s.labels, (l) => order[l]), classes: CIFAR10_CLASSES.slice() };
    });
    return inSplit(set, split);
  }
  const files = findIdx(ds.kind, split, o.dataDir);
  if (!files && ds.kind === 'fashion-mnist-small')
    throw new UserError(`the embedded data set is missing from ${EMBEDDED_DIR} (an incomplete checkout?); use --data fashion-mnist`);
  if (!files) throw notFound(ds.kind, o.dataDir);
  return cached(`${ds.kind}-${split}`, files, () => {
    const img = parseIdx(files[0], 3);
    const lab = parseIdx(files[1], 1);
    if (img.dims[0] !== lab.dims[0]) throw new UserError(`${files[1]}: ${lab.dims[0]} labels for ${img.dims[0]} images in ${files[0]}`);
    const [n, h, w] = img.dims;
    const pixels = new Uint8Array(new SharedArrayBuffer(n * h * w));
    pixels.set(img.data);
    const classes = ds.kind === 'mnist' ? [...Array(10).keys()].map(String) : FASHION_CLASSES.slice();
    return { n, c: 1, h, w, pixels, labels: Int32Array.from(lab.data), classes };
  });
}
