/** POST /v1/embeddings: OpenAI-style JSON, multipart/form-data, or a raw image/* body. */
import express, { type Router } from 'express';
import { ApiError } from '../errors.js';
import { EmbeddingsBody, parse } from '../schemas.js';
import { checkImageCount, embedImages, strictRouter, type ServeContext } from '../context.js';
import { multipartBody, parseJson, unsupportedType, type UploadedFile } from '../body.js';

export function embeddingsRoute(ctx: ServeContext): Router {
  const r = strictRouter();
  const multipart = multipartBody({ maxBytes: ctx.maxBodyBytes, maxFiles: ctx.maxImages });
  r.post(
    '/v1/embeddings',
    express.raw({ type: 'image/*', limit: ctx.maxBodyBytes }),
    ...multipart,
    parseJson(ctx.maxBodyBytes),
    // Media types are case-insensitive: req.is compares them so (startsWith would not).
    async (req, res) => {
      let images: (string | Buffer)[];
      let format: 'float' | 'base64' = 'float';
      if (req.is('image/*')) {
        if (!Buffer.isBuffer(req.body) || req.body.length === 0) throw new ApiError(400, 'empty_body', 'the image body is empty', 'body');
        images = [req.body];
        format = req.query.encoding_format === 'base64' ? 'base64' : 'float';
      } else if (req.is('multipart/form-data')) {
        const files = (req as typeof req & { files?: UploadedFile[] }).files ?? [];
        if (!files.length) throw new ApiError(400, 'invalid_request', 'multipart body has no file parts', 'file');
        images = files.map((f) => f.buffer);
        format = (req.body as { encoding_format?: string })?.encoding_format === 'base64' ? 'base64' : 'float';
      } else if (req.is('application/json')) {
        // Counted before the schema walks every string.
        const input = (req.body as { input?: unknown } | undefined)?.input;
        if (Array.isArray(input)) checkImageCount(ctx, input.length, 'input');
        const body = parse(EmbeddingsBody, req.body);
        // An OpenAI client names a model and may ask for fewer dimensions: neither is silently ignored.
        if (body.model !== undefined && body.model !== ctx.modelName)
          throw new ApiError(
            404,
            'model_not_found',
            `the model '${body.model}' does not exist here; this service serves '${ctx.modelName}'`,
            'model',
          );
        if (body.dimensions !== undefined && body.dimensions !== ctx.encoder.dim)
          throw new ApiError(
            400,
            'unsupported_dimensions',
            `this model gives ${ctx.encoder.dim}-dimensional embeddings and was not trained to be cut shorter; leave out dimensions or give ${ctx.encoder.dim}`,
            'dimensions',
          );
        images = Array.isArray(body.input) ? body.input : [body.input];
        format = body.encoding_format;
      } else throw unsupportedType(req, 'application/json, multipart/form-data or image/*');
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
