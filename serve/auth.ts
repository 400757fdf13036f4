/** Optional API key as a Bearer token: on every route but health (scope 'all') or on writes only. */
import crypto from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { ApiError } from './errors.js';

export function apiKeyAuth(o: { key?: string; scope: 'all' | 'writes' }) {
  const want = o.key ? crypto.createHash('sha256').update(o.key).digest() : null;
  return function apiKey(req: Request, _res: Response, next: NextFunction) {
    if (!want || req.path === '/healthz' || req.path === '/readyz') return next();
    const isWrite = req.path.startsWith('/v1/index') || req.path === '/v1/clusters/rebuild';
    if (o.scope === 'writes' && !isWrite) return next();
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const got = m ? crypto.createHash('sha256').update(m[1]).digest() : null;
    if (!got || !crypto.timingSafeEqual(got, want))
      return next(
        new ApiError(401, 'unauthorized', 'a valid API key is required (Authorization: Bearer <key>)', undefined, {
          'WWW-Authenticate': 'Bearer',
        }),
      );
    next();
  };
}
