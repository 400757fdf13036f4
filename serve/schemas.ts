/** Request bodies, validated with zod; the same schemas generate /openapi.json. */
import { z } from 'zod';
import { ApiError } from './errors.js';
import { MAX_CLUSTERS } from './store.js';

const image = z.string().min(1).describe('base64 image bytes or a data URL (JPEG, PNG, WebP)');
const embedding = z.array(z.number()).min(1).max(65_536).describe('a query embedding of the index dimension');

export const EmbeddingsBody = z.object({
  input: z.union([image, z.array(image).min(1)]),
  model: z.string().optional().describe("this service's model id (GET /v1/models); any other is refused"),
  encoding_format: z.enum(['float', 'base64']).default('float'),
  dimensions: z.number().int().min(1).optional().describe("the model's embedding size; it cannot shorten its embeddings"),
});

export const SearchBody = z
  .object({
    image: image.optional(),
    embedding: embedding.optional(),
    k: z.number().int().min(1).max(1000).default(10),
    ef_search: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .optional()
      .describe("HNSW candidate list (PostgreSQL index: pgvector's hnsw.ef_search; at least k is used); more is slower and nearer exact"),
  })
  .refine((b) => (b.image === undefined) !== (b.embedding === undefined), {
    message: 'give exactly one of image or embedding',
    path: ['image'],
  });

export const AssignBody = z
  .object({ image: image.optional(), embedding: embedding.optional(), members: z.number().int().min(0).max(100).default(5) })
  .refine((b) => (b.image === undefined) !== (b.embedding === undefined), {
    message: 'give exactly one of image or embedding',
    path: ['image'],
  });

export const AddItemsBody = z.object({
  items: z
    .array(
      z
        .object({
          id: z.string().min(1).max(200).optional(),
          image: image.optional(),
          embedding: embedding.optional(),
          metadata: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
        })
        .refine((b) => (b.image === undefined) !== (b.embedding === undefined), {
          message: 'give exactly one of image or embedding',
          path: ['image'],
        }),
    )
    .min(1)
    .max(256),
});

export const RebuildBody = z.object({ k: z.number().int().min(1).max(MAX_CLUSTERS).optional() });

/** Parses a body or throws a 400 naming the first wrong field. */
export function parse<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const r = schema.safeParse(body ?? {});
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue.path.join('.') || undefined;
    const code = ['k', 'members', 'ef_search'].includes(String(issue.path[0])) ? 'out_of_range' : 'invalid_request';
    throw new ApiError(400, code, `${field ?? 'body'}: ${issue.message}`, field);
  }
  return r.data;
}
