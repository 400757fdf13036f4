/**
 * Checkpoints: every parameter, buffer and optimiser state tensor plus the position in training
 * (step, epoch, batch within the epoch). The loader's randomness is a pure function of (seed,
 * epoch, batch), so the position is the whole RNG state. Written atomically: a crash mid-write
 * leaves the previous checkpoint intact.
 */
import fs from 'node:fs';
import { UserError } from '../core/errors.js';
import { writeFileAtomic } from '../core/fs.js';

const MAGIC = 'SSLCKPT1\n';

export interface Position {
  step: number;
  epoch: number;
  /** Next batch to run within `epoch`. */
  batch: number;
}

export interface Checkpoint {
  position: Position;
  seed: number;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  /** Free-form extras (e.g. the best kNN so far, method state such as a queue pointer). */
  extra?: Record<string, unknown>;
}

export function saveCheckpoint(file: string, c: Checkpoint): void {
  const index: { name: string; shape: number[]; length: number }[] = [];
  const blobs: Uint8Array[] = [];
  for (const [name, t] of c.tensors) {
    index.push({ name, shape: t.shape, length: t.data.length });
    blobs.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  const header = JSON.stringify({ position: c.position, seed: c.seed, extra: c.extra ?? {}, tensors: index });
  writeFileAtomic(file, [MAGIC, `${header}\n`, ...blobs]);
}

export function loadCheckpoint(file: string): Checkpoint {
  if (!fs.existsSync(file)) throw new UserError(`${file}: no checkpoint there`);
  const buf = fs.readFileSync(file);
  if (buf.subarray(0, MAGIC.length).toString() !== MAGIC) throw new UserError(`${file}: not an sslkit checkpoint (bad magic)`);
  const nl = buf.indexOf(10, MAGIC.length);
  const h = JSON.parse(buf.subarray(MAGIC.length, nl).toString()) as {
    position: Position;
    seed: number;
    extra: Record<string, unknown>;
    tensors: { name: string; shape: number[]; length: number }[];
  };
  let off = nl + 1;
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const t of h.tensors) {
    const bytes = t.length * 4;
    if (off + bytes > buf.length) throw new UserError(`${file}: checkpoint is truncated (tensor '${t.name}')`);
    const data = new Float32Array(t.length);
    new Uint8Array(data.buffer).set(buf.subarray(off, off + bytes));
    tensors.set(t.name, { shape: t.shape, data });
    off += bytes;
  }
  return { position: h.position, seed: h.seed, tensors, extra: h.extra };
}
