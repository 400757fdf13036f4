/**
 * Builds the web demo into web-demo/dist with relative paths (base './'), so the same files work
 * from `sslkit serve` at / and from any static host. onnxruntime-web's WebAssembly binary is
 * emitted as an asset next to the bundle (nothing is fetched from a CDN). `precache.json` lists
 * the built files and a version derived from their hashed names: the service worker caches them
 * at install under that version, so the page works offline after its first load. Every hashed
 * asset also gets a brotli and a gzip copy beside it (the 27 MB WebAssembly runtime is 4.9 MB as
 * brotli), which `sslkit serve` sends to browsers that accept them and static hosts can use too.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';

const precompress: Plugin = {
  name: 'sslkit-precompress',
  apply: 'build',
  closeBundle() {
    const dir = path.join(import.meta.dirname, 'dist', 'assets');
    for (const f of fs.readdirSync(dir)) {
      if (!/\.(js|css|wasm)$/.test(f)) continue;
      const bytes = fs.readFileSync(path.join(dir, f));
      // Brotli quality 5: within 6% of quality 9's size at a third of the time.
      const br = zlib.brotliCompressSync(bytes, {
        params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
      });
      fs.writeFileSync(path.join(dir, `${f}.br`), br);
      fs.writeFileSync(path.join(dir, `${f}.gz`), zlib.gzipSync(bytes, { level: 6 }));
    }
  },
};

const precache: Plugin = {
  name: 'sslkit-precache',
  generateBundle(_options, bundle) {
    const built = Object.keys(bundle).sort();
    const version = createHash('sha256').update(built.join('\n')).digest('hex').slice(0, 12);
    const files = [...new Set(['./', 'index.html', ...built])];
    this.emitFile({ type: 'asset', fileName: 'precache.json', source: JSON.stringify({ version, files }) });
  },
};

// The page reports download progress over decoded bytes; compressed responses do not say how many.
const ortDist = path.join(import.meta.dirname, '..', 'node_modules', 'onnxruntime-web', 'dist');
const runtimeBytes = {
  wasm: fs.statSync(path.join(ortDist, 'ort-wasm-simd-threaded.wasm')).size,
  webgpu: fs.statSync(path.join(ortDist, 'ort-wasm-simd-threaded.asyncify.wasm')).size,
};

export default defineConfig({
  root: import.meta.dirname,
  base: './',
  logLevel: 'warn',
  define: { __RUNTIME_BYTES__: JSON.stringify(runtimeBytes) },
  plugins: [precache, precompress],
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 2000 },
});
