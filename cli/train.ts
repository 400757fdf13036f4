/** `sslkit train` and `sslkit methods`. */
import { Command, Option } from 'commander';
import { train } from '../train/trainer.js';
import { RESUMABLE_KEYS, TrainConfigSchema, type TrainConfig } from '../train/config.js';
import { readRunConfig } from '../train/run.js';
import { METHODS, getMethod } from '../train/methods/index.js';
import { BACKBONES } from '../train/backbones/index.js';
import { AUGMENT_PRESETS } from '../train/augment/presets.js';
import { DEVICES } from '../core/runtime/session.js';
import { LR_SCHEDULES, type LrSchedule } from '../train/engine/optim.js';
import { CONV_INITS, type ConvInit } from '../train/engine/nn.js';
import { UserError } from '../core/errors.js';
import { DEFAULT_TEST_FRACTION } from '../data/datasets.js';
import { floatOption, intOption, keyValue } from './options.js';
import { trainingProgress } from './progress.js';

interface TrainFlags {
  method: string;
  data: string;
  dataDir?: string;
  backbone: string;
  width: number;
  convInit?: ConvInit;
  epochs?: number;
  batchSize: number;
  lr?: number;
  optimizer?: 'sgd' | 'adamw' | 'lars';
  weightDecay?: number;
  warmupEpochs: number;
  lrSchedule: LrSchedule;
  clipGradNorm: number;
  augment?: string;
  cropMinScale: number;
  set: Record<string, number>;
  limit?: number;
  testFraction: number;
  seed: number;
  device: string;
  threads: number;
  workers: number;
  knnMemory: number;
  knnQueries: number;
  checkpointEvery: number;
  maxSteps?: number;
  tune: boolean;
  out?: string;
  resume?: string;
  teacher?: string;
  init?: string;
  preprocessing?: string;
  initLrScale?: number;
  freeze?: string;
  insertBatchnorm?: boolean;
  imageSize?: number;
}

