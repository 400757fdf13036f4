/**
 * bench/gpu-step: the reference SimCLR training step and batch-256 inference on every execution
 * provider that loads here (CPU, WebGPU, CUDA), for the GPU machine. Prints one JSON line per
 * provider. Run by bench/gpu-check.sh beside PyTorch on the same GPU.
 */
import { Graph, type Param } from '../train/engine/graph.js';
import { Ctx } from '../train/engine/nn.js';
import { grad } from '../train/engine/autodiff.js';
import { buildUpdate, DEFAULT_OPTIMIZER } from '../train/engine/optim.js';
import { Program } from '../train/engine/program.js';
import { makeBackbone } from '../train/backbones/index.js';
import { simclr } from '../train/methods/simclr.js';
import { buildEncoderGraph } from '../train/encoder.js';
import { resolveProvider, type Device } from '../core/runtime/session.js';

const BATCH = Number(process.env.BATCH ?? 128);
const STEPS = Number(process.env.STEPS ?? 10);

function stepGraph(fusedBatchNorm: boolean) {
  const g = new Graph('train');
  const ctx = new Ctx(g, { training: true, seed: 0, fusedBatchNorm });
  const views = [0, 1].map((i) => g.input(`view${i}`, [BATCH, 3, 32, 32]));
  const { loss } = simclr.build(ctx, makeBackbone('convnet'), views, { temperature: 0.2, proj_hidden: 256, proj_out: 128 });
  const trainable = [...g.params].filter(([, p]) => p.role !== 'buffer') as [string, Param][];
  const upd = buildUpdate(
    g,
    trainable,
    grad(
      loss,
      trainable.map(([, p]) => p.tensor),
    ),
    { ...DEFAULT_OPTIMIZER, name: 'adamw' },
  );
  g.output(loss, 'loss');
  for (const [n, t] of upd.params) g.output(t, `next.${n}`);
  for (const [n, s] of upd.state) g.output(s.next, `next.${n}`);
  const feeds: Record<string, Float32Array | number> = { lr: 1e-3, adam_bc1: 0.1, adam_bc2: 0.001 };
  for (const [n, p] of g.params) feeds[n] = p.init.data as Float32Array;
  for (const [n, s] of upd.state) feeds[n] = new Float32Array(s.input.size);
  for (const v of views) feeds[v.name] = Float32Array.from({ length: v.size }, (_, i) => Math.sin(i * 0.37));
  return { g, feeds };
}

async function median(prog: Program, feeds: Record<string, Float32Array | number>, runs: number) {
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
  const { g, feeds } = stepGraph(provider !== 'webgpu');
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
