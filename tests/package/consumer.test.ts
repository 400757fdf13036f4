/**
 * sslkit as a consumer gets it (issue 34): `npm pack` (which builds dist/), the tarball installed
 * offline from the npm cache into a new empty project, then used as its README says:
 * (a) a plain .mjs script embeds images with a model and ranks them, equal to the checkout's
 *     own OnnxEncoder; (b) a .ts file type-checks against the shipped declarations; (c) the
 *     installed `sslkit` command runs compiled code: --help, a tiny train and export; (d) a
 *     Vite bundle of `sslkit/web` embeds an image in Chromium, equal to Node within 1e-4.
 * The tarball holds compiled code, declarations, the built page and the embedded data set only.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import express from 'express';
import sharp from 'sharp';
import { chromium } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { OnnxEncoder } from '../../core/runtime/onnx-encoder.js';
import { imageToInput } from '../../serve/images.js';
import { buildIndex } from '../../serve/build-index.js';
import { normalizeRows } from '../../core/vectors.js';
import { isolatedCache, tmpDir } from '../helpers.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FOREIGN = path.join(ROOT, 'tests/fixtures/foreign/tiny-cnn.onnx');
const CHROMIUM = '/usr/bin/chromium';
const PRE = { channels: 3, height: 32, width: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };

/**
 * A lock file for a project whose one dependency is the tarball: the tarball's entry, and every
 * package the checkout's lock installs for production at the same place. `npm ci --offline` then
 * takes each from the npm cache that installing the checkout filled.
 */
function consumerLock(tarball: string): object {
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  const root = lock.packages[''];
  const integrity = `sha512-${crypto.createHash('sha512').update(fs.readFileSync(tarball)).digest('base64')}`;
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', dependencies: { sslkit: `file:${tarball}` } },
    'node_modules/sslkit': {
      version: root.version,
      resolved: `file:${tarball}`,
      integrity,
      dependencies: root.dependencies,
      bin: root.bin,
    },
  };
  for (const [k, v] of Object.entries(lock.packages as Record<string, { dev?: boolean }>)) if (k && !v.dev) packages[k] = v;
  return { name: 'consumer', lockfileVersion: 3, requires: true, packages };
}

