/** The OpenAPI document, generated from the same zod schemas the routes validate with. */
import { z } from 'zod';
import { AddItemsBody, AssignBody, EmbeddingsBody, RebuildBody, SearchBody } from './schemas.js';
import { SSLKIT_VERSION } from '../core/version.js';

const json = (schema: z.ZodType) => ({
  content: { 'application/json': { schema: z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) } },
});
const error = {
  description: 'error',
  content: {
    'application/json': {
      schema: {
        type: 'object',
        properties: {
          error: {
            type: 'object',
            properties: { code: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' } },
            required: ['code', 'message'],
          },
        },
      },
    },
  },
};

export function openApiDocument() {
  const ok = (description: string) => ({ 200: { description }, 400: error, 413: error, 415: error });
  return {
    openapi: '3.1.0',
    info: {
      title: 'sslkit serve',
      version: SSLKIT_VERSION,
      description: 'Image embeddings, k-NN search and cluster assignment with an ONNX encoder.',
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths: {
      '/v1/embeddings': {
        post: {
          summary: 'Embed images',
          requestBody: {
            content: {
              ...json(EmbeddingsBody).content,
              'multipart/form-data': {
                schema: {
                  type: 'object',
                  properties: {
                    file: { type: 'string', format: 'binary' },
                    encoding_format: { type: 'string', enum: ['float', 'base64'] },
                  },
                },
              },
              'image/*': { schema: { type: 'string', format: 'binary' } },
            },
          },
          responses: { ...ok('embeddings'), 413: error, 415: error, 429: error },
        },
      },
      '/v1/search': {
        post: { summary: 'Nearest neighbours of an image or embedding', requestBody: json(SearchBody), responses: ok('neighbours') },
      },
      '/v1/clusters/assign': {
        post: { summary: 'Cluster of an image or embedding', requestBody: json(AssignBody), responses: ok('cluster') },
      },
      '/v1/clusters': { get: { summary: 'Cluster sizes and representatives', responses: { 200: { description: 'clusters' } } } },
      '/v1/clusters/rebuild': {
        post: {
          summary: 'Re-run k-means over the index (in a worker thread; one at a time)',
          requestBody: json(RebuildBody),
          responses: { ...ok('k'), 409: error },
        },
      },
      '/v1/index/items': {
        post: {
          summary: 'Add items (durable when acknowledged)',
          requestBody: json(AddItemsBody),
          responses: { 201: { description: 'ids' }, 400: error, 413: error, 415: error, 429: error },
        },
      },
      '/v1/index/items/{id}': {
        delete: {
          summary: 'Delete an item',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { 200: { description: 'deleted' }, 400: error, 404: error },
        },
      },
      '/v1/models': { get: { summary: 'Model metadata and execution provider', responses: { 200: { description: 'model' } } } },
      '/healthz': { get: { summary: 'Liveness', responses: { 200: { description: 'ok' } } } },
      '/readyz': {
        get: {
          summary: 'Readiness (model and index loaded)',
          responses: { 200: { description: 'ready' }, 503: { description: 'not ready' } },
        },
      },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: { description: 'text exposition' } } } },
    },
  };
}
