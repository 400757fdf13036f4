/**
 * The main job from a real process, as on a fresh machine: an empty HOME, cache and data folder,
 * and Debian's data sets out of sight (SSLKIT_NO_SYSTEM_DATA), so only what ships with sslkit is
 * there (CI runs this in a fresh clone). `sslkit quickstart --tiny` trains, exports, indexes and
 * serves; the service then answers /v1/search correctly; SIGTERM stops it cleanly; a second run
 * reuses the artefacts.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../../data/datasets.js';
import { tmpDir } from '../helpers.js';

const bin = path.resolve(import.meta.dirname, '../../bin/sslkit.js');

function quickstart(out: string, home: string) {
  const child = spawn(process.execPath, [bin, 'quickstart', '--tiny', '--out', out, '--port', '0'], {
    env: {
      ...process.env,
      HOME: home,
      SSLKIT_CACHE: path.join(home, 'cache'),
      SSLKIT_DATA: path.join(home, 'data'),
      SSLKIT_NO_SYSTEM_DATA: '1',
      XDG_CACHE_HOME: '',
    },
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const url = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      const m = /Serving \d+ Fashion-MNIST test images at (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
      if (m) resolve(m[1]);
    });
    child.on('exit', (c) => reject(new Error(`quickstart exited ${c}: ${stderr.slice(-500)}`)));
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  return { child, url, exited, out: () => stdout, err: () => stderr };
}

describe('sslkit quickstart (reduced budget) with nothing installed but sslkit', () => {
  it('trains, exports, indexes and serves; /v1/search answers with the right neighbour; a rerun reuses everything', async () => {
    const out = path.join(tmpDir(), 'qs');
    const home = tmpDir('sslkit-qs-home-');
    const q = quickstart(out, home);
    const url = await q.url;
    for (const f of ['config.json', 'metrics.jsonl', 'checkpoint.ckpt', 'model.onnx', 'gallery.idx', 'gallery/manifest.json'])
      expect(fs.existsSync(path.join(out, f)), f).toBe(true);
    expect(q.out()).toMatch(/trained on 512 fashion-mnist-small images/);
    expect(q.out()).toMatch(/--tiny is a smoke test of the pipeline \(8 steps\): it measures no accuracy/);
    expect(q.out()).not.toMatch(/kNN/);
    expect(q.err()).not.toMatch(/Vulkan|fetching/);
    // Test image 7 of the shipped set is in the gallery: searching with it finds it first, with its label.
    const test = await loadDataset('fashion-mnist-small', 'test');
    expect(test.n).toBe(2000);
    const png = await sharp(Buffer.from(test.pixels.subarray(7 * 784, 8 * 784)), { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toBuffer();
    const r = await fetch(`${url}/v1/search`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: png.toString('base64'), k: 5 }),
    });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { data: { id: string; score: number; metadata: { label: string } }[] };
    expect(body.data).toHaveLength(5);
    expect(body.data[0].id).toBe('7');
    expect(body.data[0].score).toBeCloseTo(1, 4);
    expect(body.data[0].metadata.label).toBe(test.classes[test.labels![7]]);
    // The in-browser demo: the page (cross-origin isolated for threads), the model and the gallery.
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect(await page.text()).toContain('<title>sslkit: image retrieval in your browser</title>');
    const manifest = (await (await fetch(`${url}/demo/gallery/manifest.json`)).json()) as { count: number; ids: string[] };
    expect(manifest.count).toBe(2000);
    expect((await fetch(`${url}/demo/model.onnx`)).headers.get('content-length')).toBe(
      String(fs.statSync(path.join(out, 'model.onnx')).size),
    );
    q.child.kill('SIGTERM');
    expect(await q.exited).toBe(0);
    // Again: nothing retrained, exported or indexed.
    const mtimes = ['model.onnx', 'gallery.idx'].map((f) => fs.statSync(path.join(out, f)).mtimeMs);
    const again = quickstart(out, home);
    await again.url;
    expect(again.err()).toMatch(/reusing the finished run/);
    expect(['model.onnx', 'gallery.idx'].map((f) => fs.statSync(path.join(out, f)).mtimeMs)).toEqual(mtimes);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });
});
