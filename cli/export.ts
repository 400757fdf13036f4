/** `sslkit export` and `sslkit inspect`. */
import { Command, Option } from 'commander';
import { exportRun } from '../export/exporter.js';
import { inspectModel, formatModelInfo } from '../core/onnx/inspect.js';
import { intOption } from './options.js';

export function exportCommand(): Command {
  return new Command('export')
    .description('write a trained run as an ONNX model with metadata, checked against the engine')
    .argument('<run>', 'run folder (from sslkit train)')
    .requiredOption('--out <file.onnx>', 'output model')
    .option('--opset <n>', 'ONNX opset (17 by default; 13-21 where the graph allows)', intOption('--opset', 1), 17)
    .option('--no-fold', 'keep BatchNorm nodes instead of folding them into the convolutions')
    .option('--fp16', 'store weights in half precision (computation stays float32)')
    .option('--normalize', 'L2-normalise the output embeddings')
    .option('--feature-map', 'add the last feature map as a second output, feature_map [N, C, h, w] (a BoWNet teacher)')
    .addOption(new Option('--head <head>', 'what the embedding is').choices(['backbone', 'projector']).default('backbone'))
    .option('--data-dir <dir>', "where the run's dataset is, for the check images")
    .action(
      async (
        run: string,
        f: {
          out: string;
          opset: number;
          fold: boolean;
          fp16?: boolean;
          normalize?: boolean;
          head: 'backbone' | 'projector';
          featureMap?: boolean;
          dataDir?: string;
        },
      ) => {
        const r = await exportRun(run, {
          out: f.out,
          opset: f.opset,
          fold: f.fold,
          fp16: f.fp16,
          normalize: f.normalize,
          head: f.head,
          featureMap: f.featureMap,
          dataDir: f.dataDir,
        });
        process.stdout.write(
          `wrote ${r.file}: ${(r.bytes / 1024).toFixed(1)} KiB, opset ${r.opset}, ${r.nodes} nodes, ${r.parameters.toLocaleString('en-US')} parameters, ` +
            `embeddings [N, ${r.embeddingDim}], ${r.foldedBatchNorms} BatchNorms folded\n` +
            `check: max |onnxruntime − engine| = ${r.maxAbsDiff.toExponential(2)} over ${r.checkedImages} images (allowed ${r.tolerance})\n`,
        );
      },
    );
}

export function inspectCommand(): Command {
  return new Command('inspect')
    .description('inputs, outputs, opset, node and parameter counts and metadata of an ONNX model')
    .argument('<model>', 'ONNX file')
    .option('--json', 'machine-readable output')
    .action((file: string, f: { json?: boolean }) => {
      const info = inspectModel(file);
      process.stdout.write(f.json ? `${JSON.stringify(info, null, 2)}\n` : `${formatModelInfo(info)}\n`);
    });
}
