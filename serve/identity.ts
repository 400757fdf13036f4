/**
 * An index's identity: the model and preprocessing its vectors came from. A service whose model
 * or preprocessing differs is refused at start (its embeddings would not be comparable), for the
 * file store and PostgreSQL alike.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Preprocessing } from '../core/runtime/onnx-encoder.js';
import { backgroundOf } from '../core/gallery-format.js';
import { UserError } from '../core/errors.js';
import { fileSha256 } from '../core/fs.js';
import type { IndexData } from './index-file.js';

/** The SHA-256 of the model file: the same weights and graph, byte for byte. */
export const modelSha256 = fileSha256;

export function modelIdentity(
  file: string,
  enc: { dim: number; info: { metadata: Record<string, string> }; preprocessing: Preprocessing },
): IndexData['model'] {
  return {
    file: path.resolve(file),
    bytes: fs.statSync(file).size,
    sha256: modelSha256(file),
    embeddingDim: enc.dim,
    metadata: enc.info.metadata,
    preprocessing: enc.preprocessing,
  };
}

/** What decides the model's input from an image, as comparable text. */
export const preprocessingKey = (p: Preprocessing) =>
  JSON.stringify({
    channels: p.channels,
    height: p.height,
    width: p.width,
    pixel_scale: p.pixelScale,
    mean: p.mean,
    std: p.std,
    // Indexes from before the policy was kept were all made by cover-center-crop.
    resize: p.resize ?? 'cover-center-crop',
    // Indexes from before it was kept composited transparency on white (or dropped alpha).
    background: backgroundOf(p),
  });

/** True when one model is the other's int8 quantization (sslkit quantize records the float model's SHA-256). */
function requantized(a: IndexData['model'], b: IndexData['model']): boolean {
  return (!!a.sha256 && b.metadata?.quantized_from === a.sha256) || (!!b.sha256 && a.metadata?.quantized_from === b.sha256);
}

/**
 * Throws a UserError unless an index made with `indexed` can be served by `served`. An index of a
 * float model served by its int8 quantization (or the other way round) is refused unless
 * `allowRequantized`: the vectors are close but not equal, so scores and neighbours shift a little.
 */
export function checkIdentity(
  location: string,
  dim: number,
  indexed: IndexData['model'],
  served: IndexData['model'],
  o: { allowRequantized?: boolean; log?: (line: string) => void } = {},
): void {
  if (dim !== served.embeddingDim)
    throw new UserError(`${location} holds ${dim}-d vectors, ${served.file} gives ${served.embeddingDim}-d embeddings`);
  // Indexes from before the fingerprint was kept are checked by dimension and preprocessing only.
  if (indexed.sha256 && served.sha256 && indexed.sha256 !== served.sha256) {
    if (!requantized(indexed, served))
      throw new UserError(
        `${location} was built with another model (${indexed.file}, sha256 ${indexed.sha256.slice(0, 12)}…) than ${served.file} ` +
          `(sha256 ${served.sha256.slice(0, 12)}…): its vectors are not comparable; index again with this model`,
      );
    const which =
      served.metadata?.quantized_from === indexed.sha256 ? 'the int8 quantization of the model' : 'the float model of the int8 model';
    if (!o.allowRequantized)
      throw new UserError(
        `${location} was built with ${indexed.file}, and ${served.file} is ${which} it was built with: their vectors differ slightly ` +
          `(see the int8 model's int8_check metadata), so scores and neighbours would shift. Index again with ${served.file}, or pass --allow-requantized to serve it anyway`,
      );
    o.log?.(`${location}: serving vectors of ${indexed.file} with ${which} (--allow-requantized): scores may differ slightly`);
  }
  if (indexed.preprocessing && served.preprocessing && preprocessingKey(indexed.preprocessing) !== preprocessingKey(served.preprocessing))
    throw new UserError(
      `${location} was built with preprocessing ${preprocessingKey(indexed.preprocessing)}, the server would use ${preprocessingKey(served.preprocessing)}; ` +
        `pass the same --preprocessing as to sslkit index`,
    );
}
