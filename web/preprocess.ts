/**
 * An image to the model's input tensor, the way the service does it (serve/images.ts with sharp):
 * cover-resize and centre-crop to the model's size, composite transparency on the model's background
 * colour, greyscale for 1-channel models,
 * then (pixel · scale − mean) / std, channels first. Images already at the model's size are read
 * pixel-exact (no resampling, no colour conversion), which is what makes the browser's embedding
 * match onnxruntime-node's.
 */
import { DEFAULT_BACKGROUND, interleavedToInput, type Preprocessing } from './types.js';

export async function decodeImage(blob: Blob): Promise<ImageBitmap> {
  try {
    // Upright by the EXIF orientation (a camera's portrait photo), as the service decodes it.
    return await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'from-image' });
  } catch {
    throw new Error(`could not read this file as an image (${blob.type || 'unknown type'}, ${blob.size} bytes): use a JPEG, PNG or WebP`);
  }
}

/**
 * RGBA pixels of the source resized to w × h (cover and centre crop, or stretched: the model's
 * policy), transparent pixels composited on `background` (RGB 0-255) as the service does;
 * `transparent` says whether there were any.
 */
export function toPixels(
  src: CanvasImageSource & { width: number; height: number },
  w: number,
  h: number,
  resize = 'cover-center-crop',
  background = DEFAULT_BACKGROUND,
): { pixels: ImageData; transparent: boolean } {
  const canvas = new OffscreenCanvas(w, h);
  const g = canvas.getContext('2d', { willReadFrequently: true })!;
  const scale = Math.max(w / src.width, h / src.height);
  const sw = resize === 'stretch' ? src.width : w / scale;
  const sh = resize === 'stretch' ? src.height : h / scale;
  g.imageSmoothingQuality = 'high';
  g.drawImage(src, (src.width - sw) / 2, (src.height - sh) / 2, sw, sh, 0, 0, w, h);
  const pixels = g.getImageData(0, 0, w, h);
  let transparent = false;
  for (let q = 3; q < pixels.data.length && !transparent; q += 4) transparent = pixels.data[q] < 255;
  // An opaque image keeps its pixels exactly; only a transparent one is composited.
  if (!transparent) return { pixels, transparent };
  g.globalCompositeOperation = 'destination-over';
  g.fillStyle = `rgb(${background.join(', ')})`;
  g.fillRect(0, 0, w, h);
  return { pixels: g.getImageData(0, 0, w, h), transparent };
}

const toLinear = (v: number) => (v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
const toSrgb = (v: number) => (v <= 0.0031308 ? v * 12.92 : 1.055 * v ** (1 / 2.4) - 0.055);

/** Luminance like libvips' sRGB → B_W: linear light, Rec. 709 weights, back to sRGB. */
function grey(r: number, g: number, b: number): number {
  if (r === g && g === b) return r;
  const y = 0.2126 * toLinear(r / 255) + 0.7152 * toLinear(g / 255) + 0.0722 * toLinear(b / 255);
  return Math.round(255 * toSrgb(y));
}

export function toInput(img: ImageData, p: Preprocessing): Float32Array {
  if (p.channels !== 1) return interleavedToInput(img.data, 4, p);
  const d = img.data;
  const greys = Uint8Array.from({ length: p.width * p.height }, (_, q) => grey(d[4 * q], d[4 * q + 1], d[4 * q + 2]));
  return interleavedToInput(greys, 1, p);
}
