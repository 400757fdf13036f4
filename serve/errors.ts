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

/** Express error handler: ApiError as its JSON; body-parser errors mapped to codes; anything else 500. */
export function errorHandler(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  if (res.headersSent) return next(err);
  let e: ApiError;
  if (err instanceof ApiError) e = err;
  else {
    const t = (err as { type?: string; status?: number }).type;
    if (t === 'entity.too.large') e = new ApiError(413, 'body_too_large', 'request body exceeds the size limit');
    else if (t === 'entity.parse.failed') e = new ApiError(400, 'invalid_json', 'request body is not valid JSON');
    else if ((err as { code?: string }).code === 'LIMIT_FILE_SIZE')
      e = new ApiError(413, 'body_too_large', 'uploaded file exceeds the size limit', 'file');
    else e = new ApiError(500, 'internal_error', 'internal error');
  }
  for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
  res.status(e.status).json({ error: { code: e.code, message: e.message, ...(e.field ? { field: e.field } : {}) } });
}
