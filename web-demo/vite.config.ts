/**
 * Builds the web demo into web-demo/dist with relative paths (base './'), so the same files work
 * from `sslkit serve` at / and from any static host. onnxruntime-web's WebAssembly binary is
 * emitted as an asset next to the bundle (nothing is fetched from a CDN). `precache.json` lists
 * the built files and a version derived from their hashed names: the service worker caches them
 * at install under that version, so the page works offline after its first load.
 */
import { createHash } from 'node:crypto';
import { defineConfig, type Plugin } from 'vite';

const precache: Plugin = {
  name: 'sslkit-precache',
  generateBundle(_options, bundle) {
    const built = Object.keys(bundle).sort();
    const version = createHash('sha256').update(built.join('\n')).digest('hex').slice(0, 12);
    const files = [...new Set(['./', 'index.html', ...built])];
    this.emitFile({ type: 'asset', fileName: 'precache.json', source: JSON.stringify({ version, files }) });
  },
};

export default defineConfig({
  root: import.meta.dirname,
  base: './',
  logLevel: 'warn',
  plugins: [precache],
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 2000 },
});
