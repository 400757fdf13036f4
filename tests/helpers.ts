/** Shared test helpers: temporary folders and the real datasets when present. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { train } from '../train/trainer.js';
import { TrainConfigSchema } from '../train/config.js';
import { exportRun } from '../export/exporter.js';

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

/**
 * A few-second SimCLR run on real Fashion-MNIST images (quiet, CPU, no kNN, no tuning) for tests
 * that need a trained run folder; `overrides` change any config key. Returns the run folder.
 */
export async function trainTinyRun(overrides: Record<string, unknown> = {}): Promise<string> {
  const out = tmpDir();
  const cfg = TrainConfigSchema.parse({
    method: 'simclr',
    data: 'fashion-mnist',
    dataDir: FASHION_DIR,
    width: 0.25,
    hp: { proj_hidden: 64 },
    epochs: 1,
    batchSize: 32,
    limit: 256,
    knnMemory: 0,
    tuneConv: false,
    device: 'cpu',
    workers: 0,
    out,
    ...overrides,
  });
  await train(cfg, { log: () => {} });
  return out;
}

/** trainTinyRun, exported to `run/model.onnx`; returns the model file. */
export async function tinyModel(overrides: Record<string, unknown> = {}): Promise<string> {
  const run = await trainTinyRun(overrides);
  const model = path.join(run, 'model.onnx');
  await exportRun(run, { out: model, log: () => {} });
  return model;
}

/** A JSON request over real HTTP (GET without a body, POST with one, or `method`): status and parsed body. */
export async function httpJson(url: string, body?: unknown, method = body === undefined ? 'GET' : 'POST') {
  const r = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, any> };
}

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  /** Everything it printed so far. */
  output: () => string;
  /** Its exit code once it exits. */
  exited: Promise<number | null>;
}

/**
 * `sslkit serve ARGS` as a child process on a free port: resolves once it listens; rejects if it
 * exits first, with its output and exit code on the error.
 */
export function serveProcess(args: string[]): Promise<ServeProcess> {
  const bin = path.resolve(import.meta.dirname, '../bin/sslkit.js');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, 'serve', ...args, '--port', '0', '--device', 'cpu']);
    let out = '';
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    child.stderr.on('data', (d) => (out += d));
    child.stdout.on('data', (d) => {
      out += d;
      const m = /sslkit serve: (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve({ url: m[1], child, output: () => out, exited });
    });
    void exited.then((c) => reject(Object.assign(new Error(`sslkit serve exited ${c}: ${out}`), { output: out, code: c })));
  });
}
