/** `sslkit train` and `sslkit methods`. */
import { Command, Option } from 'commander';
import { resume, train } from '../train/trainer.js';
import { DEFAULT_INIT_LR_SCALE, parseTrainConfig, TRAIN_DEFAULTS, type TrainConfig } from '../train/config.js';
import { METHODS, getMethod } from '../train/methods/index.js';
import { BACKBONES } from '../train/backbones/index.js';
import { AUGMENT_PRESETS } from '../train/augment/presets.js';
import { DEVICES } from '../core/runtime/session.js';
import { LR_SCHEDULES } from '../train/engine/optim.js';
import { CONV_INITS } from '../train/engine/nn.js';
import { UserError } from '../core/errors.js';
import { floatOption, intOption, keyValue } from './options.js';
import { trainingProgress } from './progress.js';

/** The flags as commander gives them: only what was typed (the defaults are config.ts's TRAIN_DEFAULTS). */
interface TrainFlags extends Partial<Omit<TrainConfig, 'hp' | 'tuneConv'>> {
  set?: Record<string, number>;
  tune?: boolean;
  resume?: string;
}

const D = TRAIN_DEFAULTS;
const dflt = (v: unknown) => ` (default ${String(v)})`;

export function trainCommand(): Command {
  return new Command('train')
    .description('train an encoder with a self-supervised method (see `sslkit methods`)')
    .option('--method <name>', `one of: ${Object.keys(METHODS).join(', ')}${dflt(D.method)}`)
    .option('--data <name>', `fashion-mnist, mnist, cifar10 or folder:PATH${dflt(D.data)}`)
    .option('--data-dir <dir>', 'look here first for dataset files')
    .addOption(new Option('--backbone <name>', `encoder network${dflt(D.backbone)}`).choices(Object.keys(BACKBONES)))
    .option('--width <x>', `backbone width multiplier${dflt(D.width)}`, floatOption('--width', 0.01))
    .addOption(
      new Option(
        '--conv-init <kind>',
        "convolution initialiser (default: the backbone's: convnet pytorch, resnet kaiming-fan-out)",
      ).choices(CONV_INITS),
    )
    .option(
      '--epochs <n>',
      `epochs (default ${D.epochs}; with --resume, the run's own unless given: more extends it)`,
      intOption('--epochs', 1),
    )
    .option('--batch-size <n>', `images per step (each gives the method its views)${dflt(D.batchSize)}`, intOption('--batch-size', 2))
    .option('--lr <x>', "peak learning rate (default: the method's lr per 256 images × batch/256)", floatOption('--lr'))
    .addOption(new Option('--optimizer <name>', "default: the method's").choices(['sgd', 'adamw', 'lars']))
    .option('--weight-decay <x>', "default: the method's", floatOption('--weight-decay'))
    .option('--warmup-epochs <x>', `linear warm-up before the cosine decay${dflt(D.warmupEpochs)}`, floatOption('--warmup-epochs'))
    .addOption(
      new Option('--lr-schedule <kind>', `after the warm-up: cosine decay to 0, or constant${dflt(D.lrSchedule)}`).choices(LR_SCHEDULES),
    )
    .option('--clip-grad-norm <x>', `clip the global gradient norm (0 = off)${dflt(D.clipGradNorm)}`, floatOption('--clip-grad-norm'))
    .addOption(new Option('--augment <preset>', "augmentation preset (default: the method's)").choices(AUGMENT_PRESETS))
    .option(
      '--crop-min-scale <x>',
      `smallest random-resized-crop area fraction${dflt(D.cropMinScale)}`,
      floatOption('--crop-min-scale', 0.01),
    )
    .option(
      '--init <model.onnx>',
      'start from this ONNX image encoder (torch.onnx, sslkit export, …): its graph and weights become the backbone',
    )
    .option('--preprocessing <file.json>', "--init model's preprocessing where its metadata has none (default: ImageNet's mean and std)")
    .option(
      '--init-lr-scale <x>',
      `the imported encoder's learning rate as a share of the heads'${dflt(DEFAULT_INIT_LR_SCALE)}`,
      floatOption('--init-lr-scale', 0),
    )
    .option(
      '--insert-batchnorm',
      '--init model: put a BatchNorm after each convolution that has none, starting as the identity, folded back at export (default: where the model has no normalisation, i.e. its BatchNorm was folded)',
    )
    .option('--no-insert-batchnorm', '--init model with folded BatchNorm: train its convolutions as they are')
    .option('--freeze <node>', "don't train the imported parameters read by the nodes up to this one (`sslkit inspect` lists them)")
    .option(
      '--image-size <n>',
      "train at n×n pixels (default: the --init model's input size, else a folder's first image's shorter side up to 96)",
      intOption('--image-size', 8),
    )
    .option('--teacher <model.onnx>', 'frozen ONNX encoder for distill and bownet (one exported here, or a foreign one)')
    .option('--set <key=value>', 'method hyper-parameter, repeatable (see `sslkit methods`)', keyValue)
    .option('--limit <n>', 'train on n images only: a fixed random sample, stratified by class', intOption('--limit', 1))
    .option(
      '--test-fraction <x>',
      `a labelled folder without train/ and test/: the share of each class held out for the kNN check, never trained on (0: none, leave-one-out)${dflt(D.testFraction)}`,
      floatOption('--test-fraction', 0),
    )
    .option('--seed <n>', `random seed${dflt(D.seed)}`, intOption('--seed'))
    .addOption(new Option('--device <device>', `execution provider; falls back to CPU with a log line${dflt(D.device)}`).choices(DEVICES))
    .option('--threads <n>', `onnxruntime intra-op threads (0 = one per core)${dflt(D.threads)}`, intOption('--threads'))
    .option('--workers <n>', `augmentation worker threads${dflt(D.workers)}`, intOption('--workers'))
    .option(
      '--knn-memory <n>',
      `train images used as kNN memory in the per-epoch check (0 = off)${dflt(D.knnMemory)}`,
      intOption('--knn-memory'),
    )
    .option('--knn-queries <n>', `test images queried in the per-epoch kNN check${dflt(D.knnQueries)}`, intOption('--knn-queries'))
    .option('--checkpoint-every <n>', `steps between checkpoints${dflt(D.checkpointEvery)}`, intOption('--checkpoint-every', 1))
    .option('--max-steps <n>', 'stop (with a checkpoint) after n steps of this invocation', intOption('--max-steps', 1))
    .option('--no-tune', 'skip measuring conv weight-gradient formulations (and, with --nchwc, the kernels per layer)')
    .option(
      '--nchwc',
      "CPU: run convolutions on onnxruntime's blocked (NCHWc) kernels where each measures faster (experimental; same results to ~1e-6)",
    )
    .option('--out <dir>', 'run folder (config.json, metrics.jsonl, checkpoint.ckpt)')
    .option('--resume <dir>', 'continue the run in this folder from its checkpoint')
    .action(async (f: TrainFlags, cmd: Command) => {
      const { set, tune, resume: resumeDir, ...rest } = f;
      // What was typed, in the config's names; the config (train/config.ts) resolves everything else, once.
      const given: Record<string, unknown> = {
        ...rest,
        hp: set,
        tuneConv: cmd.getOptionValueSource('tune') === 'cli' ? tune : undefined,
      };
      for (const k of Object.keys(given)) if (given[k] === undefined) delete given[k];
      if (!resumeDir && !f.out) throw new UserError('--out <dir> is required (or --resume <dir> to continue a run)');
      if (f.init && f.backbone !== undefined)
        throw new UserError('--backbone and --init exclude each other: the --init model is the backbone');
      const input = resumeDir ? undefined : parseTrainConfig(given);
      if (input) getMethod(input.method);
      const progress = trainingProgress();
      let interrupted = false;
      const onSigint = () => {
        if (interrupted) process.exit(130);
        interrupted = true;
        progress.log('interrupt: finishing this step and writing a checkpoint (Ctrl-C again to quit now)');
      };
      process.on('SIGINT', onSigint);
      try {
        const hooks = { log: progress.log, onStep: progress.onStep, stopRequested: () => interrupted };
        const r = input ? await train(input, hooks) : await resume(resumeDir!, given, hooks);
        progress.stop();
        const knn =
          r.knnTop1 === null
            ? ''
            : `, kNN top-1 ${(100 * r.knnTop1).toFixed(2)}%` +
              (r.initialKnnTop1 !== null ? ` (${input?.init ? 'start' : 'random init'} ${(100 * r.initialKnnTop1).toFixed(2)}%)` : '');
        process.stdout.write(
          `${r.stopped === 'done' ? 'done' : r.stopped}: step ${r.position.step}, loss ${r.finalLoss.toFixed(4)}${knn}; run in ${r.runDir}\n`,
        );
        if (r.stopped === 'interrupted') process.exitCode = 130;
      } finally {
        process.off('SIGINT', onSigint);
      }
    });
}

export function methodsCommand(): Command {
  return new Command('methods')
    .description('list the self-supervised methods and their hyper-parameters with defaults')
    .argument('[name]', 'show one method')
    .action((name?: string) => {
      const list = name ? [getMethod(name)] : Object.values(METHODS);
      for (const m of list) {
        process.stdout.write(`${m.name.padEnd(12)} ${m.summary}\n`);
        process.stdout.write(
          `${''.padEnd(12)} views ${m.views}, augment '${m.augment}', ${m.optimizer.name} lr ${m.optimizer.lrPer256}×B/256, wd ${m.optimizer.weightDecay}\n`,
        );
        for (const [k, p] of Object.entries(m.params)) process.stdout.write(`${''.padEnd(14)}--set ${k}=${p.default}  ${p.help}\n`);
      }
    });
}
