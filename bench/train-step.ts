/**
 * bench/train-step: one SimCLR training step (forward, backward, AdamW update, one ONNX graph) on
 * the reference convnet (batch 256 × 2 views, 32×32×3) and on ResNet-18 (128 × 2), in views/s and peak
 * RSS, beside the same step in each PyTorch peer (Debian's python3-torch by default; --python again
 * for another interpreter, e.g. a virtual environment with the newest torch wheel) measured in the
 * same run. The ratio column is against the fastest peer of each row.
 *
 *   npx tsx bench/train-step.ts [--threads 2] [--steps 8] [--convnet-batch 256] [--resnet-batch 128] [--profile]
 *                               [--python /usr/bin/python3 --python .venv/bin/python] [--photo]
 *
 * --photo adds the photo-sized steps of issue 31 after the 32-pixel rows (torchvision's ImageNet
 * ResNet-18 and ResNet-50, sslkit's tv-resnet18/50, at 96 and 224 pixels).
 *
 * --nchwc adds, per row, the same step with its convolutions on onnxruntime's blocked kernels
 * where each measures faster (train/engine/nchwc.ts; issue 37), timed right after the plain one.
 *
 * --profile adds, per step, where its time goes: onnxruntime's profiler summed by operator type
 * (train/engine/profile.ts), from a separate profiled session (profiling slows the run it measures).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Program } from '../train/engine/program.js';
import { nchwcBlockSize } from '../train/engine/nchwc.js';
import { buildSimclrStep } from './simclr-step.js';
import { tuneConvGrads } from '../train/engine/conv-grad-tuner.js';
import { ConvGradPlanner } from '../train/engine/conv-grad.js';
import { profileFile, profileTable, summariseProfile } from '../train/engine/profile.js';

const { values: args } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    steps: { type: 'string', default: '8' },
    'convnet-batch': { type: 'string', default: '256' },
    'resnet-batch': { type: 'string', default: '128' },
    profile: { type: 'boolean', default: false },
    python: { type: 'string', multiple: true, default: ['/usr/bin/python3'] },
    photo: { type: 'boolean', default: false },
    nchwc: { type: 'boolean', default: false },
  },
});
const threads = Number(args.threads);
const steps = Number(args.steps);
// The process's peak so far: the convnet runs first, so ResNet-18's figure is its own (larger) peak.
const rssMb = () => process.resourceUsage().maxRSS / 1024;

async function sslkitStep(backbone: string, batch: number, size: number, nchwcBlock: number | null = null) {
  const convGrads = new ConvGradPlanner();
  buildSimclrStep({ backbone, batch, channels: 3, size, convGrads });
  await tuneConvGrads(convGrads, { threads, log: (l) => console.error(`  ${l}`) });
  const { g, feeds, nParams } = buildSimclrStep({ backbone, batch, channels: 3, size, convGrads });
  const prog = await Program.compile(g, {
    device: 'cpu',
    threads,
    nchwc: nchwcBlock ? { block: nchwcBlock, tune: { threads } } : undefined,
  });
  const times: number[] = [];
  for (let i = 0; i < steps + 2; i++) {
    const t = performance.now();
    await prog.run(feeds);
    times.push(performance.now() - t);
  }
  // Before the profiled session below, which would add its own peak.
  const rss = rssMb();
  await prog.release();
  const timed = times.slice(2).sort((a, b) => a - b);
  const ms = timed[Math.floor(steps / 2)];
  let profile: string | null = null;
  if (args.profile) {
    const prefix = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sslkit-profile-')), `${backbone}`);
    const profiled = await Program.compile(g, { device: 'cpu', threads, profile: prefix });
    for (let i = 0; i < 3; i++) await profiled.run(feeds); // the first is left out of the summary
    profiled.endProfiling();
    await profiled.release();
    const file = profileFile(prefix);
    profile = `${profileTable(summariseProfile(file).ops)}
(trace: ${file})`;
  }
  return { ms, min: timed[0], max: timed.at(-1)!, rss, imgS: (2 * batch) / (ms / 1000), nParams, nodes: g.liveNodes().length, profile };
}

type TorchResult = { ms: number; min_ms: number; max_ms: number; img_s: number; rss_mb: number; torch: string };
function torchStep(python: string, backbone: string, batch: number, size: number): TorchResult | null {
  try {
    const out = execFileSync(
      python,
      [
        new URL('./torch_simclr_step.py', import.meta.url).pathname,
        backbone,
        String(batch),
        String(size),
        '3',
        String(threads),
        String(steps),
        '256',
      ],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    return JSON.parse(out.trim().split('\n').pop()!);
  } catch {
    return null;
  }
}

console.log(`# bench/train-step — SimCLR step, 2 views, AdamW, ${threads} threads, median of ${steps} steps`);
console.log(
  `# machine: ${(await import('node:os')).cpus()[0].model}, ${(await import('node:os')).cpus().length} cores; ${new Date().toISOString()}`,
);
const pythons = args.python!;
// Printed before the first row: each peer's column names the torch version its first run reported.
const printHeader = (peers: (TorchResult | null)[]) => {
  const header = [
    'step',
    'sslkit (fastest–slowest)',
    'views/s',
    'peak RSS',
    ...peers.flatMap((t) => [`PyTorch ${t?.torch ?? '?'} (fastest–slowest)`, 'views/s', 'peak RSS']),
    'sslkit/fastest PyTorch',
  ];
  console.log(`| ${header.join(' | ')} |\n|${header.map(() => '---').join('|')}|`);
};
const profiles: string[] = [];
const rows: [string, number, number][] = [
  ['convnet', Number(args['convnet-batch']), 32],
  ['resnet18', Number(args['resnet-batch']), 32],
];
if (args.photo) rows.push(['tv-resnet18', 32, 96], ['tv-resnet50', 16, 96], ['tv-resnet18', 8, 224], ['tv-resnet50', 4, 224]);
for (const [backbone, batch, size] of rows) {
  const s = await sslkitStep(backbone, batch, size);
  const peers = pythons.map((p) => torchStep(p, backbone, batch, size));
  if (backbone === rows[0][0] && size === rows[0][2]) printHeader(peers);
  const spread = (ms: number, min: number, max: number) => `${ms.toFixed(0)} ms (${min.toFixed(0)}–${max.toFixed(0)})`;
  const fastest = Math.max(...peers.map((t) => t?.img_s ?? 0));
  const row = [
    `${backbone} (${(s.nParams / 1e6).toFixed(2)}M params) × ${batch}×2 at ${size}²`,
    spread(s.ms, s.min, s.max),
    `${s.imgS.toFixed(0)}`,
    `${s.rss.toFixed(0)} MB`,
    ...peers.flatMap((t) =>
      t ? [spread(t.ms, t.min_ms, t.max_ms), `${t.img_s.toFixed(0)}`, `${t.rss_mb.toFixed(0)} MB`] : ['n/a', 'n/a', 'n/a'],
    ),
    fastest > 0 ? `${(s.imgS / fastest).toFixed(2)}×` : 'n/a',
  ];
  console.log(`| ${row.join(' | ')} |`);
  if (args.nchwc) {
    const block = await nchwcBlockSize();
    if (!block) console.log('  (NCHWc: no blocked kernels on this processor or build)');
    else {
      const b = await sslkitStep(backbone, batch, size, block);
      console.log(`  NCHWc (block ${block}): ${spread(b.ms, b.min, b.max)}, ${(s.ms / b.ms).toFixed(2)}× the plain step`);
    }
  }
  if (s.profile) profiles.push(`\n## Where ${backbone}'s step goes (onnxruntime profiler, per step)\n\n${s.profile}`);
}
for (const p of profiles) console.log(p);
for (const p of pythons) if (!fs.existsSync(p)) console.log(`(PyTorch peer ${p} not found: apt-get install python3-torch)`);
