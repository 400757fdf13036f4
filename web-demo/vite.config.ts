/**
 * Builds the web demo into web-demo/dist with relative paths (base './'), so the same files work
 * from `sslkit serve` at / and from any static host. onnxruntime-web's WebAssembly binary is
 * emitted as an asset next to the bundle (nothing is fetched from a CDN).
 */
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: './',
  logLevel: 'warn',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 2000 },
});
