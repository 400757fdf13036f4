/**
 * bench/nchwc-probe (issue 37): can a training graph use onnxruntime's blocked (NCHWc) convolution
 * for weights that change every step? onnxruntime's graph optimiser only rewrites Conv nodes whose
 * weights are constant initialisers; this builds the rewrite by hand: `ReorderInput` → `Conv` of
 * the `com.microsoft.nchwc` domain → `ReorderOutput`, with the weight fed at run time and re-laid
 * inside the graph from OIHW to MLAS's OIHWBiBo (train/engine/nchwc.ts blockConvs, the rewrite
 * `sslkit train --nchwc` uses), as MlasReorderFilterOIHWBiBo does for constant weights.
 *
 * The block size B is MLAS's (MlasNchwcGetBlockSize: 8 with AVX2, 16 with AVX-512), which no API
 * exposes: nchwcBlockSize() finds it by experiment, as the one whose result equals a plain Conv's.
 * Prints, per convolution shape of the training networks, the plain Conv's forward time and the
 * blocked one's (median of `--reps`), both measured in this process.
 *
 *   npx tsx bench/nchwc-probe.ts [--threads 2] [--reps 10]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { medianMs } from '../train/engine/profile.js';
import { encodeModel, type AttributeMsg, type ModelMsg } from '../core/onnx/onnx-proto.js';
import { blockConvs, nchwcBlockSize } from '../train/engine/nchwc.js';

const { values: args } = parseArgs({ options: { threads: { type: 'string', default: '2' }, reps: { type: 'string', default: '10' } } });
const threads = Number(args.threads);
const reps = Number(args.reps);

const ints = (name: string, v: number[]): AttributeMsg => ({ name, type: 7, ints: v });
const valueInfo = (name: string, dims: number[]) => ({
  name,
  type: { tensor_type: { elem_type: 1, shape: { dim: dims.map((d) => ({ dim_value: d })) } } },
});

interface ConvShape {
  n: number;
  c: number;
  hw: number;
  o: number;
}

/** A 3×3, pad 1 convolution of X [n, c, hw, hw] with W [o, c, 3, 3], and its tensors' dims. */
function convModel(s: ConvShape): { model: ModelMsg; dims: Map<string, number[]> } {
  const dims = new Map([
    ['X', [s.n, s.c, s.hw, s.hw]],
    ['W', [s.o, s.c, 3, 3]],
    ['Y', [s.n, s.o, s.hw, s.hw]],
  ]);
  const attrs = [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1]), ints('strides', [1, 1])];
  const model: ModelMsg = {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'conv',
      node: [{ op_type: 'Conv', input: ['X', 'W'], output: ['Y'], attribute: attrs }],
      initializer: [],
      input: [valueInfo('X', dims.get('X')!), valueInfo('W', dims.get('W')!)],
      output: [valueInfo('Y', dims.get('Y')!)],
    },
  };
  return { model, dims };
}

const session = (m: ModelMsg) => ort.InferenceSession.create(encodeModel(m), { intraOpNumThreads: threads });

function random(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1);
}

function relErr(y: Float32Array, ref: Float32Array): number {
  let err = 0;
  let mag = 0;
  for (let i = 0; i < y.length; i++) {
    err = Math.max(err, Math.abs(y[i] - ref[i]));
    mag = Math.max(mag, Math.abs(ref[i]));
  }
  return err / mag;
}

// The convnet's stages at batch 256 × 2 views (32², 16², 8²), ResNet-18's last stages at 128 × 2 (8², 4²).
const SHAPES: ConvShape[] = [
  { n: 512, c: 32, hw: 32, o: 32 },
  { n: 512, c: 64, hw: 16, o: 64 },
  { n: 512, c: 128, hw: 8, o: 128 },
  { n: 256, c: 256, hw: 8, o: 256 },
  { n: 256, c: 512, hw: 4, o: 512 },
];

console.log(
  `# bench/nchwc-probe — 3×3 convolution forward, ${threads} threads, median of ${reps}; ${os.cpus()[0].model}; ${new Date().toISOString()}`,
);
const block = await nchwcBlockSize();
if (!block) {
  console.log('NCHWc kernels unavailable on this processor or build');
  process.exit(0);
}
console.log(`(MLAS NCHWc block size on this processor: ${block}, found by experiment)`);
console.log('| shape | plain Conv | NCHWc Conv, weight re-laid in the graph | plain/NCHWc | max rel. difference |\n|---|---|---|---|---|');
for (const s of SHAPES) {
  const feeds = {
    X: new ort.Tensor('float32', random(s.n * s.c * s.hw * s.hw, 1), [s.n, s.c, s.hw, s.hw]),
    W: new ort.Tensor('float32', random(s.o * s.c * 9, 2), [s.o, s.c, 3, 3]),
  };
  const { model, dims } = convModel(s);
  const plain = await session(model);
  const ref = (await plain.run(feeds)).Y.data as Float32Array;
  const plainMs = await medianMs(() => plain.run(feeds), reps);
  await plain.release();
  const blocked = await session(blockConvs(model, dims, block));
  const err = relErr((await blocked.run(feeds)).Y.data as Float32Array, ref);
  const ms = await medianMs(() => blocked.run(feeds), reps);
  await blocked.release();
  console.log(
    `| ${s.n}×${s.c}×${s.hw}² → ${s.o} | ${plainMs.toFixed(1)} ms | ${ms.toFixed(1)} ms | ${(plainMs / ms).toFixed(2)}× | ${err.toExponential(1)} |`,
  );
}
