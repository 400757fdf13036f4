/** Shared test helpers: temporary folders and the real datasets when present. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function tmpDir(prefix = 'sslkit-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const FASHION_DIR = '/usr/share/datasets/fashion-mnist';
export const hasFashion = fs.existsSync(path.join(FASHION_DIR, 'train-images-idx3-ubyte.gz'));

/** The shared CIFAR-10 JPEG archive (../shared/datasets), when this checkout has it beside it. */
export const CIFAR_ARCHIVE = path.resolve(import.meta.dirname, '../../shared/datasets/cifar10-jpg.tar.gz');
export const hasCifar = fs.existsSync(CIFAR_ARCHIVE);

/** Isolates the user cache for a test file (decoded caches, conv plans). */
export function isolatedCache(): string {
  const dir = tmpDir('sslkit-cache-');
  process.env.SSLKIT_CACHE = dir;
  return dir;
}
