/**
 * bench/gpu-step: the reference SimCLR training step and batch-256 inference on every execution
 * provider that loads here (CPU, WebGPU, CUDA), for the GPU machine. Prints one JSON line per
 * provider. Run by bench/gpu-check.sh beside PyTorch on the same GPU.
 */
import { Program, type Feeds } from '../train/engine/program.js';
import { buildSimclrStep } from './simclr-step.js';
import { buildEncoderGraph } from '../train/encoder.js';
import { resolveProvider, type Device } from '../core/runtime/session.js';

const BATCH = Number(process.env.BATCH ?? 128);
const STEPS = Number(process.env.STEPS ?? 10);

async function median(prog: Program, feeds: Feeds, runs: number) {
  const times: number[] = [];
  let loss = NaN;
  for (let i = 0; i < runs + 3; i++) {
    const t = performance.now();
    const out = await prog.run(feeds);
    times.push(performance.now() - t);
    if (out.loss) loss = (out.loss as Float32Array)[0];
  }
  return { ms: times.slice(3).sort((a, b) => a - b)[Math.floor(runs / 2)], loss };
}

for (const device of (process.env.DEVICES ?? 'cpu,webgpu,cuda').split(',') as Device[]) {
  const row: Record<string, unknown> = { device };
  const provider = await resolveProvider(device, (l) => (row.log = l));
  const { g, feeds } = buildSimclrStep({ backbone: 'convnet', batch: BATCH, channels: 3, size: 32, fusedBatchNorm: provider !== 'webgpu' });
  try {
    const prog = await Program.compile(g, { device });
    row.provider = prog.provider;
    const s = await median(prog, feeds, STEPS);
    row.step_ms = +s.ms.toFixed(1);
    row.train_img_s = Math.round((2 * BATCH) / (s.ms / 1000));
    row.loss = s.loss;
    await prog.release();
  } catch (e) {
    row.step_error = (e as Error).message.split('\n')[0].slice(0, 300);
  }
  try {
    const values = new Map([...g.params].map(([n, p]) => [n, p.init.data as Float32Array]));
    const enc = buildEncoderGraph({ backbone: 'convnet', widthMult: 1, channels: 3, height: 32, width: 32 }, values, 256).g;
    const inf = await Program.compile(enc, { device });
    const r = await median(inf, { pixel_values: new Float32Array(256 * 3 * 32 * 32).fill(0.1) }, STEPS);
    row.infer_img_s = Math.round(256 / (r.ms / 1000));
    await inf.release();
  } catch (e) {
    row.infer_error = (e as Error).message.split('\n')[0].slice(0, 300);
  }
  console.log(JSON.stringify(row));
}
