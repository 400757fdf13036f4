/**
 * An image encoder in the browser on onnxruntime-web, with the model's own preprocessing: what the
 * page does to embed a picture, for any web app. The model's facts (input and output names, output
 * layout, pooling, preprocessing) come from its gallery's manifest (`sslkit index --gallery`), or
 * from the caller.
 */
import * as ort from 'onnxruntime-web';
import type { GalleryManifest } from './types.js';
import { normalizeRows } from './types.js';
import { decodeImage, toInput, toPixels } from './preprocess.js';
import { backgroundOf } from './types.js';
import { embedInBatches } from './output.js';

/** How to run a model: the `model` part of a gallery manifest. */
export type ModelInfo = Pick<GalleryManifest['model'], 'input' | 'output' | 'fixedBatch' | 'outputKind' | 'pooling' | 'preprocessing'>;

/** Anything the browser can draw: a file or Blob, a decoded bitmap, an <img>, a canvas, pixels. */
export type ImageSource = Blob | ImageBitmap | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas | ImageData;

export class WebEncoder {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly info: ModelInfo,
  ) {}

  /** Loads a model (its URL or bytes) on WebAssembly (the default) or the providers given. */
  static async load(model: string | Uint8Array, info: ModelInfo, o: { executionProviders?: string[] } = {}): Promise<WebEncoder> {
    try {
      const session =
        typeof model === 'string'
          ? await ort.InferenceSession.create(model, { executionProviders: o.executionProviders ?? ['wasm'] })
          : await ort.InferenceSession.create(model, { executionProviders: o.executionProviders ?? ['wasm'] });
      return new WebEncoder(session, info);
    } catch (e) {
      throw new Error(
        `model: onnxruntime-web could not load ${typeof model === 'string' ? model : 'the model bytes'} (${(e as Error).message})`,
        {
          cause: e,
        },
      );
    }
  }

  /** n preprocessed images (n × C × H × W) to n rows of the model's embedding, not normalised. */
  embedInput(input: Float32Array, n: number): Promise<Float32Array> {
    const p = this.info.preprocessing;
    return embedInBatches(input, n, this.info, async (x, batch) => {
      const out = await this.session.run({ [this.info.input]: new ort.Tensor('float32', x, [batch, p.channels, p.height, p.width]) });
      const y = out[this.info.output];
      return { data: y.data as Float32Array, dims: y.dims, dispose: () => y.dispose() };
    });
  }

  /**
   * One image's unit embedding, preprocessed as the service does it: EXIF orientation, cover-resize
   * and centre crop (or stretch), transparency on the model's background, the model's normalisation.
   */
  async embed(image: ImageSource): Promise<Float32Array> {
    const p = this.info.preprocessing;
    const source = image instanceof Blob ? await decodeImage(image) : image;
    const pixels =
      source instanceof ImageData && source.width === p.width && source.height === p.height
        ? source
        : toPixels(source instanceof ImageData ? await createImageBitmap(source) : source, p.width, p.height, p.resize, backgroundOf(p))
            .pixels;
    const raw = await this.embedInput(toInput(pixels, p), 1);
    return normalizeRows(raw, raw.length);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