export function trainCommand(): Command {
  return new Command('train')
    .description('train an encoder with a self-supervised method (see `sslkit methods`)')
    .option('--method <name>', `one of: ${Object.keys(METHODS).join(', ')}`, 'simclr')
    .option('--data <name>', 'fashion-mnist, mnist, cifar10 or folder:PATH', 'fashion-mnist')
    .option('--data-dir <dir>', 'look here first for dataset files')
    .addOption(new Option('--backbone <name>', 'encoder network').choices(Object.keys(BACKBONES)).default('convnet'))
    .option('--width <x>', 'backbone width multiplier', floatOption('--width', 0.01), 1)
    .addOption(
      new Option(
        '--conv-init <kind>',
        "convolution initialiser (default: the backbone's: convnet pytorch, resnet kaiming-fan-out)",
      ).choices(CONV_INITS),
    )
    .option('--epochs <n>', "epochs (default 10; with --resume, the run's own unless given: more extends it)", intOption('--epochs', 1))
    .option('--batch-size <n>', 'images per step (each gives the method its views)', intOption('--batch-size', 2), 256)
    .option('--lr <x>', "peak learning rate (default: the method's lr per 256 images × batch/256)", floatOption('--lr'))
    .addOption(new Option('--optimizer <name>', "default: the method's").choices(['sgd', 'adamw', 'lars']))
    .option('--weight-decay <x>', "default: the method's", floatOption('--weight-decay'))
    .option('--warmup-epochs <x>', 'linear warm-up before the cosine decay', floatOption('--warmup-epochs'), 1)
    .addOption(
      new Option('--lr-schedule <kind>', 'after the warm-up: cosine decay to 0, or constant').choices(LR_SCHEDULES).default('cosine'),
    )
    .option('--clip-grad-norm <x>', 'clip the global gradient norm (0 = off)', floatOption('--clip-grad-norm'), 0)
    .addOption(new Option('--augment <preset>', "augmentation preset (default: the method's)").choices(AUGMENT_PRESETS))
    .option('--crop-min-scale <x>', 'smallest random-resized-crop area fraction', floatOption('--crop-min-scale', 0.01), 0.2)
    .option(
      '--init <model.onnx>',
      'start from this ONNX image encoder (torch.onnx, sslkit export, …): its graph and weights become the backbone',
    )
    .option('--preprocessing <file.json>', "--init model's preprocessing where its metadata has none (default: ImageNet's mean and std)")
    .option(
      '--init-lr-scale <x>',
      "the imported encoder's learning rate as a share of the heads' (default 0.1)",
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
    .option('--set <key=value>', 'method hyper-parameter, repeatable (see `sslkit methods`)', keyValue, {})
    .option('--limit <n>', 'train on n images only: a fixed random sample, stratified by class', intOption('--limit', 1))
    .option(
      '--test-fraction <x>',
      'a labelled folder without train/ and test/: the share of each class held out for the kNN check, never trained on (0: none, leave-one-out)',
      floatOption('--test-fraction', 0),
      DEFAULT_TEST_FRACTION,
    )
    .option('--seed <n>', 'random seed', intOption('--seed'), 0)
    .addOption(new Option('--device <device>', 'execution provider; falls back to CPU with a log line').choices(DEVICES).default('auto'))
    .option('--threads <n>', 'onnxruntime intra-op threads (0 = one per core)', intOption('--threads'), 0)
    .option('--workers <n>', 'augmentation worker threads', intOption('--workers'), 1)
    .option('--knn-memory <n>', 'train images used as kNN memory in the per-epoch check (0 = off)', intOption('--knn-memory'), 5000)
    .option('--knn-queries <n>', 'test images queried in the per-epoch kNN check', intOption('--knn-queries'), 2000)
    .option('--checkpoint-every <n>', 'steps between checkpoints', intOption('--checkpoint-every', 1), 200)
    .option('--max-steps <n>', 'stop (with a checkpoint) after n steps of this invocation', intOption('--max-steps', 1))
    .option('--no-tune', 'skip measuring conv weight-gradient formulations')
    .option('--out <dir>', 'run folder (config.json, metrics.jsonl, checkpoint.ckpt)')
    .option('--resume <dir>', 'continue the run in this folder from its checkpoint')
    .action(async (f: TrainFlags, cmd: Command) => {
      const out = f.resume ?? f.out;
      if (!out) throw new UserError('--out <dir> is required (or --resume <dir> to continue a run)');
      const base = f.resume ? readRunConfig(f.resume) : undefined;
      if (base) {
        // A run keeps the settings it was trained with; say so rather than ignore a flag.
        const flagOf = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
        const resumable = new Set<string>([...RESUMABLE_KEYS, 'tune', 'resume', 'out']);
        const fixed = Object.keys(f).filter((k) => cmd.getOptionValueSource(k) === 'cli' && !resumable.has(k));
        if (fixed.length)
          throw new UserError(
            `${fixed.map(flagOf).join(', ')} cannot change on --resume: the run keeps the settings in ${f.resume}/config.json; ` +
              `only ${[...RESUMABLE_KEYS].map(flagOf).join(', ')} and --no-tune can. Start a new run with --out to change the others`,
          );
      }
      if (f.init && cmd.getOptionValueSource('backbone') === 'cli')
        throw new UserError('--backbone and --init exclude each other: the --init model is the backbone');
      const input: TrainConfig = TrainConfigSchema.parse({
        ...(base ?? {}),
        method: base?.method ?? f.method,
        data: base?.data ?? f.data,
        dataDir: f.dataDir ?? base?.dataDir,
        backbone: base?.backbone ?? f.backbone,
        width: base?.width ?? f.width,
        convInit: base?.convInit ?? f.convInit,
        epochs: f.epochs ?? base?.epochs ?? 10,
        batchSize: base?.batchSize ?? f.batchSize,
        lr: base?.lr ?? f.lr,
        optimizer: base?.optimizer ?? f.optimizer,
        weightDecay: base?.weightDecay ?? f.weightDecay,
        warmupEpochs: base?.warmupEpochs ?? f.warmupEpochs,
        lrSchedule: base?.lrSchedule ?? f.lrSchedule,
        clipGradNorm: base?.clipGradNorm ?? f.clipGradNorm,
        augment: base?.augment ?? f.augment,
        cropMinScale: base?.cropMinScale ?? f.cropMinScale,
        hp: base?.hp ?? f.set,
        limit: base?.limit ?? f.limit,
        testFraction: base?.testFraction ?? f.testFraction,
        seed: base?.seed ?? f.seed,
        device: f.device,
        threads: f.threads,
        workers: f.workers,
        knnMemory: cmd.getOptionValueSource('knnMemory') === 'cli' ? f.knnMemory : (base?.knnMemory ?? f.knnMemory),
        knnQueries: cmd.getOptionValueSource('knnQueries') === 'cli' ? f.knnQueries : (base?.knnQueries ?? f.knnQueries),
        checkpointEvery: f.checkpointEvery,
        maxSteps: f.maxSteps,
        tuneConv: f.tune,
        teacher: base?.teacher ?? f.teacher,
        init: base?.init ?? f.init,
        preprocessing: base?.preprocessing ?? f.preprocessing,
        initLrScale: base?.initLrScale ?? f.initLrScale,
        freeze: base?.freeze ?? f.freeze,
        insertBatchnorm: base?.insertBatchnorm ?? f.insertBatchnorm,
        imageSize: base?.imageSize ?? f.imageSize,
        out,
      });
      getMethod(input.method);
      const progress = trainingProgress();
      let interrupted = false;
      const onSigint = () => {
        if (interrupted) process.exit(130);
        interrupted = true;
        progress.log('interrupt: finishing this step and writing a checkpoint (Ctrl-C again to quit now)');
      };
      process.on('SIGINT', onSigint);
      try {
        const r = await train(input, { log: progress.log, onStep: progress.onStep, stopRequested: () => interrupted }, f.resume);
        progress.stop();
        const knn =
          r.knnTop1 === null
            ? ''
            : `, kNN top-1 ${(100 * r.knnTop1).toFixed(2)}%` +
              (r.initialKnnTop1 !== null ? ` (${input.init ? 'start' : 'random init'} ${(100 * r.initialKnnTop1).toFixed(2)}%)` : '');
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
