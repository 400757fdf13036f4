/**
 * Import fidelity (`sslkit train --init`): torchvision's ResNet-18 and MobileNetV3-Small with
 * random weights, exported by torch.onnx (Debian's python3-torch), become engine graphs whose
 * forward pass equals onnxruntime on the original file, whose gradients of a fixed loss with
 * respect to the input and to every parameter equal PyTorch autograd on the same module (eval and
 * train mode), and whose SGD step moves the parameters as torch.optim.SGD does.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { Graph, tensorData, type Param, type Tensor } from '../../train/engine/graph.js';
import { Ctx } from '../../train/engine/nn.js';
import { grad } from '../../train/engine/autodiff.js';
import { buildUpdate, DEFAULT_OPTIMIZER } from '../../train/engine/optim.js';
import { Program } from '../../train/engine/program.js';
import { StatefulProgram, StateSpec } from '../../train/engine/stateful.js';
import * as o from '../../train/engine/ops.js';
import { buildImported, readImported } from '../../train/backbones/onnx-import.js';
import { readTensor } from '../../core/onnx/tensor.js';
import { makeBackbone } from '../../train/backbones/index.js';
import { Embedder } from '../../train/encoder.js';
import { calibrateInsertedBatchNorm } from '../../train/init.js';
import { tmpDir } from '../helpers.js';
import { spawnSync } from 'node:child_process';
import { loadCheckpoint } from '../../train/checkpoint.js';
import { OnnxEncoder } from '../../core/runtime/onnx-encoder.js';
import { inspectModel } from '../../core/onnx/inspect.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.resolve(import.meta.dirname, 'torch/import_reference.py');
const SIZE = 64;
const BATCH = 4;
let dir = '';
let manifest: {
  models: Record<string, { params: string[]; buffers: string[]; dim: number }>;
  state_dicts: Record<string, Record<string, number[]>>;
};

const f32 = (file: string) => {
  const b = fs.readFileSync(path.join(dir, file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
};

/** ‖a − b‖ / ‖b‖ (or the absolute norm of the difference where b is all zeros). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return n > 0 ? Math.sqrt(d / n) : Math.sqrt(d);
}

beforeAll(() => {
  dir = tmpDir('sslkit-import-');
  // Debian's python3-torch and python3-torchvision (.ci/run installs them).
  execFileSync(PYTHON, [SCRIPT, dir, String(SIZE)], { stdio: ['ignore', 'ignore', 'pipe'] });
  manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
}, 120_000);

/** The imported model on a fixed input in one graph: outputs y and (optionally) gradients of sum(y·r). */
async function runImported(file: string, training: boolean, withGrads: boolean) {
  const m = readImported(file);
  const g = new Graph('train');
  const ctx = new Ctx(g, { training, fusedBatchNorm: true });
  const x = g.input('x', [BATCH, 3, SIZE, SIZE]);
  const y = buildImported(m, ctx, x).features;
  const out: Record<string, Tensor> = { y };
  const params = [...g.params].filter(([, p]) => p.role !== 'buffer');
  if (withGrads) {
    const r = g.constant(tensorData('float32', y.dims, f32(`${path.basename(file).split('.')[0]}.r.bin`)), 'r');
    const loss = o.reduceSum(o.mul(y, r));
    const grads = grad(loss, [x, ...params.map(([, p]) => p.tensor)]);
    out['grad.input'] = grads[0];
    params.forEach(([name], i) => (out[`grad.${name}`] = grads[i + 1]));
  }
  for (const [name, t] of Object.entries(out)) g.output(t, name);
  for (const [name, t] of ctx.bufferUpdates) g.output(t, `buffer.${name}`);
  const prog = await Program.compile(g, { threads: 2 });
  const feeds: Record<string, Float32Array> = { x: f32('x.bin') };
  for (const [name, p] of g.params) feeds[name] = p.init.data as Float32Array;
  try {
    return { res: await prog.run(feeds), params: params.map(([n]) => n), buffers: [...ctx.bufferUpdates.keys()] };
  } finally {
    await prog.release();
  }
}

