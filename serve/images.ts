/**
 * Request images to model input. Accepts base64, a data URL or raw bytes (JPEG, PNG, WebP);
 * checks the pixel count from the header before decoding (a decompression bomb is refused
 * unopened); decodes with sharp, resizes to cover the model's size and centre-crops, matches its
 * channels and normalises with its preprocessing. Transparent pixels are composited on the model's
 * background colour (preprocessing.background), as the page does.
 * An 8-bit PNG already at the model's size needs no resize: fast-png decodes it in-process, 4-6×
 * cheaper than a libvips pipeline for such small images (bench/serve), with the same pixels.
 */
import sharp from 'sharp';
import { decode as decodePng } from 'fast-png';

// Many small images: libvips' operation cache only costs memory here.
sharp.cache(false);
import { backgroundOf, interleavedToInput, type Preprocessing } from '../core/gallery-format.js';
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

/** A PNG ends with its IEND chunk; libpng's error does not say whether the file was cut off. */
const PNG_END = Buffer.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);

/** sharp's decode failures as API errors: a cut-off or damaged file, or not an image at all. */
function decodeError(e: unknown, bytes: Buffer, field: string): ApiError {
  const msg = (e as Error).message;
  const cutPng = sniff(bytes) === 'png' && !bytes.subarray(-PNG_END.length).equals(PNG_END);
  if (cutPng || /truncat|premature|corrupt|unexpected end/i.test(msg))
    return new ApiError(400, 'truncated_image', 'image data is truncated or corrupt', field);
  return new ApiError(400, 'not_an_image', 'not a JPEG, PNG or WebP image', field);
}

/** An image whose header is fine but whose shape libvips cannot resize to the model's (a 1 × 39,000,000 strip). */
async function sizeError(bytes: Buffer, p: Preprocessing, field: string, cause: unknown): Promise<ApiError> {
  const m = await sharp(bytes)
    .metadata()
    .catch(() => null);
  if (!m?.width || !m.height) return decodeError(cause, bytes, field);
  return new ApiError(
    400,
    'image_too_large',
    `image is ${m.width} × ${m.height} pixels: too long a side or too extreme an aspect ratio to resize to the model's ${p.width} × ${p.height}`,
    field,
  );
}

/** The image type from its magic bytes: only these three reach the decoder. */
function sniff(b: Buffer): 'jpeg' | 'png' | 'webp' | null {
  if (b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length > 8 && b.readUInt32BE(0) === 0x89504e47) return 'png';
  if (b.length > 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  return null;
}

/**
 * The pixels of a non-indexed 8-bit PNG of exactly the model's size with the model's channels
 * (RGB from grey by copying, as libvips does; alpha composited on the background), or null where sharp must do it:
 * another size, palette, 16 bits, an ICC profile, colour to grey (libvips' float32 pipeline is
 * not bit-reproducible here), or anything fast-png rejects.
 */
export function pngAtModelSize(bytes: Buffer, p: Preprocessing, maxPixels: number): Uint8Array | null {
  // IHDR: width and height at bytes 16 and 20, then bit depth and colour type (3 = palette).
  if (bytes.length < 33 || bytes.readUInt32BE(16) !== p.width || bytes.readUInt32BE(20) !== p.height) return null;
  if (bytes[24] !== 8 || bytes[25] === 3 || p.width * p.height > maxPixels) return null;
  let png: ReturnType<typeof decodePng>;
  try {
    png = decodePng(bytes);
  } catch {
    return null; // sharp gives the precise error
  }
  const src = png.channels;
  const colour = src >= 3;
  if (png.depth !== 8 || png.palette || png.iccEmbeddedProfile || png.transparency || (colour && p.channels === 1)) return null;
  const hw = p.width * p.height;
  const d = png.data as Uint8Array;
  if (d.length !== hw * src) return null;
  const alpha = src === 2 || src === 4;
  if (src === p.channels && !alpha) return d;
  if (alpha && p.channels !== 3) return null; // a grey model: composite, then grey, as sharp does
  const bg = backgroundOf(p);
  const out = new Uint8Array(hw * p.channels);
  for (let q = 0; q < hw; q++) {
    const a = alpha ? d[q * src + src - 1] : 255;
    for (let k = 0; k < p.channels; k++) {
      const v = d[q * src + (colour ? k : 0)];
      // libvips flattens in float and truncates to 8 bits.
      out[q * p.channels + k] = a === 255 ? v : Math.floor((v * a + bg[k] * (255 - a)) / 255 + 1e-9);
    }
  }
  return out;
}

export async function imageToInput(
  bytes: Buffer,
  p: Preprocessing,
  maxPixels: number,
  field: string,
  o: { inProcessPng?: boolean } = {},
): Promise<Float32Array> {
  // Only these three formats reach a decoder, whichever decodes them.
  const type = sniff(bytes);
  if (!type) {
    const looksLikeImage = /^(GIF8|II\*|MM\*|<svg|<\?xml|BM)/.test(bytes.toString('latin1', 0, 5));
    throw looksLikeImage
      ? new ApiError(400, 'unsupported_image_type', 'only JPEG, PNG and WebP images are accepted', field)
      : new ApiError(400, 'not_an_image', 'not a JPEG, PNG or WebP image', field);
  }
  const fast = o.inProcessPng !== false && type === 'png' ? pngAtModelSize(bytes, p, maxPixels) : null;
  return interleavedToInput(fast ?? (await decodeWithSharp(bytes, p, maxPixels, field)), p.channels, p);
}

/** A JPEG, PNG or WebP through libvips: resized by the model's policy (cover and centre crop, or stretch), the model's channels. */
async function decodeWithSharp(bytes: Buffer, p: Preprocessing, maxPixels: number, field: string): Promise<Uint8Array> {
  // One sharp pipeline per image: limitInputPixels is checked from the header before any pixel
  // is decoded, so a decompression bomb costs nothing (a second metadata pass doubled the cost).
  let raw: Buffer;
  const bg = backgroundOf(p);
  try {
    // rotate(): upright by the EXIF orientation, as every viewer shows a camera's portrait photo.
    let img = sharp(bytes, { failOn: 'truncated', limitInputPixels: maxPixels })
      .rotate()
      .flatten({ background: { r: bg[0], g: bg[1], b: bg[2] } })
      .resize(p.width, p.height, p.resize === 'stretch' ? { fit: 'fill' } : { fit: 'cover', position: 'centre' });
    img = p.channels === 1 ? img.greyscale() : img.toColourspace('srgb');
    raw = await img.raw().toBuffer();
  } catch (e) {
    const msg = (e as Error).message;
    if (/pixel limit/i.test(msg))
      throw new ApiError(400, 'too_many_pixels', `image has more than ${maxPixels} pixels (width × height)`, field);
    if (/unsupported image format/i.test(msg)) throw new ApiError(400, 'not_an_image', 'not a JPEG, PNG or WebP image', field);
    if (/coordinates out of range|too large|exceeds/i.test(msg)) throw await sizeError(bytes, p, field, e);
    throw decodeError(e, bytes, field);
  }
  return raw;
}
