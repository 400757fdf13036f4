/**
 * The encoder in the browser with onnxruntime-web: WebGPU when the browser has an adapter,
 * otherwise WebAssembly with SIMD, multi-threaded when the page is cross-origin isolated (the
 * server sends COOP/COEP). Output handling follows the gallery manifest: [N, D], [N, D, 1, 1] or
 * tokens [N, T, D] pooled by CLS or mean, and a fixed batch padded with zeros.
 */
import type * as Ort from 'onnxruntime-web/webgpu';
import type { GalleryManifest, Progress } from './types';
import { fetchAll } from '../../web/fetch.js';
import { embedInBatches } from '../../web/output.js';
import wasmRuntimeUrl from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url';
import webgpuRuntimeUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';

declare const __RUNTIME_BYTES__: { wasm: number; webgpu: number };

export interface Backend {
  name: 'webgpu' | 'wasm';
  threads: number;
  isolated: boolean;
  /** The WebAssembly binary loaded (the service worker keeps it for offline use). */
  runtime: string;
}

/** onnxruntime-web's two WebAssembly builds: URLs emitted by the build, sizes measured by it (vite.config.ts). */
const RUNTIMES = {
  wasm: { url: wasmRuntimeUrl, bytes: __RUNTIME_BYTES__.wasm },
  webgpu: { url: webgpuRuntimeUrl, bytes: __RUNTIME_BYTES__.webgpu },
};

export interface LoadOptions {
  backend?: 'auto' | 'wasm' | 'webgpu';
  threads?: number;
  onProgress?: Progress;
}

export class BrowserEncoder {
  private constructor(
    private readonly session: Ort.InferenceSession,
    private readonly ort: typeof Ort,
    readonly backend: Backend,
    private readonly m: GalleryManifest['model'],
  ) {}

  static async load(url: string, m: GalleryManifest['model'], o: LoadOptions = {}): Promise<BrowserEncoder> {
    const isolated = globalThis.crossOriginIsolated === true;
    const threads = isolated ? Math.max(1, o.threads ?? Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
    const want = o.backend ?? 'auto';
    let gpu = false;
    if (want !== 'wasm') {
      const api = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
      gpu = !!(api && (await api.requestAdapter().catch(() => null)));
      if (!gpu && want === 'webgpu') console.warn('no WebGPU adapter in this browser; using WebAssembly');
    }
    // Only the runtime this browser will use is downloaded: the WebGPU build's WebAssembly is
    // twice the plain one's. Each comes in a chunk of its own (its worker threads load the module
    // they came from, which must not be the page's script), and its binary is fetched here, beside
    // the model, so that the progress bar counts both.
    const runtime = gpu ? RUNTIMES.webgpu : RUNTIMES.wasm;
    const [ort, bytes, wasm] = await Promise.all([
      gpu ? import('onnxruntime-web/webgpu') : (import('onnxruntime-web/wasm') as Promise<typeof Ort>),
      ...fetchAll(
        [
          { url, what: 'model', bytes: m.bytes },
          { url: runtime.url, what: 'WebAssembly runtime', bytes: runtime.bytes },
        ],
        o.onProgress,
      ),
    ]);
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.wasmBinary = wasm;
    if (gpu) {
      try {
        const s = await ort.InferenceSession.create(bytes, { executionProviders: ['webgpu'] });
        return new BrowserEncoder(s, ort, { name: 'webgpu', threads, isolated, runtime: runtime.url }, m);
      } catch (e) {
        console.warn(`WebGPU session failed (${(e as Error).message}); using WebAssembly`);
      }
    }
    let s: Ort.InferenceSession;
    try {
      s = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    } catch (e) {
      throw new Error(`model: onnxruntime-web could not load ${url} (${(e as Error).message})`, { cause: e });
    }
    return new BrowserEncoder(s, ort, { name: 'wasm', threads, isolated, runtime: runtime.url }, m);
  }

  /** The CLS token's last-block self-attention of the last image embedded, for ViT models that export it. */
  lastAttention: { heads: number; patches: number; data: Float32Array } | null = null;

  get hasAttention(): boolean {
    return this.session.outputNames.includes('attention');
  }

  /** Embeds n preprocessed images (n × C × H × W); returns n rows of the model's own size, not normalised. */
  embed(input: Float32Array, n: number): Promise<Float32Array> {
    const p = this.m.preprocessing;
    return embedInBatches(input, n, this.m, async (x, batch, count) => {
      const result = await this.session.run({ [this.m.input]: new this.ort.Tensor('float32', x, [batch, p.channels, p.height, p.width]) });
      const att = result.attention;
      if (att) {
        // The last real image's CLS attention (the page embeds one query at a time).
        const [, heads, patches] = att.dims;
        const per = heads * patches;
        this.lastAttention = { heads, patches, data: (att.data as Float32Array).slice((count - 1) * per, count * per) };
        att.dispose();
      }
      const y = result[this.m.output];
      return { data: y.data as Float32Array, dims: y.dims, dispose: () => y.dispose() };
    });
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
