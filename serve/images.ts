/**
 * Request images to model input. Accepts base64, a data URL or raw bytes (JPEG, PNG, WebP);
 * checks the pixel count from the header before decoding (a decompression bomb is refused
 * unopened); decodes with sharp, resizes to cover the model's size and centre-crops, matches its
 * channels and normalises with its preprocessing.
 */
import sharp from 'sharp';

// Many small images: libvips' operation cache only costs memory here.
sharp.cache(false);
import type { Preprocessing } from '../export/onnx-encoder.js';
import { ApiError } from './errors.js';

const DATA_URL = /^data:image\/(png|jpeg|jpg|webp);base64,/i;
const BASE64 = /^[A-Za-z0-9+/\r\n]+={0,2}$/;

export function bytesFromString(s: string, field: string): Buffer {
  const body = s.replace(DATA_URL, '');
  if (s.startsWith('data:') && body === s)
    throw new ApiError(400, 'unsupported_image_type', 'data URL must be image/png, image/jpeg or image/webp with base64 data', field);
  if (/^https?:\/\//i.test(s))
    throw new ApiError(400, 'urls_not_allowed', 'image URLs are not fetched; send the image bytes as base64 or a data URL', field);
  if (body.length === 0 || !BASE64.test(body)) throw new ApiError(400, 'invalid_base64', 'image is not valid base64', field);
  return Buffer.from(body, 'base64');
}

/** sharp's decode failures as API errors: a cut-off or damaged file, or not an image at all. */
function decodeError(e: unknown, field: string): ApiError {
  const msg = (e as Error).message;
  if (/truncat|premature|corrupt|unexpected end/i.test(msg))
    return new ApiError(400, 'truncated_image', 'image data is truncated or corrupt', field);
  return new ApiError(400, 'not_an_image', 'not a JPEG, PNG or WebP image', field);
}

/** The image type from its magic bytes: only these three reach the decoder. */
function sniff(b: Buffer): 'jpeg' | 'png' | 'webp' | null {
  if (b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length > 8 && b.readUInt32BE(0) === 0x89504e47) return 'png';
  if (b.length > 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  return null;
}

export async function imageToInput(bytes: Buffer, p: Preprocessing, maxPixels: number, field: string): Promise<Float32Array> {
  if (!sniff(bytes)) {
    const looksLikeImage = /^(GIF8|II\*|MM\*|<svg|<\?xml|BM)/.test(bytes.toString('latin1', 0, 5));
    throw looksLikeImage
      ? new ApiError(400, 'unsupported_image_type', 'only JPEG, PNG and WebP images are accepted', field)
      : new ApiError(400, 'not_an_image', 'not a JPEG, PNG or WebP image', field);
  }
  // One sharp pipeline per image: limitInputPixels is checked from the header before any pixel
  // is decoded, so a decompression bomb costs nothing (a second metadata pass doubled the cost).
  let raw: Buffer;
  try {
    let img = sharp(bytes, { failOn: 'truncated', limitInputPixels: maxPixels })
      .resize(p.width, p.height, { fit: 'cover', position: 'centre' })
      .removeAlpha();
    img = p.channels === 1 ? img.greyscale() : img.toColourspace('srgb');
    raw = await img.raw().toBuffer();
  } catch (e) {
    const msg = (e as Error).message;
    if (/pixel limit/i.test(msg))
      throw new ApiError(400, 'too_many_pixels', `image has more than ${maxPixels} pixels (width × height)`, field);
    if (/unsupported image format/i.test(msg)) throw new ApiError(400, 'not_an_image', 'not a JPEG, PNG or WebP image', field);
    throw decodeError(e, field);
  }
  const hw = p.width * p.height;
  const c = p.channels;
  const out = new Float32Array(c * hw);
  for (let q = 0; q < hw; q++)
    for (let k = 0; k < c; k++) out[k * hw + q] = (raw[q * c + k] * p.pixelScale - p.mean[k % p.mean.length]) / p.std[k % p.std.length];
  return out;
}