describe('importing torch.onnx encoders into the training engine', () => {
  for (const model of ['resnet18', 'mobilenet_v3_small']) {
    for (const form of ['bn', 'folded']) {
      it(`${model} (${form === 'bn' ? 'BatchNorm kept' : 'BatchNorm folded'}): the imported forward equals onnxruntime on the file`, async () => {
        const file = path.join(dir, `${model}.${form}.onnx`);
        const session = await ort.InferenceSession.create(file);
        const want = (await session.run({ images: new ort.Tensor('float32', f32('x.bin'), [BATCH, 3, SIZE, SIZE]) })).features
          .data as Float32Array;
        await session.release();
        const { res } = await runImported(file, false, false);
        const got = res.y as Float32Array;
        const scale = Math.max(...Array.from(want, Math.abs));
        let worst = 0;
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / scale);
        expect(worst).toBeLessThan(1e-5);
        // And PyTorch's own eval-mode output.
        expect(relErr(got, f32(`${model}.eval.y.bin`))).toBeLessThan(1e-5);
      }, 60_000);
    }

    for (const mode of ['eval', 'train'] as const) {
      it(`${model}, ${mode} mode: gradients for the input and every parameter equal PyTorch autograd`, async () => {
        const { res, params, buffers } = await runImported(path.join(dir, `${model}.bn.onnx`), mode === 'train', true);
        const entry = manifest.models[model];
        expect(params.sort()).toEqual(entry.params.slice().sort());
        expect(relErr(res.y as Float32Array, f32(`${model}.${mode}.y.bin`))).toBeLessThan(1e-5);
        const names = ['input', ...params];
        const got = names.map((n) => res[`grad.${n}`] as Float32Array);
        const want = names.map((n) => f32(`${model}.${mode}.grad.${n}.bin`));
        // Some gradients are zero in exact arithmetic (a BN shift followed by a train-mode BN):
        // both sides are float noise there, so they are held to a tolerance of the largest gradient.
        const norm = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0));
        const floor = 1e-6 * Math.max(...want.map(norm));
        const worst: [string, number][] = names.map((n, i) => [
          n,
          norm(want[i]) < floor ? norm(got[i]) / floor / 1e4 : relErr(got[i], want[i]),
        ]);
        worst.sort((a, b) => b[1] - a[1]);
        expect(
          worst[0][1],
          `worst: ${worst
            .slice(0, 8)
            .map(([n, e]) => `${n} ${e.toExponential(1)}`)
            .join(', ')}`,
        ).toBeLessThan(1e-4);
        if (mode === 'train') {
          // Running statistics move as PyTorch's do (momentum 0.1, unbiased variance).
          expect(buffers.sort()).toEqual(entry.buffers.slice().sort());
          for (const b of buffers)
            expect(relErr(res[`buffer.${b}`] as Float32Array, f32(`${model}.train.buffer.${b}.bin`)), b).toBeLessThan(1e-5);
        }
      }, 120_000);
    }

    it(`${model}: one SGD step (momentum, weight decay) moves every parameter as torch.optim.SGD does`, async () => {
      const m = readImported(path.join(dir, `${model}.bn.onnx`));
      const g = new Graph('train');
      const ctx = new Ctx(g, { training: true, fusedBatchNorm: true });
      const x = g.input('x', [BATCH, 3, SIZE, SIZE]);
      const y = buildImported(m, ctx, x).features;
      const loss = o.reduceSum(o.mul(y, g.constant(tensorData('float32', y.dims, f32(`${model}.r.bin`)), 'r')));
      const trainable = [...g.params].filter(([, p]) => p.role !== 'buffer') as [string, Param][];
      const grads = grad(
        loss,
        trainable.map(([, p]) => p.tensor),
      );
      const upd = buildUpdate(g, trainable, grads, { ...DEFAULT_OPTIMIZER, name: 'sgd', momentum: 0.9, weightDecay: 1e-4 });
      const spec = new StateSpec(g);
      spec.update(upd, () => ({ lr: 0.1, peakLr: 0.1 }));
      for (const [name] of g.params) spec.hold(name);
      const prog = await StatefulProgram.compile(spec, { threads: 2 });
      await prog.step({ x: f32('x.bin') }, 0);
      await prog.release();
      const moves = trainable.map(([name]) => {
        const before = g.params.get(name)!.init.data as Float32Array;
        // Compare the moves, not the values: a step is small against the weights.
        const moved = (a: Float32Array) => Float32Array.from(a, (v, i) => v - before[i]);
        return [moved(prog.state.get(name)!), moved(f32(`${model}.sgd.${name}.bin`))];
      });
      const norm = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0));
      // As for the gradients: moves that are zero in exact arithmetic are held to the largest move.
      const floor = 1e-6 * Math.max(...moves.map(([, want]) => norm(want)));
      let worst = 0;
      for (const [got, want] of moves) worst = Math.max(worst, norm(want) < floor ? norm(got) / floor / 1e4 : relErr(got, want));
      expect(worst).toBeLessThan(1e-4);
    }, 120_000);
  }

  for (const model of ['convnext_tiny', 'vit_tiny']) {
    it(`${model} (no BatchNorm; torch.onnx's Shape arithmetic for the ViT): forward equals onnxruntime, eval-mode gradients equal PyTorch`, async () => {
      const file = path.join(dir, `${model}.onnx`);
      const session = await ort.InferenceSession.create(file);
      const want = (await session.run({ images: new ort.Tensor('float32', f32('x.bin'), [BATCH, 3, SIZE, SIZE]) })).features
        .data as Float32Array;
      await session.release();
      const { res, params } = await runImported(file, false, true);
      expect(relErr(res.y as Float32Array, want)).toBeLessThan(1e-5);
      const theirs = manifest.models[model].params;
      expect(params).toHaveLength(theirs.length);
      const named = params.filter((n) => theirs.includes(n));
      const worst = ['input', ...named]
        .map((n): [string, number] => [n, relErr(res[`grad.${n}`] as Float32Array, f32(`${model}.eval.grad.${n}.bin`))])
        .sort((a, b) => b[1] - a[1]);
      expect(worst[0][1], `worst: ${worst[0][0]}`).toBeLessThan(1e-4);
      // torch.onnx stores a Linear weight that MatMul reads transposed, under a new name: its gradient
      // is the transpose of the module parameter's, and each must find its own.
      const left = theirs.filter((n) => !params.includes(n));
      for (const n of params.filter((p) => !theirs.includes(p))) {
        const ours = res[`grad.${n}`] as Float32Array;
        const [rows, cols] = [...readImported(file).initializers.get(n)!.dims].map(Number);
        const transposed = Float32Array.from(ours, (_, i) => ours[(i % rows) * cols + Math.floor(i / rows)]);
        const at = left.findIndex((t) => {
          const g = f32(`${model}.eval.grad.${t}.bin`);
          return g.length === ours.length && relErr(transposed, g) < 1e-4;
        });
        expect(at, `${n}: no module parameter has the transposed gradient`).toBeGreaterThanOrEqual(0);
        left.splice(at, 1);
      }
      expect(left).toEqual([]);
    }, 120_000);
  }

  it('--insert-batchnorm: a folded ResNet-18 gets BatchNorms that start as the identity, then take the data statistics and compute the same in train mode', async () => {
    const file = path.join(dir, 'resnet18.folded.onnx');
    const session = await ort.InferenceSession.create(file);
    const want = (await session.run({ images: new ort.Tensor('float32', f32('x.bin'), [BATCH, 3, SIZE, SIZE]) })).features
      .data as Float32Array;
    await session.release();
    const spec = { backbone: `onnx+bn:${file}`, widthMult: 1, channels: 3, height: SIZE, width: SIZE };
    const embed = async (values: Map<string, Float32Array>) => {
      const e = await Embedder.create(spec, values, { batch: BATCH });
      try {
        return await e.embed(f32('x.bin'), BATCH);
      } finally {
        await e.release();
      }
    };
    expect(relErr(await embed(new Map()), want)).toBeLessThan(1e-5);
    // Calibrated on these very images, the train-mode (batch statistics) forward is the file's function too.
    const calibrated = await calibrateInsertedBatchNorm(spec, new Map(), f32('x.bin'), BATCH);
    const inserted = [...calibrated.keys()].filter((k) => k.endsWith('.bn.weight'));
    expect(inserted).toHaveLength(20);
    expect(relErr(await embed(calibrated), want)).toBeLessThan(1e-5);
    const g = new Graph('infer');
    const ctx = new Ctx(g, { training: true, values: calibrated, fusedBatchNorm: false });
    g.output(makeBackbone(spec.backbone).build(ctx, g.input('x', [BATCH, 3, SIZE, SIZE])).features, 'y');
    const prog = await Program.compile(g, { threads: 2 });
    const trainMode = (await prog.run({ x: f32('x.bin') })).y as Float32Array;
    await prog.release();
    expect(relErr(trainMode, want)).toBeLessThan(1e-3);
  });

  it("--freeze's prefix holds a parameter by the nodes that read it, not by the Identity that torch.onnx names it with", () => {
    // MobileNetV3's export starts with the Identity aliases of equal SE biases (features.11's among them).
    const file = path.join(dir, 'mobilenet_v3_small.bn.onnx');
    const m = readImported(file);
    const alias = m.model.graph.node.findIndex((n) => n.op_type === 'Identity' && n.output[0] === 'features.11.block.2.fc2.bias');
    const firstConv = m.model.graph.node.find((n) => n.op_type === 'Conv')!;
    expect(alias).toBeLessThan(m.model.graph.node.indexOf(firstConv));
    const frozen = makeBackbone(`onnx:${file}`).imported!.parametersUpTo(firstConv.name!);
    expect(frozen).toContain('features.0.0.weight');
    expect(frozen).not.toContain('features.11.block.2.fc2.bias');
    expect(makeBackbone(`onnx:${file}`).imported!.parameters()).toContain('features.11.block.2.fc2.bias');
  });

  it('an op without a gradient rule is an error naming the op and the node', async () => {
    const { encodeModel } = await import('../../core/onnx/onnx-proto.js');
    const g = new Graph('infer');
    const x = g.input('images', [1, 3, 8, 8]);
    g.output(o.relu(x), 'y');
    const model = g.toModel();
    model.graph.node[0] = { ...model.graph.node[0], op_type: 'Floor', name: 'my_floor' };
    const file = path.join(tmpDir(), 'floor.onnx');
    fs.writeFileSync(file, encodeModel(model));
    const m = readImported(file);
    const g2 = new Graph('train');
    expect(() => buildImported(m, new Ctx(g2, { training: true }), g2.input('x', [1, 3, 8, 8]))).toThrow(
      /node 'my_floor' \(Floor\): sslkit has no gradient rule for Floor/,
    );
  });
});

