/**
 * CIFAR-10's official binary format: records of 1 label byte + 3072 pixel bytes (R, G, B planes of
 * 32×32), 10,000 per batch file; `cifar-10-binary.tar.gz` holds data_batch_1..5.bin and test_batch.bin.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../core/errors.js';
import type { ImageSet } from '../core/image-set.js';

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
const RECORD = 1 + 3 * 32 * 32;

export function parseCifarBatches(files: string[]): ImageSet {
  const bufs = files.map((f) => {
    const b = fs.readFileSync(f);
    if (b.length === 0 || b.length % RECORD !== 0)
      throw new UserError(
        `${f}: ${b.length} bytes is not a whole number of CIFAR-10 records (${RECORD} bytes each: 1 label + 3072 pixels)`,
      );
    return b;
  });
  const n = bufs.reduce((s, b) => s + b.length / RECORD, 0);
  const pixels = new Uint8Array(new SharedArrayBuffer(n * 3072));
  const labels = new Int32Array(n);
  let i = 0;
  for (const [fi, b] of bufs.entries())
    for (let off = 0; off < b.length; off += RECORD, i++) {
      const label = b[off];
      if (label > 9) throw new UserError(`${files[fi]}: record ${off / RECORD} has label ${label}, expected 0-9 (not a CIFAR-10 batch?)`);
      labels[i] = label;
      pixels.set(b.subarray(off + 1, off + RECORD), i * 3072);
    }
  return { n, c: 3, h: 32, w: 32, pixels, labels, classes: CIFAR10_CLASSES.slice() };
}

/** Batch files of a split inside an extracted `cifar-10-batches-bin` folder. */
export function cifarBatchFiles(dir: string, split: 'train' | 'test'): string[] {
  const names = split === 'train' ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ['test_batch.bin'];
  return names.map((n) => path.join(dir, n));
}
