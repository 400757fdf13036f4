/**
 * `import … from 'sslkit/web'`: the page's retrieval as a library for any web app (no Node modules).
 *
 * ```ts
 * import { loadGallery, loadModel } from 'sslkit/web';
 * const gallery = await loadGallery('/demo/gallery/');
 * const model = await loadModel('/demo/model.onnx', gallery);
 * const q = gallery.query(await model.embed(file));        // a File, <img>, canvas or bitmap
 * const hits = gallery.search(q, 10);                       // [{ id, score, label }, …]
 * const { cluster } = gallery.assign(q);
 * ```
 */
import { Gallery } from './gallery.js';
import { WebEncoder, type ModelInfo } from './encoder.js';
import type { Progress } from './types.js';

export { Gallery, queryVector, type Neighbour } from './gallery.js';
export { WebEncoder, type ModelInfo, type ImageSource } from './encoder.js';
export { pooledRows } from './output.js';
export { decodeImage, toInput, toPixels } from './preprocess.js';
export type { GalleryManifest, Preprocessing, Progress } from './types.js';

/** A gallery written by `sslkit index --gallery DIR`, from the URL of that folder. */
export function loadGallery(url: string, onProgress?: Progress): Promise<Gallery> {
  return Gallery.load(url.endsWith('/') ? url : `${url}/`, onProgress);
}

/** A model from its URL (or bytes), run as its gallery (or the info given) says. */
export function loadModel(
  model: string | Uint8Array,
  how: Gallery | ModelInfo,
  o: { executionProviders?: string[] } = {},
): Promise<WebEncoder> {
  return WebEncoder.load(model, how instanceof Gallery ? how.manifest.model : how, o);
}
