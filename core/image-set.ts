/**
 * A decoded image dataset held in memory: uint8 pixels N×C×H×W, optional labels and class names.
 * The same compact layout is the on-disk cache (`*.sslds`), so later runs load in seconds.
 */
import fs from 'node:fs';
import { UserError } from './errors.js';
import { Rng } from './random.js';
import { writeFileAtomic } from './fs.js';

export interface ImageSet {
  n: number;
  c: number;
  h: number;
  w: number;
  /** N×C×H×W uint8, row-major. */
  pixels: Uint8Array;
  /** Class index per image, or -1 where unknown; null for an unlabelled set. */
  labels: Int32Array | null;
  classes: string[];
  /** Where each image came from (file path or dataset index), when known. */
  sources?: string[];
}

const MAGIC = 'SSLDS1\n';

export function saveImageSet(file: string, s: ImageSet): void {
  const header = JSON.stringify({ n: s.n, c: s.c, h: s.h, w: s.w, classes: s.classes, labels: !!s.labels, sources: s.sources ?? null });
  const labels = s.labels ? new Uint8Array(s.labels.buffer, s.labels.byteOffset, s.labels.byteLength) : new Uint8Array(0);
  writeFileAtomic(file, [MAGIC, `${header}\n`, s.pixels, labels]);
}

export function loadImageSet(file: string): ImageSet {
  const buf = fs.readFileSync(file);
  if (buf.subarray(0, MAGIC.length).toString() !== MAGIC) throw new UserError(`${file}: not an sslkit dataset cache (bad magic)`);
  const nl = buf.indexOf(10, MAGIC.length);
  const header = JSON.parse(buf.subarray(MAGIC.length, nl).toString()) as {
    n: number;
    c: number;
    h: number;
    w: number;
    classes: string[];
    labels: boolean;
    sources: string[] | null;
  };
  const start = nl + 1;
  const np = header.n * header.c * header.h * header.w;
  const expected = start + np + (header.labels ? header.n * 4 : 0);
  if (buf.length !== expected) throw new UserError(`${file}: dataset cache is ${buf.length} bytes, expected ${expected} (truncated?)`);
  // Copy into a SharedArrayBuffer so loader workers read the pixels without copies.
  const pixels = new Uint8Array(new SharedArrayBuffer(np));
  pixels.set(buf.subarray(start, start + np));
  let labels: Int32Array | null = null;
  if (header.labels) {
    labels = new Int32Array(header.n);
    new Uint8Array(labels.buffer).set(buf.subarray(start + np, start + np + header.n * 4));
  }
  return {
    n: header.n,
    c: header.c,
    h: header.h,
    w: header.w,
    pixels,
    labels,
    classes: header.classes,
    sources: header.sources ?? undefined,
  };
}

/** A subset of an image set by indices (copies the pixels). */
export function subset(s: ImageSet, idx: ArrayLike<number>): ImageSet {
  const per = s.c * s.h * s.w;
  const pixels = new Uint8Array(new SharedArrayBuffer(idx.length * per));
  const labels = s.labels ? new Int32Array(idx.length) : null;
  for (let i = 0; i < idx.length; i++) {
    pixels.set(s.pixels.subarray(idx[i] * per, (idx[i] + 1) * per), i * per);
    if (labels) labels[i] = s.labels![idx[i]];
  }
  return { ...s, n: idx.length, pixels, labels, sources: s.sources ? Array.from(idx, (i) => s.sources![i]) : undefined };
}

/**
 * n images drawn at random with `seed`, stratified by class when the set is labelled (each class
 * keeps its share, rounded by largest remainder), returned in their original order; all of them
 * when n is absent or ≥ N. Data sets stored class by class (image folders, CIFAR-10's JPEG
 * layout) make "the first n" one or two classes, so every --limit goes through here.
 */
export function sampleSet(s: ImageSet, n?: number, seed = 0): ImageSet {
  if (!n || n >= s.n) return s;
  return subset(s, sampleIndices(s.labels, s.n, n, seed));
}

export function sampleIndices(labels: Int32Array | null, total: number, n: number, seed = 0): Int32Array {
  const groups = new Map<number, number[]>();
  for (let i = 0; i < total; i++) {
    const c = labels ? labels[i] : 0;
    if (!groups.has(c)) groups.set(c, []);
    groups.get(c)!.push(i);
  }
  const keys = [...groups.keys()].sort((a, b) => a - b);
  const exact = keys.map((k) => (groups.get(k)!.length * n) / total);
  const take = exact.map(Math.floor);
  const byRemainder = keys.map((_, j) => j).sort((a, b) => exact[b] - take[b] - (exact[a] - take[a]) || a - b);
  for (let r = n - take.reduce((a, b) => a + b, 0), j = 0; r > 0; r--, j++) take[byRemainder[j]]++;
  const rng = new Rng(seed);
  const chosen: number[] = [];
  keys.forEach((k, j) => chosen.push(...rng.shuffle(groups.get(k)!).slice(0, take[j])));
  return Int32Array.from(chosen.sort((a, b) => a - b));
}

/** A shared copy of the pixels (workers need a SharedArrayBuffer). */
export function shared(s: ImageSet): ImageSet {
  if (s.pixels.buffer instanceof SharedArrayBuffer) return s;
  const pixels = new Uint8Array(new SharedArrayBuffer(s.pixels.length));
  pixels.set(s.pixels);
  return { ...s, pixels };
}
