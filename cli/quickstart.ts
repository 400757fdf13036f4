/**
 * `sslkit quickstart`: the main job in one command. Trains a small VICReg convnet on the
 * Fashion-MNIST sample that ships with sslkit (or, with --data fashion-mnist, the full set, found
 * or fetched) with a progress bar, exports and checks the ONNX model, indexes the test split (and
 * its browser gallery), prints a summary, and serves the model, index and demo until Ctrl-C. A
 * second call reuses every finished artefact (or resumes an interrupted run); --fresh starts
 * over. --tiny is a smoke test of the whole pipeline and reports no accuracy.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { loadDataset } from '../data/datasets.js';
import { cacheDir } from '../core/fs.js';
import { fetchFile } from '../data/fetch.js';
import { SOURCES } from '../data/sources.js';
import { resume, train } from '../train/trainer.js';
import { TrainConfigSchema } from '../train/config.js';
import { CHECKPOINT_FILE, readRunConfig } from '../train/run.js';
import { exportRun } from '../export/exporter.js';
import { buildIndex } from '../serve/build-index.js';
import { startServer } from '../serve/server.js';
import { ensureDemoBuilt } from '../web-demo/build.js';
import { UserError } from '../core/errors.js';
import { intOption } from './options.js';
import { trainingProgress } from './progress.js';

async function ensureFashionMnist(log: (l: string) => void): Promise<void> {
  try {
    await loadDataset('fashion-mnist', 'test');
    return;
  } catch {
    log('Fashion-MNIST not found locally; fetching it from its canonical address');
  }
  try {
    for (const f of SOURCES['fashion-mnist'].files) await fetchFile(f, path.join(cacheDir(), 'data', 'fashion-mnist'));
  } catch (e) {
    throw new UserError(
      `no Fashion-MNIST here and the download failed (${(e as Error).message}); install it with 'apt-get install dataset-fashion-mnist'`,
      { cause: e },
    );
  }
}

export function quickstartCommand(): Command {
  return new Command('quickstart')
    .description(
      'the main job: train a small encoder on Fashion-MNIST, export it to ONNX, index the test split and serve it (reuses finished steps)',
    )
    .option('--out <dir>', 'run folder', 'runs/quickstart')
    .addOption(
      new Option('--data <name>', 'fashion-mnist-small ships with sslkit; fashion-mnist is the full set (found locally or downloaded)')
        .choices(['fashion-mnist-small', 'fashion-mnist'])
        .default('fashion-mnist-small'),
    )
    .option('--epochs <n>', 'epochs', intOption('--epochs', 1), 3)
    .option(
      '--limit <n>',
      'training images (a seeded, class-stratified sample; default: all 20,000 of the shipped set)',
      intOption('--limit', 256),
    )
    .option('--fresh', 'delete the run folder and start over')
    .option('--tiny', 'a smoke test of the whole pipeline in seconds (512 images, 1 epoch): it reports no accuracy')
    .option('--port <n>', 'port for the service (0 = any free port)', intOption('--port'), 8080)
    .option('--no-serve', 'stop after the summary instead of serving')
    .action(
      async (o: {
        out: string;
        data: 'fashion-mnist-small' | 'fashion-mnist';
        epochs: number;
        limit?: number;
        fresh?: boolean;
        tiny?: boolean;
        port: number;
        serve: boolean;
      }) => {
        const log = (l: string) => process.stderr.write(`${l}\n`);
        const t0 = Date.now();
        if (o.fresh) fs.rmSync(o.out, { recursive: true, force: true });
        if (o.data === 'fashion-mnist') await ensureFashionMnist(log);
        const ckpt = path.join(o.out, CHECKPOINT_FILE);
        const cfg = TrainConfigSchema.parse({
          // VICReg learned the most in the budget (bench/quickstart-options, README "Why this recipe").
          method: 'vicreg',
          data: o.data,
          backbone: 'convnet',
          width: 0.5,
          epochs: o.epochs,
          batchSize: 128,
          // A short CPU budget: AdamW learns much faster here than the methods' large-batch LARS recipes.
          optimizer: 'adamw',
          lr: 2e-3,
          weightDecay: 1e-4,
          // Crops of at least half the image: at 28 px a 20% crop is mostly background (bench/quickstart-options).
          cropMinScale: 0.5,
          limit: o.tiny ? 512 : (o.limit ?? (o.data === 'fashion-mnist' ? 20000 : undefined)),
          ...(o.tiny ? { epochs: 1, batchSize: 64, width: 0.25 } : {}),
          hp: o.tiny ? { proj_dim: 64 } : {},
          // Eight steps move no accuracy reliably: the smoke test measures none.
          knnMemory: o.tiny ? 0 : 5000,
          knnQueries: 2000,
          out: o.out,
        });
        let done = false;
        if (fs.existsSync(ckpt)) {
          const metrics = fs
            .readFileSync(path.join(o.out, 'metrics.jsonl'), 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as { type: string; epoch: number });
          done = metrics.some((m) => m.type === 'epoch' && m.epoch === readRunConfig(o.out).epochs);
          if (done) log(`reusing the finished run in ${o.out} (--fresh to retrain)`);
        }
        if (!done) {
          const progress = trainingProgress();
          const hooks = { log: progress.log, onStep: progress.onStep };
          await (fs.existsSync(ckpt) ? resume(o.out, cfg, hooks) : train(cfg, hooks));
          progress.stop();
        }
        // Export (and check) the encoder next to the run, unless an export newer than the checkpoint is there.
        const modelFile = path.join(o.out, 'model.onnx');
        let exportLine = '';
        if (!fs.existsSync(modelFile) || fs.statSync(modelFile).mtimeMs < fs.statSync(ckpt).mtimeMs) {
          const r = await exportRun(o.out, { out: modelFile, log });
          exportLine = ` (checked against the engine: max difference ${r.maxAbsDiff.toExponential(1)})`;
        }
        const modelKiB = fs.statSync(modelFile).size / 1024;
        // The test split as a searchable gallery, unless an index newer than the model is there.
        const indexFile = path.join(o.out, 'gallery.idx');
        const galleryDir = path.join(o.out, 'gallery');
        if (
          !fs.existsSync(indexFile) ||
          fs.statSync(indexFile).mtimeMs < fs.statSync(modelFile).mtimeMs ||
          !fs.existsSync(path.join(galleryDir, 'manifest.json'))
        )
          await buildIndex(modelFile, indexFile, {
            data: o.data,
            split: 'test',
            // The shipped set's 2,000 test images; of the full set, a class-stratified 2,000.
            limit: 2000,
            gallery: galleryDir,
            // Centred on the gallery's mean: the page shows scores a person can read.
            centre: true,
            log,
          });
        const metrics = fs
          .readFileSync(path.join(o.out, 'metrics.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, number | string>);
        const epochs = metrics.filter((m) => m.type === 'epoch');
        const first = epochs[0];
        const last = epochs[epochs.length - 1];
        const steps = metrics.filter((m) => m.type === 'step').map((m) => m.img_s as number);
        const pct = (v: number | string | undefined) => (typeof v === 'number' ? `${(100 * v).toFixed(1)}%` : 'n/a');
        const ips = steps.length ? steps.sort((a, b) => a - b)[Math.floor(steps.length / 2)] : NaN;
        const trained = `a VICReg convnet trained on ${readRunConfig(o.out).resolved.trainImages} ${o.data} images for ${cfg.epochs} epoch${cfg.epochs > 1 ? 's' : ''}`;
        const knn = o.tiny
          ? `--tiny is a smoke test of the pipeline (${steps.length} steps): it measures no accuracy; run without --tiny for a model worth searching with.\n`
          : `kNN top-1 on ${cfg.knnQueries.toLocaleString('en-US')} test images: trained ${pct(last.knn_top1)} · untrained ${pct(first.knn_top1)} · raw pixels ${pct(first.knn_top1_pixels)}\n`;
        process.stdout.write(
          `\nsslkit quickstart: ${trained}.\n` +
            knn +
            `training speed ${Math.round(ips)} images/s.\n` +
            `ONNX model: ${path.resolve(modelFile)}, ${modelKiB.toFixed(0)} KiB${exportLine}; inspect it with 'npx sslkit inspect ${path.join(o.out, 'model.onnx')}'.\n` +
            `Run folder ${path.resolve(o.out)} (config.json, metrics.jsonl, checkpoint.ckpt, model.onnx, gallery.idx, gallery/); ${((Date.now() - t0) / 1000).toFixed(0)} s this time.\n`,
        );
        if (!o.serve) return;
        const s = await startServer({
          model: modelFile,
          index: indexFile,
          gallery: galleryDir,
          staticDir: await ensureDemoBuilt(log),
          port: o.port,
          log,
        });
        // Stop handlers first: whoever reads the ready line may signal at once.
        const stopped = new Promise<void>((resolve) => {
          const stop = () => void s.close().then(resolve);
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        process.stdout.write(
          `\nServing ${await s.ctx.store!.count()} Fashion-MNIST test images at ${s.url}\n` +
            `  demo:     open ${s.url}/ in a browser: search and clustering run in the page (onnxruntime-web)\n` +
            `  search:   curl -s ${s.url}/v1/search -H 'content-type: application/json' -d '{"image": "<base64 PNG>", "k": 5}'\n` +
            `  API:      ${s.url}/openapi.json   metrics: ${s.url}/metrics\n` +
            `Ctrl-C stops the service.\n`,
        );
        await stopped;
      },
    );
}
