/** The `sslkit` command as a user runs it: a real process, real files, one-line errors. */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { CIFAR_ARCHIVE, hasCifar, hasFashion, tmpDir } from '../helpers.js';
import { loadCheckpoint } from '../../train/checkpoint.js';

const bin = path.resolve(import.meta.dirname, '../../bin/sslkit.js');
const cache = tmpDir('sslkit-cli-cache-');
function sslkit(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, SSLKIT_CACHE: cache },
    timeout: 300_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('sslkit CLI', () => {
  it('every command has --help', () => {
    for (const cmd of [[], ['data'], ['data', 'info'], ['data', 'fetch'], ['data', 'preview'], ['train'], ['methods'], ['quickstart']]) {
      const r = sslkit(...cmd, '--help');
      expect(r.code, cmd.join(' ')).toBe(0);
      expect(r.out).toMatch(/Usage: sslkit/);
    }
    expect(sslkit('train', '--help').out).toMatch(/--resume <dir>/);
  });

  it("mistakes get a one-line error and exit status 2, or commander's usage error", () => {
    const unknown = sslkit('data', 'info', 'imagenet');
    expect(unknown.code).toBe(2);
    expect(unknown.err.trim().split('\n')).toHaveLength(1);
    expect(unknown.err).toMatch(
      /^sslkit: unknown dataset 'imagenet' \(expected one of: fashion-mnist-small, fashion-mnist, mnist, cifar10, folder:PATH\)/,
    );
    const badFolder = sslkit('data', 'info', 'folder:/nonexistent/images');
    expect(badFolder.code).toBe(2);
    expect(badFolder.err).toMatch(/\/nonexistent\/images: no such folder/);
    const badNumber = sslkit('train', '--epochs', 'many', '--out', tmpDir());
    expect(badNumber.code).not.toBe(0);
    expect(badNumber.err).toMatch(/--epochs must be an integer ≥ 1, got 'many'/);
    const badSet = sslkit('train', '--set', 'temperature', '--out', tmpDir());
    expect(badSet.err).toMatch(/expected key=value, got 'temperature'/);
  });

  it('methods lists SimCLR with its METHODS.md defaults', () => {
    expect(sslkit('methods').out).toMatch(/simclr[\s\S]*--set temperature=0.2[\s\S]*--set proj_hidden=2048/);
  });

  it.runIf(hasFashion)('data info fashion-mnist prints counts, shape and classes', () => {
    const r = sslkit('data', 'info', 'fashion-mnist', '--json');
    expect(r.code).toBe(0);
    const info = JSON.parse(r.out);
    expect(info.train).toMatchObject({ images: 60000, shape: [1, 28, 28], labelled: true });
    expect(info.test.images).toBe(10000);
    expect(info.train.classes).toContain('Ankle boot');
  });

  it.runIf(hasFashion)('data preview writes a PNG grid of originals and augmented views', async () => {
    const out = path.join(tmpDir(), 'grid.png');
    const r = sslkit('data', 'preview', 'fashion-mnist', '--out', out, '--rows', '4', '--views', '5', '--scale', '2');
    expect(r.code).toBe(0);
    const meta = await sharp(out).metadata();
    expect(meta.format).toBe('png');
    // 6 cells of 56 px with 2 px gaps across, 4 rows down.
    expect([meta.width, meta.height]).toEqual([6 * 58 + 2, 4 * 58 + 2]);
    const { data } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    const row0 = (x: number) => data[(10 * meta.width! + x) * meta.channels!];
    // The original and its views differ (augmented), and both have content.
    let diff = 0;
    for (let x = 2; x < 58; x++) diff += Math.abs(row0(x) - row0(x + 58));
    expect(diff).toBeGreaterThan(0);
  });

  it.runIf(hasCifar)(
    'data info cifar10 from the shared JPEG archive (image-folder layout)',
    () => {
      const r = sslkit('data', 'info', 'cifar10', '--data-dir', path.dirname(CIFAR_ARCHIVE), '--json');
      expect(r.code, r.err).toBe(0);
      const info = JSON.parse(r.out);
      expect(info.train).toMatchObject({ images: 50000, shape: [3, 32, 32] });
      expect(info.test.images).toBe(10000);
      expect(info.train.classes[0]).toBe('airplane');
      expect(info.train.perClass).toEqual(new Array(10).fill(5000));
      expect(fs.existsSync(path.join(cache, 'decoded'))).toBe(true);
      // Decoding 60,000 JPEGs on two cores: over vitest's 2-minute default when the cores are shared.
    },
    600_000,
  );
});

describe.runIf(hasFashion)('sslkit train in a real process', () => {
  it('Ctrl-C (SIGINT) finishes the step, writes a checkpoint and exits 130; --resume continues', async () => {
    const out = path.join(tmpDir(), 'run');
    const args = [
      'train',
      '--data',
      'fashion-mnist',
      '--limit',
      '2048',
      '--batch-size',
      '32',
      '--width',
      '0.25',
      '--set',
      'proj_hidden=64',
      '--epochs',
      '1',
    ];
    const child = spawn(process.execPath, [bin, ...args, '--knn-memory', '0', '--no-tune', '--device', 'cpu', '--out', out], {
      env: { ...process.env, SSLKIT_CACHE: cache },
    });
    let err = '';
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.on('data', (d) => {
        err += d;
        // Interrupt once a few steps have been checkpoint-free: after the graph compiled, wait.
        if (/step graph:/.test(err) && !child.killed) setTimeout(() => child.kill('SIGINT'), 1500);
      });
      child.on('exit', (c) => resolve(c));
    });
    expect(err).toMatch(/interrupt: finishing this step and writing a checkpoint/);
    expect(code).toBe(130);
    expect(stdout).toMatch(/^interrupted: step (\d+)/);
    const ck = loadCheckpoint(path.join(out, 'checkpoint.ckpt'));
    expect(ck.position.step).toBeGreaterThan(0);
    expect(ck.position.step).toBeLessThan(64);
    const resumed = sslkit('train', '--resume', out, '--knn-memory', '0', '--no-tune', '--device', 'cpu');
    expect(resumed.code, resumed.err).toBe(0);
    expect(resumed.err).toMatch(new RegExp(`resuming at step ${ck.position.step} `));
    expect(resumed.out).toMatch(/^done: step 64,/);
  });
});
