/**
 * Request images to model input. Accepts base64, a data URL or raw bytes (JPEG, PNG, WebP);
 * checks the pixel count from the header before decoding (a decompression bomb is refused
 * unopened); decodes with sharp, resizes to cover the model's size and centre-crops, matches its
 * channels and normalises with its preprocessing.
 */
import sharp, { type Metadata } from 'sharp';
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

export async function imageToInput(bytes: Buffer, p: Preprocessing, maxPixels: number, field: string): Promise<Float32Array> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes).metadata();
  } catch (e) {
    throw decodeError(e, field);
  }
  if (!meta.format || !['jpeg', 'png', 'webp'].includes(meta.format))
    throw new ApiError(400, 'unsupported_image_type', `image format ${meta.format ?? 'unknown'} is not JPEG, PNG or WebP`, field);
  const pixels = (meta.width ?? 0) * (meta.height ?? 0);
  if (pixels > maxPixels)
    throw new ApiError(
      400,
      'too_many_pixels',
      `image is ${meta.width}×${meta.height} = ${pixels} pixels; the limit is ${maxPixels}`,
      field,
    );
  let raw: Buffer;
  try {
    let img = sharp(bytes, { failOn: 'truncated', limitInputPixels: maxPixels })
      .resize(p.width, p.height, { fit: 'cover', position: 'centre' })
      .removeAlpha();
    img = p.channels === 1 ? img.greyscale() : img.toColourspace('srgb');
    raw = await img.raw().toBuffer();
  } catch (e) {
    throw decodeError(e, field);
  }
  const hw = p.width * p.height;
  const c = p.channels;
  const out = new Float32Array(c * hw);
  for (let q = 0; q < hw; q++)
    for (let k = 0; k < c; k++) out[k * hw + q] = (raw[q * c + k] * p.pixelScale - p.mean[k % p.mean.length]) / p.std[k % p.std.length];
  return out;
}
