/**
 * Request bodies, bounded before any costly work: JSON only under `application/json` (any other
 * type is a 415), scanned for nesting depth and value count before `JSON.parse` (a 10 MB body of
 * nested arrays would otherwise block the event loop for seconds); multipart read whole under the
 * body limit (chunked or not), then split by busboy with at most `maxFiles` files.
 */
import busboy from 'busboy';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { ApiError } from './errors.js';

/** Deeper JSON than any request of this API needs. */
export const MAX_JSON_DEPTH = 16;
/** More values than any request needs: 256 items × a 2,048-d embedding is 524,288. */
export const MAX_JSON_VALUES = 1_000_000;

/** One linear pass over the raw bytes: nesting depth and the number of values, strings skipped. */
export function checkJsonShape(buf: Buffer): void {
  let depth = 0;
  let values = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_JSON_DEPTH) throw new ApiError(400, 'json_too_deep', `request JSON nests deeper than ${MAX_JSON_DEPTH} levels`);
    } else if (c === 0x5d || c === 0x7d) depth--;
    else if (c === 0x2c && ++values > MAX_JSON_VALUES)
      throw new ApiError(413, 'json_too_large', `request JSON holds more than ${MAX_JSON_VALUES} values`);
  }
}

/** True when the request carries a body (a length above 0, or chunked). */
const hasBody = (req: Request) => req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;

export function unsupportedType(req: Request, accepted: string): ApiError {
  const type = req.headers['content-type'] || 'none';
  return new ApiError(415, 'unsupported_content_type', `content type '${type}' is not ${accepted}`, 'content-type');
}

/** Parses an `application/json` body (shape-checked first); leaves other types alone. */
export const parseJson = (maxBytes: number): RequestHandler =>
  express.json({ limit: maxBytes, verify: (_req, _res, buf) => checkJsonShape(buf) });

/** A JSON route's body parser: 415 for a body of another content type; no body is `{}`. */
export function jsonBody(maxBytes: number): RequestHandler[] {
  return [
    (req, _res, next) => (hasBody(req) && !req.is('application/json') ? next(unsupportedType(req, 'application/json')) : next()),
    parseJson(maxBytes),
  ];
}

export interface UploadedFile {
  field: string;
  filename?: string;
  mimeType: string;
  buffer: Buffer;
}

/**
 * multipart/form-data into `req.files` (UploadedFile[]) and `req.body` (text fields): the whole
 * body first under `maxBytes` (so the sum of all parts is bounded, not each part), then busboy.
 */
export function multipartBody(o: { maxBytes: number; maxFiles: number }): RequestHandler[] {
  const raw = express.raw({ type: 'multipart/form-data', limit: o.maxBytes });
  return [
    raw,
    (req: Request, _res: Response, next: NextFunction) => {
      if (!req.is('multipart/form-data') || !Buffer.isBuffer(req.body)) return next();
      const body = req.body;
      const files: UploadedFile[] = [];
      const fields: Record<string, string> = {};
      let failed = false;
      const fail = (e: ApiError) => {
        if (!failed) next(e);
        failed = true;
      };
      let bb: busboy.Busboy;
      try {
        bb = busboy({ headers: req.headers, limits: { files: o.maxFiles, fields: 32, fieldSize: 4096, parts: o.maxFiles + 32 } });
      } catch (e) {
        return next(new ApiError(400, 'invalid_multipart', `multipart body: ${(e as Error).message}`, 'content-type'));
      }
      bb.on('file', (field, stream, info) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => files.push({ field, filename: info.filename, mimeType: info.mimeType, buffer: Buffer.concat(chunks) }));
      });
      bb.on('field', (name, value) => (fields[name] = value));
      bb.on('filesLimit', () => fail(new ApiError(413, 'too_many_images', `at most ${o.maxFiles} images per request`, 'file')));
      bb.on('partsLimit', () => fail(new ApiError(413, 'too_many_parts', 'too many parts in the multipart body', 'file')));
      bb.on('fieldsLimit', () => fail(new ApiError(413, 'too_many_parts', 'too many fields in the multipart body', 'file')));
      bb.on('error', (e: Error) => fail(new ApiError(400, 'invalid_multipart', `multipart body: ${e.message}`, 'body')));
      bb.on('close', () => {
        if (failed) return;
        failed = true;
        req.body = fields;
        (req as Request & { files: UploadedFile[] }).files = files;
        next();
      });
      bb.end(body);
    },
  ];
}
