/** One error type with an HTTP status and a stable code; every bad request answers with it as JSON. */
import type { NextFunction, Request, Response } from 'express';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    /** Stable, machine-readable: clients switch on it. */
    readonly code: string,
    message: string,
    /** The request field the error is about, where there is one. */
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** body-parser's, the router's and busboy's errors as API errors: each a 4xx that says what was wrong, else a 500. */
function fromLibraryError(err: unknown): ApiError {
  const x = err as { type?: string; status?: number; expose?: boolean; message?: string };
  switch (x.type) {
    case 'entity.too.large':
      return new ApiError(413, 'body_too_large', 'request body exceeds the size limit');
    case 'entity.parse.failed':
      return new ApiError(400, 'invalid_json', 'request body is not valid JSON');
    case 'encoding.unsupported':
      return new ApiError(415, 'unsupported_content_encoding', `${x.message}; send identity, gzip, deflate or br`, 'content-encoding');
    case 'charset.unsupported':
      return new ApiError(415, 'unsupported_charset', x.message ?? 'unsupported charset', 'content-type');
    case 'request.aborted':
    case 'request.size.invalid':
      return new ApiError(400, 'incomplete_body', 'the request body ended before its stated length');
  }
  // The router's "Failed to decode param" (a bad percent-encoding in the path) is a URIError with status 400.
  if (err instanceof URIError) return new ApiError(400, 'invalid_path', 'the path holds an invalid percent-encoding', 'path');
  if (x.message === 'Decompression failed')
    return new ApiError(400, 'bad_encoding', 'the body could not be decompressed as its Content-Encoding says', 'content-encoding');
  if (x.status && x.status >= 400 && x.status < 500 && x.expose) return new ApiError(x.status, 'bad_request', x.message ?? 'bad request');
  return new ApiError(500, 'internal_error', 'internal error');
}

/** The JSON every error answers with: a stable code, a message, the field, and OpenAI's `type` and `param` so its clients read it too. */
export function errorBody(e: ApiError) {
  const type = e.status >= 500 ? 'server_error' : 'invalid_request_error';
  return { error: { code: e.code, message: e.message, type, param: e.field ?? null, ...(e.field ? { field: e.field } : {}) } };
}

/** Express error handler: ApiError as its JSON; body-parser errors mapped to codes; anything else 500. */
export function errorHandler(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  if (res.headersSent) return next(err);
  const e = err instanceof ApiError ? err : fromLibraryError(err);
  for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
  res.status(e.status).json(errorBody(e));
}