describe('the packed package in a new project', () => {
  let project: string;
  let tarball: string;
  const run = (cmd: string, args: string[], cwd = project) =>
    spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, SSLKIT_CACHE: path.join(project, '.cache') } });

  beforeAll(() => {
    isolatedCache();
    const out = tmpDir('sslkit-pack-');
    // --ignore-scripts=false: the checkout's .npmrc turns scripts off for installs, and prepack builds dist/.
    const packed = spawnSync('npm', ['pack', '--ignore-scripts=false', '--pack-destination', out, '--json'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(packed.status, packed.stderr).toBe(0);
    tarball = path.join(out, JSON.parse(packed.stdout)[0].filename);
    project = tmpDir('sslkit-consumer-');
    fs.writeFileSync(
      path.join(project, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies: { sslkit: `file:${tarball}` } }),
    );
    fs.writeFileSync(path.join(project, 'package-lock.json'), JSON.stringify(consumerLock(tarball)));
    const installed = run('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--ignore-scripts']);
    expect(installed.status, installed.stderr).toBe(0);
  }, 300_000);

  it('ships compiled code, declarations and maps, the built page and the embedded data set; no sources, tests, runs or caches', () => {
    const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).trim().split('\n');
    expect(files).toContain('package/dist/api/node.js');
    expect(files).toContain('package/dist/api/node.d.ts');
    expect(files).toContain('package/dist/web/index.d.ts');
    expect(files).toContain('package/dist/web-demo/dist/index.html');
    expect(files).toContain('package/dist/core/worker-boot.mjs');
    expect(files.some((f) => f.startsWith('package/dist/datasets/fashion-mnist-small/'))).toBe(true);
    const stray = files.filter(
      (f) =>
        /\/(tests|runs|node_modules|scratch|bench|\.cache)\//.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts')) || f.endsWith('.onnx'),
    );
    expect(stray).toEqual([]);
    expect(fs.statSync(tarball).size).toBeLessThan(50 * 2 ** 20);
  });

  it('(a) a plain .mjs script embeds images with a model and ranks them, as the checkout does', async () => {
    const pics = ['#d04040', '#c84848', '#3050d0'].map((c) => sharp({ create: { width: 40, height: 40, channels: 3, background: c } }));
    const files = await Promise.all(
      pics.map(async (p, i) => {
        const f = path.join(project, `p${i}.png`);
        await p
          .composite([{ input: Buffer.from(`<svg width="40" height="40"><circle cx="${12 + 8 * i}" cy="20" r="9" fill="#fff"/></svg>`) }])
          .png()
          .toFile(f);
        return f;
      }),
    );
    fs.copyFileSync(FOREIGN, path.join(project, 'model.onnx'));
    fs.writeFileSync(
      path.join(project, 'rank.mjs'),
      `import { OnnxEncoder, embedImages } from 'sslkit';
const enc = await OnnxEncoder.load('model.onnx', { preprocessing: ${JSON.stringify(PRE)}, log: () => {} });
const [query, ...others] = await embedImages(enc, ['p0.png', 'p1.png', 'p2.png']);
const scores = others.map((v) => v.reduce((s, x, d) => s + x * query[d], 0));
console.log(JSON.stringify({ dim: enc.dim, scores, query: Array.from(query) }));
await enc.release();
`,
    );
    const r = run(process.execPath, ['rank.mjs']);
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { dim: number; scores: number[]; query: number[] };
    expect(got.dim).toBe(48);
    // The checkout's own encoder on the same file gives the same vector.
    const enc = await OnnxEncoder.load(FOREIGN, { preprocessing: PRE, log: () => {} });
    const want = normalizeRows(await enc.embed(await imageToInput(fs.readFileSync(files[0]), enc.preprocessing, 1e6, 'q'), 1), 48);
    await enc.release();
    got.query.forEach((v, d) => expect(v).toBeCloseTo(want[d], 5));
    expect(got.scores[0]).toBeGreaterThan(got.scores[1]); // the red picture is nearer the red query than the blue one
  });

  it('(b) a TypeScript file type-checks against the shipped declarations', () => {
    fs.writeFileSync(
      path.join(project, 'use.ts'),
      `import { OnnxEncoder, train, exportRun, quantize, buildIndex, startServer, embedImages, type TrainOptions, type Server } from 'sslkit';
import { loadGallery, loadModel, type Neighbour } from 'sslkit/web';
const options: TrainOptions = { method: 'simclr', data: 'folder:./photos', out: 'runs/mine', epochs: 2 };
export async function main(signal: AbortSignal): Promise<number> {
  const r = await train(options, { signal, onProgress: (p) => console.log(p.step, p.loss) });
  const report = await exportRun(r.runDir, { out: 'mine.onnx' });
  await quantize(report.file, 'mine.int8.onnx', { data: 'folder:./photos' });
  await buildIndex('mine.onnx', 'gallery.idx', { data: 'folder:./photos' });
  const s: Server = await startServer({ model: 'mine.onnx', index: 'gallery.idx', port: 0 });
  await s.close();
  const enc = await OnnxEncoder.load('mine.onnx');
  const [v] = await embedImages(enc, ['a.jpg']);
  return v.length + enc.dim;
}
export async function web(file: Blob): Promise<Neighbour[]> {
  const gallery = await loadGallery('/demo/gallery/');
  const model = await loadModel('/demo/model.onnx', gallery);
  return gallery.search(gallery.query(await model.embed(file)), 10);
}
// @ts-expect-error: the options are checked (epochs is a number)
export const wrong: TrainOptions = { method: 'simclr', data: 'x', out: 'y', epochs: 'ten' };
`,
    );
    fs.writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          lib: ['ES2022', 'DOM'],
          types: ['node'],
          typeRoots: [path.join(ROOT, 'node_modules/@types')],
          skipLibCheck: true,
        },
        files: ['use.ts'],
      }),
    );
    const r = run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json']);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('(c) the installed sslkit command runs compiled code: --help, a tiny train and its export', () => {
    const bin = path.join(project, 'node_modules/.bin/sslkit');
    const help = run(bin, ['--help']);
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/Usage: sslkit .*\n[\s\S]*quantize/);
    const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
    expect(run(bin, ['--version']).stdout.trim()).toBe(version);
    // No TypeScript in the installed package: what ran was dist/.
    expect(fs.existsSync(path.join(project, 'node_modules/sslkit/cli/main.ts'))).toBe(false);
    const trained = run(bin, [
      'train',
      '--method',
      'simclr',
      '--data',
      'fashion-mnist-small',
      '--limit',
      '256',
      '--epochs',
      '1',
      '--batch-size',
      '64',
      '--width',
      '0.25',
      '--knn-memory',
      '0',
      '--out',
      'runs/tiny',
    ]);
    expect(trained.status, trained.stderr).toBe(0);
    const exported = run(bin, ['export', 'runs/tiny', '--out', 'tiny.onnx']);
    expect(exported.status, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/wrote .*tiny\.onnx: .*check: max \|onnxruntime − engine\| = /s);
  }, 300_000);

  it.runIf(fs.existsSync(CHROMIUM))(
    '(d) a Vite bundle of sslkit/web embeds an image in Chromium, equal to Node within 1e-4',
    async () => {
      const app = path.join(project, 'web');
      const photos = path.join(project, 'photos');
      fs.mkdirSync(path.join(photos, 'shapes'), { recursive: true });
      for (let i = 0; i < 6; i++)
        await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 40 * i, g: 200 - 30 * i, b: 90 } } })
          .png()
          .toFile(path.join(photos, 'shapes', `${i}.png`));
      const public_ = path.join(app, 'public');
      fs.mkdirSync(public_, { recursive: true });
      fs.copyFileSync(FOREIGN, path.join(public_, 'model.onnx'));
      await buildIndex(FOREIGN, path.join(project, 'g.idx'), {
        data: `folder:${photos}`,
        preprocessing: PRE,
        gallery: path.join(public_, 'gallery'),
        log: () => {},
      });
      const query = path.join(photos, 'shapes', '3.png');
      fs.copyFileSync(query, path.join(public_, 'query.png'));
      fs.writeFileSync(
        path.join(app, 'index.html'),
        '<!doctype html><html><body><script type="module" src="./main.js"></script></body></html>',
      );
      fs.writeFileSync(
        path.join(app, 'main.js'),
        `import { loadGallery, loadModel } from 'sslkit/web';
try {
  const gallery = await loadGallery(new URL('gallery/', location.href).href);
  const model = await loadModel(new URL('model.onnx', location.href).href, gallery);
  const v = await model.embed(await (await fetch('query.png')).blob());
  window.result = { embedding: Array.from(v), hits: gallery.search(gallery.query(v), 3) };
} catch (e) {
  window.result = { error: String(e && e.stack || e) };
}
`,
      );
      const { build } = await import('vite');
      await build({ root: app, logLevel: 'warn', build: { outDir: path.join(app, 'dist'), target: 'es2022' }, configFile: false });
      const host = http.createServer(express().use(express.static(path.join(app, 'dist')))).listen(0, '127.0.0.1');
      await new Promise((r) => host.once('listening', r));
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
      try {
        const page = await browser.newPage();
        await page.goto(`http://127.0.0.1:${(host.address() as { port: number }).port}/index.html`);
        await page.waitForFunction(() => (window as any).result !== undefined, undefined, { timeout: 60_000 });
        const result = await page.evaluate(() => (window as any).result);
        expect(result.error).toBeUndefined();
        const enc = await OnnxEncoder.load(FOREIGN, { preprocessing: PRE, log: () => {} });
        const want = normalizeRows(await enc.embed(await imageToInput(fs.readFileSync(query), enc.preprocessing, 1e6, 'q'), 1), 48);
        await enc.release();
        (result.embedding as number[]).forEach((v, d) => expect(Math.abs(v - want[d])).toBeLessThan(1e-4));
        expect(result.hits[0]).toMatchObject({ score: expect.closeTo(1, 4) });
      } finally {
        await browser.close();
        host.close();
      }
    },
    180_000,
  );
});
