/** The IDX format of MNIST and Fashion-MNIST (gzipped or raw): magic 0x0000 08 <ndim>, big-endian dims. */
import fs from 'node:fs';
import zlib from 'node:zlib';
import { UserError } from '../core/errors.js';

export function readMaybeGzip(file: string): Buffer {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new UserError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      return zlib.gunzipSync(buf);
    } catch (e) {
      throw new UserError(`${file}: corrupt or truncated gzip data (${(e as Error).message})`, { cause: e });
    }
  }
  return buf;
}

/** Parses an IDX file of unsigned bytes; `ndim` is what the caller expects (3 images, 1 labels). */
export function parseIdx(file: string, ndim: 1 | 3): { dims: number[]; data: Uint8Array } {
  const buf = readMaybeGzip(file);
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 0x08 || buf[3] !== ndim)
    throw new UserError(
      `${file}: wrong IDX magic 0x${buf.subarray(0, 4).toString('hex').padStart(8, '0')}, expected 0x000008${ndim.toString(16).padStart(2, '0')} (unsigned-byte ${ndim === 3 ? 'images' : 'labels'})`,
    );
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(buf.readUInt32BE(4 + 4 * i));
  const start = 4 + 4 * ndim;
  const n = dims.reduce((a, b) => a * b, 1);
  if (buf.length !== start + n)
    throw new UserError(`${file}: IDX data is ${buf.length - start} bytes, header [${dims}] needs ${n} (truncated?)`);
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + start, n) };
}
