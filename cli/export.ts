/** `sslkit export` and `sslkit inspect`. */
import { Command, Option } from 'commander';
import { exportRun } from '../export/exporter.js';
import { inspectModel, formatModelInfo } from '../core/onnx/inspect.js';
import { intOption } from './options.js';
import { formatInt8Report, quantizeFile, DEFAULT_CALIBRATION_IMAGES } from '../export/int8.js';
import { DEFAULT_CALIBRATION, type CalibrationMethod } from '../export/quantize.js';
import { readRunConfig } from '../train/run.js';

const calibrationOptions = (c: Command) =>
  c
    .option('--calibration <n>', 'images that calibrate the int8 activations', intOption('--calibration', 1), DEFAULT_CALIBRATION_IMAGES)
    .addOption(
      new Option('--calibration-method <m>', 'activation ranges: min-max, or a percentile of the values')
        .choices(['percentile', 'minmax'])
        .default(DEFAULT_CALIBRATION),
    );

/** `model.onnx` → `model.int8.onnx`. */
const int8Name = (file: string) => file.replace(/(\.onnx)?$/i, '.int8.onnx');

export function exportCommand(): Command {
  const cmd = new Command('export')
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
    .option(
      '--int8',
      "also write the int8 model (MODEL.int8.onnx), calibrated on the run's training images and checked against the float one",
    );
  return calibrationOptions(cmd).action(
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
        int8?: boolean;
        calibration: number;
        calibrationMethod: CalibrationMethod;
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
      if (f.int8) {
        const cfg = readRunConfig(run);
        const q = await quantizeFile(r.file, int8Name(r.file), {
          data: cfg.data,
          dataDir: f.dataDir ?? cfg.dataDir,
          calibration: f.calibration,
          method: f.calibrationMethod,
        });
        process.stdout.write(formatInt8Report(q));
      }
    },
  );
}

export function quantizeCommand(): Command {
  const cmd = new Command('quantize')
    .description('int8-quantize any ONNX image encoder (QDQ), calibrated on real images and checked against the float model')
    .argument('<model>', 'float ONNX image encoder (sslkit export or foreign)')
    .option('--out <file.onnx>', 'int8 model (default MODEL.int8.onnx)')
    .requiredOption('--data <data>', 'images to calibrate and check on: a data set name or folder:PATH')
    .option('--data-dir <dir>', 'where the data set is')
    .option('--preprocessing <file.json>', 'preprocessing for a model whose metadata lacks it (as given to sslkit index)')
    .option('--seed <n>', 'seed of the calibration sample', intOption('--seed'), 0);
  return calibrationOptions(cmd).action(
    async (
      model: string,
      f: {
        out?: string;
        data: string;
        dataDir?: string;
        preprocessing?: string;
        seed: number;
        calibration: number;
        calibrationMethod: CalibrationMethod;
      },
    ) => {
      const r = await quantizeFile(model, f.out ?? int8Name(model), {
        data: f.data,
        dataDir: f.dataDir,
        preprocessing: f.preprocessing,
        seed: f.seed,
        calibration: f.calibration,
        method: f.calibrationMethod,
      });
      process.stdout.write(formatInt8Report(r));
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
