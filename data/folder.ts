/**
 * Any folder of JPEG/PNG/WebP images. Images in sub-folders are labelled by the first-level folder
 * name; a folder with images only at its top level is unlabelled. Every image is decoded with
 * sharp, turned upright by its EXIF orientation and resized (cover, centred) to one size; JPEG and
 * WebP shrink while decoding (libvips' shrink-on-load), so a 4000×3000 photo never exists in
 * memory at full size. A set that would not fit in memory decoded is refused before decoding. A
 * corrupt or truncated image is skipped with a count and the first names in a warning, or is
 * fatal with `strict`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { UserError } from '../core/errors.js';
import type { ImageSet } from '../core/image-set.js';
import { DEFAULT_BACKGROUND } from '../core/gallery-format.js';
import { checkDecodedSize, formatBytes } from '../core/memory.js';

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp']);

export interface FolderOptions {
  /** Output size (square); default: the first image's shorter side, at most `maxSize`. */
  size?: number;
  maxSize?: number;
  /** 3 (RGB) or 1 (greyscale). */
  channels?: 1 | 3;
  strict?: boolean;
  /** The RGB colour (0-255) transparent images are composited on; default white, what a viewer shows. */
  background?: number[];
  log?: (line: string) => void;
  onProgress?: (done: number, total: number) => void;
}

function listImages(root: string): { file: string; cls: string | null }[] {
  const out: { file: string; cls: string | null }[] = [];
  const walk = (dir: string, cls: string | null) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p, cls ?? e.name);
      else if (IMAGE_EXT.has(path.extname(e.name).toLowerCase())) out.push({ file: p, cls });
    }
  };
  walk(root, null);
  return out;
}

export async function loadImageFolder(root: string, o: FolderOptions = {}): Promise<ImageSet> {
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new UserError(`${root}: no such folder`);
  const entries = listImages(root);
  if (entries.length === 0)
    throw new UserError(`${root}: no images found (expected .jpg, .jpeg, .png or .webp files, in class sub-folders or at the top level)`);
  const labelled = entries.every((e) => e.cls !== null);
  const classes = labelled ? [...new Set(entries.map((e) => e.cls!))].sort() : [];
  const channels = o.channels ?? 3;
  const bg = o.background ?? DEFAULT_BACKGROUND;
  // What the decoded set takes goes to the caller's log; a library caller without one is not written to.
  const log = o.log ?? (() => {});
  let size = o.size;
  const bad: string[] = [];
  // The size, from the first image whose header reads (no pixels are decoded for it).
  for (let i = 0; size === undefined && i < entries.length; i++) {
    try {
      const m = await sharp(entries[i].file).metadata();
      // Orientations 5-8 swap width and height; the shorter side is the same either way.
      const side = Math.min(m.width ?? 0, m.height ?? 0);
      if (side > 0) size = Math.min(side, o.maxSize ?? Infinity);
    } catch {
      // an unreadable first file: the next one decides, and this one is reported below
    }
  }
  if (size === undefined) throw new UserError(`${root}: none of the ${entries.length} images could be read`);
  const bytes = checkDecodedSize(root, entries.length, channels, size);
  log(`${root}: decoding ${entries.length} images at ${channels}×${size}×${size} (${formatBytes(bytes)} in memory)`);
  const decoded: (Uint8Array | null)[] = new Array(entries.length).fill(null);
  const decode = async (i: number): Promise<void> => {
    try {
      let img = sharp(entries[i].file, { failOn: 'truncated' })
        .rotate()
        .flatten({ background: { r: bg[0], g: bg[1], b: bg[2] } })
        .resize(size, size, { fit: 'cover' });
      img = channels === 1 ? img.greyscale() : img.toColourspace('srgb');
      const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
      if (info.channels !== channels) throw new Error(`decoded ${info.channels} channels`);
      // HWC → CHW
      const hw = size! * size!;
      const chw = new Uint8Array(channels * hw);
      for (let p = 0; p < hw; p++) for (let c = 0; c < channels; c++) chw[c * hw + p] = data[p * channels + c];
      decoded[i] = chw;
    } catch (e) {
      bad.push(`${entries[i].file} (${(e as Error).message.split('\n')[0]})`);
    }
  };
  // Parallel chunks on sharp's thread pool.
  const CHUNK = 64;
  for (let s = 0; s < entries.length; s += CHUNK) {
    await Promise.all(Array.from({ length: Math.min(CHUNK, entries.length - s) }, (_, k) => decode(s + k)));
    o.onProgress?.(Math.min(s + CHUNK, entries.length), entries.length);
  }
  if (bad.length) {
    const msg = `${root}: ${bad.length} of ${entries.length} images could not be decoded and were skipped, e.g. ${bad.slice(0, 3).join('; ')}`;
    if (o.strict) throw new UserError(msg.replace('and were skipped', ''));
    (o.log ?? ((l: string) => process.stderr.write(`warning: ${l}\n`)))(msg);
  }
  const keep = decoded.map((d, i) => (d ? i : -1)).filter((i) => i >= 0);
  if (keep.length === 0) throw new UserError(`${root}: none of the ${entries.length} images could be decoded`);
  const per = channels * size! * size!;
  const pixels = new Uint8Array(new SharedArrayBuffer(keep.length * per));
  keep.forEach((i, k) => pixels.set(decoded[i]!, k * per));
  const labels = labelled ? Int32Array.from(keep, (i) => classes.indexOf(entries[i].cls!)) : null;
  return {
    n: keep.length,
    c: channels,
    h: size!,
    w: size!,
    pixels,
    labels,
    classes,
    sources: keep.map((i) => path.relative(root, entries[i].file)),
  };
}

/**
 * The held-out test share of a labelled folder that has no train/ and test/ sub-folders: in each
 * class, the round(fraction · count) images (at least one where the class has two or more) whose
 * seeded hash of the relative path is lowest. It depends only on the file names, so eval and a
 * resumed run hold out the same images, and adding images moves at most a boundary image.
 */
export function heldOutIndices(sources: string[], labels: Int32Array, fraction: number, seed = 0): Set<number> {
  const byClass = new Map<number, { i: number; h: string }[]>();
  sources.forEach((src, i) => {
    const h = crypto.createHash('sha256').update(`${seed}:${src}`).digest('hex');
    if (!byClass.has(labels[i])) byClass.set(labels[i], []);
    byClass.get(labels[i])!.push({ i, h });
  });
  const out = new Set<number>();
  for (const members of byClass.values()) {
    const take = members.length < 2 ? 0 : Math.max(1, Math.round(fraction * members.length));
    members.sort((a, b) => (a.h < b.h ? -1 : a.h > b.h ? 1 : 0));
    for (const m of members.slice(0, take)) out.add(m.i);
  }
  return out;
}
