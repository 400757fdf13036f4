/** `sslkit serve`. */
import { Command, Option } from 'commander';
import { SERVE_DEFAULTS as D, startServer } from '../serve/server.js';
import { ensureDemoBuilt } from '../web-demo/build.js';
import { DEVICES, type Device } from '../core/runtime/session.js';
import { intOption } from './options.js';

export function serveCommand(): Command {
  return new Command('serve')
    .description('serve embeddings, k-NN search and cluster assignment over HTTP')
    .requiredOption('--model <file.onnx>', 'ONNX image encoder (sslkit export or foreign)')
    .option(
      '--index <file|url>',
      'index from sslkit index: a file, or postgres://user:password@host:port/db?table=NAME shared by replicas (or set SSLKIT_INDEX_URL); enables search, clusters and index writes',
    )
    .option('--gallery <dir>', 'gallery from sslkit index --gallery: serves the in-browser demo at /')
    .option('--port <n>', 'port', intOption('--port'), D.port)
    .option('--host <host>', 'address to listen on', D.host)
    .addOption(new Option('--device <device>', 'execution provider').choices(DEVICES).default(D.device))
    .option('--threads <n>', 'onnxruntime intra-op threads (0 = one per core)', intOption('--threads'), D.threads)
    .option('--max-batch <n>', 'images per model run', intOption('--max-batch', 1), D.maxBatch)
    .option(
      '--max-delay-ms <n>',
      'let an idle model wait this long to fill a batch (0: start at once; busy periods batch anyway)',
      intOption('--max-delay-ms'),
      D.maxDelayMs,
    )
    .option('--max-queue <n>', 'queued images before 429', intOption('--max-queue', 1), D.maxQueue)
    .option('--timeout-ms <n>', 'per-request timeout', intOption('--timeout-ms', 1), D.timeoutMs)
    .option(
      '--max-body-bytes <n>',
      'request body limit (all parts of a multipart body together)',
      intOption('--max-body-bytes', 1),
      D.maxBodyBytes,
    )
    .option('--max-images <n>', 'images one request may carry (413 beyond)', intOption('--max-images', 1), D.maxImages)
    .option(
      '--max-metadata-bytes <n>',
      'largest metadata of one index item, as JSON (413 beyond): every search near it returns it',
      intOption('--max-metadata-bytes', 2),
      D.maxMetadataBytes,
    )
    .option(
      '--max-metadata-keys <n>',
      'most metadata keys of one index item (400 beyond)',
      intOption('--max-metadata-keys', 0),
      D.maxMetadataKeys,
    )
    .option(
      '--drain-ms <n>',
      'on SIGTERM, longest wait for requests in flight before the index is saved',
      intOption('--drain-ms', 0),
      D.drainMs,
    )
    .option('--max-pixels <n>', 'largest image accepted (width × height)', intOption('--max-pixels', 1), D.maxPixels)
    .option('--ann-threshold <n>', 'index size from which search is approximate (HNSW)', intOption('--ann-threshold', 1), D.annThreshold)
    .option(
      '--ef-search <n>',
      "PostgreSQL index: pgvector's hnsw.ef_search when a request gives none",
      intOption('--ef-search', 1),
      D.efSearch,
    )
    .option('--api-key <key>', 'require this Bearer token (or set SSLKIT_API_KEY)')
    .addOption(new Option('--api-key-scope <scope>', 'what the key protects').choices(['all', 'writes']).default(D.apiKeyScope))
    .option('--cors', 'allow cross-origin requests')
    .option('--allow-requantized', 'serve an index of the float model with its int8 quantization (or the reverse): vectors differ slightly')
    .option('--preprocessing <file.json>', 'preprocessing for a model whose metadata lacks it (as given to sslkit index)')
    .addOption(new Option('--pooling <p>', 'for [N, T, D] outputs').choices(['cls', 'mean']).default(D.pooling))
    .action(
      async (f: {
        model: string;
        index?: string;
        gallery?: string;
        port: number;
        host: string;
        device: Device;
        threads: number;
        maxBatch: number;
        maxDelayMs: number;
        maxQueue: number;
        timeoutMs: number;
        maxBodyBytes: number;
        maxImages: number;
        maxMetadataBytes: number;
        maxMetadataKeys: number;
        drainMs: number;
        maxPixels: number;
        annThreshold: number;
        efSearch: number;
        apiKey?: string;
        apiKeyScope: 'all' | 'writes';
        cors?: boolean;
        allowRequantized?: boolean;
        preprocessing?: string;
        pooling: 'cls' | 'mean';
      }) => {
        const staticDir = f.gallery ? await ensureDemoBuilt((l) => process.stderr.write(`${l}\n`)) : undefined;
        const index = f.index ?? process.env.SSLKIT_INDEX_URL;
        const s = await startServer({ ...f, index, staticDir, apiKey: f.apiKey ?? process.env.SSLKIT_API_KEY });
        // Stop handlers first: whoever reads the ready line may signal at once.
        const stop = async (sig: string) => {
          process.stderr.write(`${sig}: draining and saving the index\n`);
          await s.close();
          process.exit(0);
        };
        process.once('SIGTERM', () => void stop('SIGTERM'));
        process.once('SIGINT', () => void stop('SIGINT'));
        process.stdout.write(
          `sslkit serve: ${s.url} (model ${f.model}${s.ctx.store ? `, index ${s.ctx.store.location} with ${await s.ctx.store.count()} items` : ''}); OpenAPI at ${s.url}/openapi.json${f.gallery ? `; demo at ${s.url}/` : ''}\n`,
        );
      },
    );
}
