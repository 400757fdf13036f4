/** `sslkit index`. */
import { Command, Option } from 'commander';
import { buildIndex } from '../serve/build-index.js';
import { intOption } from './options.js';
import { progressBar } from './progress.js';

export function indexCommand(): Command {
  return new Command('index')
    .description('embed a dataset or image folder with an ONNX encoder into a searchable index with k-means clusters')
    .argument('<model>', 'ONNX encoder (from sslkit export, or any image encoder)')
    .requiredOption('--data <name>', 'fashion-mnist, mnist, cifar10 or folder:PATH')
    .requiredOption('--out <file>', 'index file to write')
    .addOption(new Option('--split <split>', 'dataset split').choices(['train', 'test']).default('test'))
    .option('--data-dir <dir>', 'look here first for dataset files')
    .option('--limit <n>', 'index n images only: a fixed random sample, stratified by class', intOption('--limit', 1))
    .option('--clusters <k>', 'k-means clusters (default: the class count, else √N)', intOption('--clusters', 1))
    .addOption(new Option('--pooling <p>', 'for [N, T, D] outputs').choices(['cls', 'mean']).default('cls'))
    .option('--ann-threshold <n>', 'from this many images, also build and save the HNSW graph', intOption('--ann-threshold', 1), 20000)
    .option('--gallery <dir>', 'also write the web demo gallery (embeddings, thumbnails, clusters, PCA map) to this folder')
    .option('--preprocessing <file.json>', 'preprocessing for a model whose metadata lacks it')
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
        },
      ) => {
        let bar: ReturnType<typeof progressBar> | null = null;
        const t0 = Date.now();
        const idx = await buildIndex(model, f.out, {
          data: f.data,
          split: f.split,
          dataDir: f.dataDir,
          limit: f.limit,
          clusters: f.clusters,
          pooling: f.pooling,
          preprocessing: f.preprocessing,
          gallery: f.gallery,
          annThreshold: f.annThreshold,
          onProgress: (done, total) => {
            bar ??= progressBar(total, 'index [{bar}] {value}/{total} images | eta {eta_formatted}', 2048);
            bar.update(done);
          },
        });
        (bar as ReturnType<typeof progressBar> | null)?.stop();
        const sizes = Array.from({ length: idx.clusters.k }, (_, c) => idx.clusters.assign.filter((a) => a === c).length);
        process.stdout.write(
          `wrote ${f.out}: ${idx.items.length} vectors × ${idx.dim}, ${idx.clusters.k} clusters (sizes ${Math.min(...sizes)}-${Math.max(...sizes)}), ${((Date.now() - t0) / 1000).toFixed(1)} s${f.gallery ? `; gallery in ${f.gallery}` : ''}\n`,
        );
      },
    );
}
