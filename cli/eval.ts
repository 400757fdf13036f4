/** `sslkit eval`: kNN, linear probe and k-means scores of a run or any ONNX encoder, with pictures. */
import path from 'node:path';
import fs from 'node:fs';
import { Command, Option } from 'commander';
import { evaluate } from '../eval/evaluate.js';
import { DEVICES, type Device } from '../core/runtime/session.js';
import { floatOption, intOption } from './options.js';

export function evalCommand(): Command {
  return new Command('eval')
    .description(
      'score an encoder (a run folder or any ONNX model): kNN top-1 (k=200 weighted, k=20), linear probe, k-means NMI and accuracy',
    )
    .argument('<run-or-model>', 'run folder from sslkit train, or an ONNX encoder')
    .option('--data <name>', "fashion-mnist, mnist, cifar10 or folder:PATH (default: the run's)")
    .option('--data-dir <dir>', 'look here first for dataset files')
    .option(
      '--test-fraction <x>',
      "a labelled folder without train/ and test/: the held-out share of each class (default: the run's, else 0.1; 0: leave-one-out kNN on all images)",
      floatOption('--test-fraction', 0),
    )
    .option(
      '--train-limit <n>',
      'train images used (a fixed random sample, stratified by class; the same images as train --limit n; default all)',
      intOption('--train-limit', 10),
    )
    .option(
      '--test-limit <n>',
      'test images scored (a fixed random sample, stratified by class; default all)',
      intOption('--test-limit', 10),
    )
    .option('--probe-epochs <n>', 'linear probe epochs', intOption('--probe-epochs', 1), 30)
    .option('--out <dir>', 'folder for embedding-map.png and training-curves.png (default: the run folder, or none)')
    .option('--centre', "kNN and k-means on embeddings centred on the memory's mean (what a centred index searches)")
    .option('--json', 'print the result as JSON')
    .addOption(new Option('--device <device>', 'execution provider').choices(DEVICES).default('auto'))
    .option('--threads <n>', 'onnxruntime intra-op threads (0 = one per core)', intOption('--threads'), 0)
    .option('--preprocessing <file.json>', 'for an ONNX model whose metadata lacks its preprocessing')
    .addOption(new Option('--pooling <p>', 'for [N, T, D] outputs').choices(['cls', 'mean']).default('cls'))
    .action(
      async (
        target: string,
        f: {
          data?: string;
          dataDir?: string;
          testFraction?: number;
          trainLimit?: number;
          testLimit?: number;
          probeEpochs: number;
          out?: string;
          json?: boolean;
          device: Device;
          threads: number;
          preprocessing?: string;
          pooling: 'cls' | 'mean';
          centre?: boolean;
        },
      ) => {
        const isRun = fs.existsSync(target) && fs.statSync(target).isDirectory();
        const r = await evaluate(target, {
          ...f,
          out: f.out ?? (isRun ? target : undefined),
          log: (l) => process.stderr.write(`${l}\n`),
        });
        if (f.json) return void process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
        const rows: [string, string][] = [
          ['encoder', `${r.encoder} (${r.dim}-d)`],
          ['data', `${r.data}: ${r.trainImages} train (memory / probe fit), ${r.testImages} test (scored)`],
          ['scored', r.split],
          ['kNN top-1, k=200 weighted', pct(r.knn_top1_k200) + (r.centred ? ' (centred)' : '')],
          ['kNN top-1, k=20 weighted', pct(r.knn_top1_k20)],
          ['linear probe top-1', r.linear_probe_top1 === null ? 'none (no held-out images)' : pct(r.linear_probe_top1)],
          ['k-means NMI', r.kmeans_nmi.toFixed(4)],
          ['k-means accuracy (Hungarian)', pct(r.kmeans_accuracy)],
          ['collapse std', `${r.collapse_std.toFixed(4)} (healthy ≈ ${r.healthy_std.toFixed(4)}, collapsed → 0)`],
          ['time', `${r.seconds.toFixed(1)} s`],
          ...r.pictures.map((p) => ['picture', path.relative(process.cwd(), p)] as [string, string]),
        ];
        for (const [k, v] of rows) process.stdout.write(`${k.padEnd(30)} ${v}\n`);
      },
    );
}
