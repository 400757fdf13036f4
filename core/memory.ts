/**
 * How much memory a decoded data set may take: a decoded set lives in memory whole (uint8
 * N×C×H×W), beside the model, its step graph and the loader's batches, so at most half of
 * this machine's memory, or SSLKIT_MAX_DATA_BYTES where a user or a test sets it.
 */
import os from 'node:os';
import { UserError } from './errors.js';

export function dataBudgetBytes(): number {
  const env = Number(process.env.SSLKIT_MAX_DATA_BYTES);
  return Number.isFinite(env) && env > 0 ? env : os.totalmem() / 2;
}

export const formatBytes = (b: number): string =>
  b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e3).toFixed(1)} kB`;

/** Refuses, before decoding, a set that would not fit; says what to change. */
export function checkDecodedSize(what: string, n: number, c: number, size: number): number {
  const bytes = n * c * size * size;
  const budget = dataBudgetBytes();
  if (bytes > budget) {
    const fits = Math.floor(Math.sqrt(budget / (n * c)));
    throw new UserError(
      `${what}: ${n} images decoded at ${c}×${size}×${size} would take ${formatBytes(bytes)}, more than the ${formatBytes(budget)} ` +
        `sslkit allows itself (half this machine's memory, or SSLKIT_MAX_DATA_BYTES); use --image-size ${Math.max(8, fits)} or smaller, or --limit`,
    );
  }
  return bytes;
}
