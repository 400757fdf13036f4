/**
 * Writes datasets/fashion-mnist-small from the original Fashion-MNIST IDX files: 20,000 training
 * and 2,000 test images, each a seeded (seed 0) class-stratified sample in the original order
 * (core/image-set.ts sampleIndices), in the original IDX format, gzipped without a timestamp so
 * the bytes are the same on every machine.
 *
 *   npx tsx datasets/make-fashion-mnist-small.ts [--from /usr/share/datasets/fashion-mnist]
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { parseArgs } from 'node:util';
import { parseIdx } from '../data/idx.js';
import { sampleIndices } from '../core/image-set.js';

const { values: a } = parseArgs({ options: { from: { type: 'string', default: '/usr/share/datasets/fashion-mnist' } } });
const out = path.join(import.meta.dirname, 'fashion-mnist-small');
const splits = [
  { prefix: 'train', n: 20000 },
  { prefix: 't10k', n: 2000 },
];

function idx(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(0x00000800 | dims.length, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  // zlib's gzip header carries no name and mtime 0: the same input gives the same bytes.
  return zlib.gzipSync(Buffer.concat([header, data]), { level: 9 });
}

for (const { prefix, n } of splits) {
  const images = parseIdx(path.join(a.from!, `${prefix}-images-idx3-ubyte.gz`), 3);
  const labels = parseIdx(path.join(a.from!, `${prefix}-labels-idx1-ubyte.gz`), 1);
  const pick = sampleIndices(Int32Array.from(labels.data), labels.dims[0], n, 0);
  const [, h, w] = images.dims;
  const px = new Uint8Array(n * h * w);
  const lb = new Uint8Array(n);
  pick.forEach((src, i) => {
    px.set(images.data.subarray(src * h * w, (src + 1) * h * w), i * h * w);
    lb[i] = labels.data[src];
  });
  for (const [name, bytes] of [
    [`${prefix}-images-idx3-ubyte.gz`, idx([n, h, w], px)],
    [`${prefix}-labels-idx1-ubyte.gz`, idx([n], lb)],
  ] as const) {
    fs.writeFileSync(path.join(out, name), bytes);
    console.log(`${crypto.createHash('sha256').update(bytes).digest('hex')}  ${name}`);
  }
}
