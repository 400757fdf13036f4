/**
 * bench/nchwc-probe (issue 37): can a training graph use onnxruntime's blocked (NCHWc) convolution
 * for weights that change every step? onnxruntime's graph optimiser only rewrites Conv nodes whose
 * weights are constant initialisers; this builds the rewrite by hand: `ReorderInput` → `Conv` of
 * the `com.microsoft.nchwc` domain → `ReorderOutput`, with the weight fed at run time and re-laid
 * inside the graph from OIHW to MLAS's OIHWBiBo (Reshape [O/B, B, I/B, B, kh, kw], Transpose
 * [0, 2, 4, 5, 3, 1], Reshape back), as MlasReorderFilterOIHWBiBo does for constant weights.
 *
 * The block size B is MLAS's (MlasNchwcGetBlockSize: 8 with AVX2, 16 with AVX-512), which no API
 * exposes: it is found here by experiment, as the one whose result equals the plain Conv's.
 * Prints, per convolution shape of the training networks, the plain Conv's forward time and the
 * blocked one's (median of `--reps`), both measured in this process.
 *
 *   npx tsx bench/nchwc-probe.ts [--threads 2] [--reps 10]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { medianMs } from '../train/engine/profile.js';
import { encodeModel, type AttributeMsg, type ModelMsg, type NodeMsg, type TensorMsg } from '../core/onnx/onnx-proto.js';

const { values: args } = parseArgs({ options: { threads: { type: 'string', default: '2' }, reps: { type: 'string', default: '10' } } });
const threads = Number(args.threads);
const reps = Number(args.reps);
const NCHWC = 'com.microsoft.nchwc';

const ints = (name: string, v: number[]): AttributeMsg => ({ name, type: 7, ints: v });
const int = (name: string, v: number): AttributeMsg => ({ name, type: 2, i: v });
const valueInfo = (name: string, dims: number[]) => ({
  name,
  type: { tensor_type: { elem_type: 1, shape: { dim: dims.map((d) => ({ dim_value: d })) } } },
});
const int64s = (name: string, v: number[]): TensorMsg => ({ name, dims: [v.length], data_type: 7, int64_data: v });

interface ConvShape {
  n: number;
  c: number;
  hw: number;
  o: number;
}

/** A 3×3, pad 1 convolution of X [n, c, hw, hw] with W [o, c, 3, 3], plain or blocked with block size `block`. */
function convModel(s: ConvShape, block: number | null): ModelMsg {
  const attrs = [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1]), ints('strides', [1, 1])];
  const node: NodeMsg[] = [];
  const initializer: TensorMsg[] = [];
  if (block === null) node.push({ op_type: 'Conv', input: ['X', 'W'], output: ['Y'], attribute: attrs });
  else {
    initializer.push(int64s('blocked6', [s.o / block, block, s.c / block, block, 3, 3]), int64s('oihw', [s.o, s.c, 3, 3]));
    node.push(
      { op_type: 'ReorderInput', domain: NCHWC, input: ['X'], output: ['Xb'] },
      { op_type: 'Reshape', input: ['W', 'blocked6'], output: ['W6'] },
      { op_type: 'Transpose', input: ['W6'], output: ['W6t'], attribute: [ints('perm', [0, 2, 4, 5, 3, 1])] },
      { op_type: 'Reshape', input: ['W6t', 'oihw'], output: ['Wb'] },
      { op_type: 'Conv', domain: NCHWC, input: ['Xb', 'Wb'], output: ['Yb'], attribute: attrs },
      { op_type: 'ReorderOutput', domain: NCHWC, input: ['Yb'], output: ['Y'], attribute: [int('channels', s.o)] },
    );
  }
  return {
    ir_version: 8,
    opset_import: [
      { domain: '', version: 17 },
      { domain: NCHWC, version: 1 },
    ],
    graph: {
      name: 'conv',
      node,
      initializer,
      input: [valueInfo('X', [s.n, s.c, s.hw, s.hw]), valueInfo('W', [s.o, s.c, 3, 3])],
      output: [valueInfo('Y', [s.n, s.o, s.hw, s.hw])],
    },
  };
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
let block: number | null = null;
console.log('| shape | plain Conv | NCHWc Conv, weight re-laid in the graph | plain/NCHWc | max rel. difference |\n|---|---|---|---|---|');
for (const s of SHAPES) {
  const feeds = {
    X: new ort.Tensor('float32', random(s.n * s.c * s.hw * s.hw, 1), [s.n, s.c, s.hw, s.hw]),
    W: new ort.Tensor('float32', random(s.o * s.c * 9, 2), [s.o, s.c, 3, 3]),
  };
  const plain = await session(convModel(s, null));
  const ref = (await plain.run(feeds)).Y.data as Float32Array;
  const plainMs = await medianMs(() => plain.run(feeds), reps);
  await plain.release();
  // The block size: the first candidate whose result is the plain Conv's.
  const candidates: number[] = block ? [block] : [4, 8, 16, 32];
  for (const b of candidates) {
    if (s.c % b || s.o % b) continue;
    const blocked = await session(convModel(s, b)).catch(
      (e: Error) => (console.log(`NCHWc kernels unavailable: ${e.message.split('\n')[0]}`), null),
    );
    if (!blocked) process.exit(0);
    const err = relErr((await blocked.run(feeds)).Y.data as Float32Array, ref);
    if (err > 1e-4) {
      await blocked.release();
      continue;
    }
    if (block === null) console.log(`(MLAS NCHWc block size on this processor: ${b}, found by experiment)`);
    block = b;
    const ms = await medianMs(() => blocked.run(feeds), reps);
    await blocked.release();
    console.log(
      `| ${s.n}×${s.c}×${s.hw}² → ${s.o} | ${plainMs.toFixed(1)} ms | ${ms.toFixed(1)} ms | ${(plainMs / ms).toFixed(2)}× | ${err.toExponential(1)} |`,
    );
    break;
  }
}