describe("tv-resnet backbones: torchvision's ImageNet ResNets, weight for weight", () => {
  for (const depth of [18, 50]) {
    it(`tv-resnet${depth} has torchvision's parameter names and shapes`, () => {
      const g = new Graph('train');
      makeBackbone(`tv-resnet${depth}`).build(new Ctx(g, { training: true }), g.input('x', [2, 3, 64, 64]));
      const ours = Object.fromEntries([...g.params].map(([n, p]) => [n, p.tensor.dims]));
      expect(ours).toEqual(manifest.state_dicts[`resnet${depth}`]);
    });
  }

  it("tv-resnet18 with torchvision's weights computes what torchvision's model does", async () => {
    const m = readImported(path.join(dir, 'resnet18.bn.onnx'));
    const values = new Map([...m.initializers.keys()].map((n) => [n, readTensorOf(m, n)]));
    const emb = await Embedder.create({ backbone: 'tv-resnet18', widthMult: 1, channels: 3, height: SIZE, width: SIZE }, values, {
      batch: BATCH,
    });
    const got = await emb.embed(f32('x.bin'), BATCH);
    await emb.release();
    expect(relErr(got, f32('resnet18.eval.y.bin'))).toBeLessThan(1e-5);
  });
});

describe('sslkit train --init: continued self-supervised training from a torch.onnx encoder', () => {
  const bin = path.resolve(import.meta.dirname, '../../bin/sslkit.js');
  const sslkit = (...args: string[]) => {
    const r = spawnSync(process.execPath, [bin, ...args], {
      encoding: 'utf8',
      timeout: 300_000,
      env: { ...process.env, SSLKIT_CACHE: tmpDir() },
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const common = ['--data', 'fashion-mnist-small', '--limit', '128', '--batch-size', '16', '--knn-memory', '0', '--no-tune'];

  it('trains the folded ResNet-18 as it is (--no-insert-batchnorm) at its input size, resumes, and exports its own graph with the trained weights', async () => {
    const init = path.join(dir, 'resnet18.folded.onnx');
    const out = path.join(tmpDir(), 'run');
    const first = sslkit('train', '--init', init, '--no-insert-batchnorm', ...common, '--epochs', '1', '--max-steps', '3', '--out', out);
    expect(first.code, first.err).toBe(0);
    expect(first.err).toMatch(/starting from .*resnet18\.folded\.onnx: 48 nodes, .*512-d output, input 3×64×64/);
    const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(cfg.backbone).toBe(`onnx:${path.join(out, 'init.onnx')}`);
    expect(cfg.resolved).toMatchObject({ imageSize: 64, channels: 3, embeddingDim: 512 });
    // The imported encoder at a tenth of the heads' rate unless told (bench/continue.ts).
    expect(cfg.initLrScale).toBe(0.1);
    // ImageNet's normalisation (the model has no metadata), on the 0-1 scale.
    expect(cfg.resolved.augment.mean).toEqual([0.485, 0.456, 0.406]);
    const resumed = sslkit('train', '--resume', out);
    expect(resumed.code, resumed.err).toBe(0);
    expect(resumed.err).toMatch(/resuming at step 3/);
    const ck = loadCheckpoint(path.join(out, 'checkpoint.ckpt'));
    const before = readImported(init);
    const w0 = Float32Array.from(readTensorOf(before, 'onnx::Conv_190'));
    const w1 = ck.tensors.get('onnx::Conv_190')!.data;
    expect(w1.some((v, i) => v !== w0[i])).toBe(true);

    const model = path.join(out, 'model.onnx');
    const ex = sslkit('export', out, '--out', model);
    expect(ex.code, ex.err).toBe(0);
    const info = inspectModel(model);
    expect(info.inputs.map((t) => [t.name, t.shape])).toEqual([['images', ['batch', 3, 64, 64]]]);
    expect(info.outputs.map((t) => t.name)).toEqual(['features']);
    expect(info.metadata).toMatchObject({ method: 'simclr', input_name: 'images', output_name: 'features' });
    expect(info.metadata.init).toMatch(/resnet18\.folded\.onnx, trained on with simclr/);
    // Any consumer reads it as it read the original: same input, ImageNet normalisation from the metadata.
    const enc = await OnnxEncoder.load(model, { log: () => {} });
    expect(enc.preprocessing).toMatchObject({ height: 64, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    await enc.release();
  }, 300_000);

  it('by default a folded ResNet-18 trains with BatchNorm inserted and exports it folded back, checked against the engine', () => {
    const out = path.join(tmpDir(), 'run');
    const r = sslkit(
      'train',
      '--init',
      path.join(dir, 'resnet18.folded.onnx'),
      ...common,
      '--epochs',
      '1',
      '--max-steps',
      '2',
      '--out',
      out,
    );
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(
      /its BatchNorm is folded into the convolutions; putting one after each, folded back at export \(--no-insert-batchnorm/,
    );
    expect(r.err).toMatch(/inserted BatchNorms calibrated on plain training images/);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).backbone).toMatch(/^onnx\+bn:/);
    const model = path.join(out, 'model.onnx');
    const ex = sslkit('export', out, '--out', model);
    expect(ex.code, ex.err).toBe(0);
    expect(ex.out + ex.err).toMatch(/check: max \|onnxruntime − engine\| = .* \(allowed 0\.0001\)/);
    expect(ex.out + ex.err).toMatch(/, 20 BatchNorms folded/);
    const info = inspectModel(model);
    expect(info.opCounts).toMatchObject({ Conv: 20 });
    expect(info.opCounts.BatchNormalization).toBeUndefined();
  }, 300_000);

  it('--freeze keeps the parameters up to a node; --init-lr-scale and mistakes are checked', () => {
    const init = path.join(dir, 'resnet18.folded.onnx');
    const out = path.join(tmpDir(), 'run');
    const r = sslkit(
      'train',
      '--init',
      init,
      ...common,
      '--epochs',
      '1',
      '--max-steps',
      '2',
      '--freeze',
      '/layer1/layer1.0/conv1/Conv',
      '--init-lr-scale',
      '0.1',
      '--out',
      out,
    );
    expect(r.code, r.err).toBe(0);
    const ck = loadCheckpoint(path.join(out, 'checkpoint.ckpt'));
    // Frozen: the stem and the first block's first conv keep the file's values; the next conv moved.
    const m = readImported(init);
    const same = (name: string) => ck.tensors.get(name)!.data.every((v, i) => v === readTensorOf(m, name)[i]);
    for (const name of ['onnx::Conv_190', 'onnx::Conv_191', 'onnx::Conv_193', 'onnx::Conv_194']) expect(same(name), name).toBe(true);
    expect(same('onnx::Conv_196')).toBe(false);
    const bad = sslkit('train', '--init', init, ...common, '--freeze', 'no-such-node', '--out', tmpDir());
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--freeze no-such-node: .* has no node of that name \(the first are \/conv1\/Conv, \/relu\/Relu/);
    const noInit = sslkit('train', '--init-lr-scale', '0.5', ...common, '--out', tmpDir());
    expect(noInit.err).toMatch(/--freeze, --init-lr-scale and --\(no-\)insert-batchnorm apply to an imported encoder/);
    const both = sslkit('train', '--init', init, '--backbone', 'resnet18', ...common, '--out', tmpDir());
    expect(both.err).toMatch(/--backbone and --init exclude each other/);
    const missing = sslkit('train', '--init', path.join(dir, 'nope.onnx'), ...common, '--out', tmpDir());
    expect(missing.err).toMatch(/--init .*nope\.onnx: no such file/);
    const sized = sslkit('train', '--init', init, '--image-size', '96', ...common, '--out', tmpDir());
    expect(sized.err).toMatch(/the model's input is fixed at 64×64, so --image-size 96 cannot apply/);
  }, 300_000);
});

function readTensorOf(m: ReturnType<typeof readImported>, name: string): Float32Array {
  return readTensor(m.initializers.get(name)!).data as Float32Array;
}
