/** POST /v1/embeddings: OpenAI-style JSON, multipart/form-data, or a raw image/* body. */
import express, { type Router } from 'express';
import multer from 'multer';
import { ApiError } from '../errors.js';
import { EmbeddingsBody, parse } from '../schemas.js';
import { embedImages, type ServeContext } from '../context.js';

export function embeddingsRoute(ctx: ServeContext, o: { maxBodyBytes: number }): Router {
  const r = express.Router();
  const upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: o.maxBodyBytes, files: 64 } });
  const multipart = upload.any();
  r.post(
    '/v1/embeddings',
    express.raw({ type: 'image/*', limit: o.maxBodyBytes }),
    (req, res, next) => (req.is('multipart/form-data') ? multipart(req, res, next) : next()),
    async (req, res) => {
      const type = req.headers['content-type'] ?? '';
      let images: (string | Buffer)[];
      let format: 'float' | 'base64' = 'float';
      if (type.startsWith('image/')) {
        if (!Buffer.isBuffer(req.body) || req.body.length === 0) throw new ApiError(400, 'empty_body', 'the image body is empty', 'body');
        images = [req.body];
        format = req.query.encoding_format === 'base64' ? 'base64' : 'float';
      } else if (type.startsWith('multipart/form-data')) {
        const files = (req.files as Express.Multer.File[] | undefined) ?? [];
        if (!files.length) throw new ApiError(400, 'invalid_request', 'multipart body has no file parts', 'file');
        images = files.map((f) => f.buffer);
        format = (req.body as { encoding_format?: string })?.encoding_format === 'base64' ? 'base64' : 'float';
      } else if (type.startsWith('application/json')) {
        const body = parse(EmbeddingsBody, req.body);
        images = Array.isArray(body.input) ? body.input : [body.input];
        format = body.encoding_format;
      } else
        throw new ApiError(
          415,
          'unsupported_content_type',
          `content type '${type || 'none'}' is not application/json, multipart/form-data or image/*`,
          'content-type',
        );
      const vectors = await embedImages(ctx, images, 'input');
      res.json({
        object: 'list',
        data: vectors.map((v, index) => ({
          object: 'embedding',
          index,
          embedding: format === 'base64' ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v),
        })),
        model: ctx.modelName,
        usage: { images: vectors.length, prompt_tokens: 0, total_tokens: 0 },
      });
    },
  );
  return r;
}
