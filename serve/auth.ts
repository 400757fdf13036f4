/**
 * Optional API key as a Bearer token. Protection is attached to routes, not decided from the raw
 * path: with scope 'all' every route but /healthz and /readyz needs the key; with 'writes' the
 * write routes carry the check themselves, so no spelling of their path can skip it (routing is
 * strict and case-sensitive as well: one path, one route).
 */
import crypto from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ApiError } from './errors.js';

const pass: RequestHandler = (_req, _res, next) => next();

export function apiKeyAuth(o: { key?: string; scope: 'all' | 'writes' }): { all: RequestHandler; writes: RequestHandler } {
  if (!o.key) return { all: pass, writes: pass };
  const want = crypto.createHash('sha256').update(o.key).digest();
  const check = (req: Request, _res: Response, next: NextFunction) => {
    // The scheme is case-insensitive (RFC 7235): `bearer`, `BEARER` and `Bearer` are one scheme.
    const m = /^Bearer +(\S.*)$/i.exec(req.headers.authorization ?? '');
    const got = m ? crypto.createHash('sha256').update(m[1]).digest() : null;
    if (!got || !crypto.timingSafeEqual(got, want))
      return next(
        new ApiError(401, 'unauthorized', 'a valid API key is required (Authorization: Bearer <key>)', undefined, {
          'WWW-Authenticate': 'Bearer',
        }),
      );
    next();
  };
  if (o.scope === 'writes') return { all: pass, writes: check };
  // Health stays open for load balancers; routing is strict, so these exact paths are the only spellings.
  return { all: (req, res, next) => (req.path === '/healthz' || req.path === '/readyz' ? next() : check(req, res, next)), writes: pass };
}
