/**
 * The built page's files: hashed assets (`/assets/NAME-HASH.ext`) are immutable, so they are
 * cached for a year and sent precompressed (brotli or gzip, written at build time) when the
 * browser accepts it; everything else (index.html, sw.js, precache.json) is revalidated on every
 * load, so a new build is seen at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import express, { type RequestHandler } from 'express';

// A name, never `..`: the first character is a word character.
const HASHED = /^\/assets\/\w[\w.-]*$/;
const IMMUTABLE = 'public, max-age=31536000, immutable';

export function staticAssets(dir: string): RequestHandler[] {
  const precompressed: RequestHandler = (req, res, next) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !HASHED.test(req.path)) return next();
    const file = path.join(dir, req.path);
    const accepts = req.acceptsEncodings('br', 'gzip', 'identity');
    const ext = accepts === 'br' ? '.br' : accepts === 'gzip' ? '.gz' : null;
    if (!ext || !fs.existsSync(file + ext)) return next();
    res.type(path.extname(file));
    res.setHeader('Content-Encoding', accepts as string);
    res.setHeader('Vary', 'Accept-Encoding');
    res.setHeader('Cache-Control', IMMUTABLE);
    res.sendFile(req.path.slice(1) + ext, { root: dir, cacheControl: false }, (e) => e && next(e));
  };
  const plain = express.static(dir, {
    cacheControl: false,
    setHeaders: (res, file) => {
      const hashed = HASHED.test(`/${path.relative(dir, file).split(path.sep).join('/')}`);
      res.setHeader('Cache-Control', hashed ? IMMUTABLE : 'no-cache');
      if (hashed) res.setHeader('Vary', 'Accept-Encoding');
    },
  });
  return [precompressed, plain];
}

/**
 * The files of a folder, served as they are, but only regular files whose real path is inside
 * it: a symbolic link in the folder to a file elsewhere (or to a folder) is a 404, not a way out.
 */
export function regularFilesIn(dir: string): RequestHandler {
  const root = fs.realpathSync(dir);
  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    let real: string;
    try {
      real = fs.realpathSync(path.join(root, path.normalize(decodeURIComponent(req.path))));
      if (!real.startsWith(root + path.sep) || !fs.statSync(real).isFile()) return next();
    } catch {
      return next(); // no such file, or a path that does not decode: the 404 that follows
    }
    res.sendFile(real, { dotfiles: 'allow' }, (e) => e && next(e));
  };
}
