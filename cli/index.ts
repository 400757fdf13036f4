/** `sslkit index`. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { buildIndex, buildPostgresIndex } from '../serve/build-index.js';
import { isPostgresUrl } from '../serve/store.js';
import { intOption } from './options.js';
import { progressBar } from './progress.js';
import { DEFAULT_ANN_THRESHOLD } from '../serve/index-policy.js';

export function indexCommand(): Command {
  return new Command('index')
    .description('embed a dataset or image folder with an ONNX encoder into a searchable index with k-means clusters')
    .argument('<model>', 'ONNX encoder (from sslkit export, or any image encoder)')
    .requiredOption('--data <name>', 'fashion-mnist, mnist, cifar10 or folder:PATH')
    .requiredOption('--out <file|url>', 'index file to write, or postgres://user:password@host:port/db?table=NAME to fill')
    .option('--shard <i/n>', 'PostgreSQL index: embed only share i of n (from 0), so n jobs fill one table in parallel', shardOption)
    .addOption(new Option('--split <split>', 'dataset split').choices(['train', 'test']).default('test'))
    .option('--data-dir <dir>', 'look here first for dataset files')
    .option('--limit <n>', 'index n images only: a fixed random sample, stratified by class', intOption('--limit', 1))
    .option('--clusters <k>', 'k-means clusters (default: the class count, else √N)', intOption('--clusters', 1))
    .addOption(new Option('--pooling <p>', 'for [N, T, D] outputs').choices(['cls', 'mean']).default('cls'))
    .option(
      '--ann-threshold <n>',
      'from this many images, also build and save the HNSW graph',
      intOption('--ann-threshold', 1),
      DEFAULT_ANN_THRESHOLD,
    )
    .option('--gallery <dir>', 'also write the web demo gallery (embeddings, thumbnails, clusters, PCA map) to this folder')
    .option('--preprocessing <file.json>', 'preprocessing for a model whose metadata lacks it')
    .option(
      '--centre',
      "centre the vectors on the indexed images' mean embedding: cosine scores spread over [-1, 1] instead of crowding near 1 (the service and the page centre each query too)",
    )
    .action(
      async (
        model: string,
        f: {
          data: string;
          out: string;
          split: 'train' | 'test';
          dataDir?: string;
          limit?: number;
          clusters?: number;
          pooling: 'cls' | 'mean';
          preprocessing?: string;
          gallery?: string;
          annThreshold: number;
          shard?: { index: number; of: number };
          centre?: boolean;
        },
      ) => {
        let bar: ReturnType<typeof progressBar> | null = null;
        const t0 = Date.now();
        const o = {
          data: f.data,
          split: f.split,
          dataDir: f.dataDir,
          limit: f.limit,
          clusters: f.clusters,
          pooling: f.pooling,
          preprocessing: f.preprocessing,
          gallery: f.gallery,
          annThreshold: f.annThreshold,
          shard: f.shard,
          centre: f.centre,
          log: (l: string) => process.stderr.write(`${l}\n`),
          onProgress: (done: number, total: number) => {
            bar ??= progressBar(total, 'index [{bar}] {value}/{total} images | eta {eta_formatted}', 2048);
            bar.update(done);
          },
        };
        const secs = () => ((Date.now() - t0) / 1000).toFixed(1);
        if (isPostgresUrl(f.out)) {
          const r = await buildPostgresIndex(model, f.out, o);
          (bar as ReturnType<typeof progressBar> | null)?.stop();
          const share = f.shard ? ` (shard ${f.shard.index}/${f.shard.of})` : '';
          process.stdout.write(
            `wrote ${r.written} vectors × ${r.dim}${share} to ${r.location}: ${r.total} items in the table; ` +
              `${r.clusters ? `clustered into ${r.clusters.k}` : 'the last shard to finish clusters the table'}, ${secs()} s\n`,
          );
          return;
        }
        const idx = await buildIndex(model, f.out, o);
        (bar as ReturnType<typeof progressBar> | null)?.stop();
        const sizes = Array.from({ length: idx.clusters.k }, (_, c) => idx.clusters.assign.filter((a) => a === c).length);
        process.stdout.write(
          `wrote ${f.out}: ${idx.items.length} vectors × ${idx.dim}, ${idx.clusters.k} clusters (sizes ${Math.min(...sizes)}-${Math.max(...sizes)}), ${secs()} s${f.gallery ? `; gallery in ${f.gallery}` : ''}\n`,
        );
      },
    );
}

/** `--shard i/n`: 0 ≤ i < n. */
function shardOption(v: string): { index: number; of: number } {
  const m = /^(\d+)\/(\d+)$/.exec(v);
  const index = Number(m?.[1]);
  const of = Number(m?.[2]);
  if (!m || !(of >= 1) || !(index < of))
    throw new InvalidArgumentError(`--shard must be i/n with 0 ≤ i < n (e.g. 0/2 and 1/2), got '${v}'`);
  return { index, of };
}
