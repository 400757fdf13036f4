/**
 * `bench/train-step --profile`'s summary: onnxruntime's real profile of a compiled graph, summed
 * by operator type, with the warm-up run left out.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Graph } from '../../../train/engine/graph.js';
import * as o from '../../../train/engine/ops.js';
import { Program } from '../../../train/engine/program.js';
import { profileFile, profileTable, summariseProfile } from '../../../train/engine/profile.js';
import { tmpDir } from '../../helpers.js';

describe('per-op profile', () => {
  it('sums kernel time by operator type over the runs after the first', async () => {
    const g = new Graph('infer');
    const x = g.input('x', [128, 256]);
    const w = g.input('w', [256, 256]);
    // Two MatMuls and one Relu per run.
    g.output(o.matmul(o.relu(o.matmul(x, w)), w), 'y');
    const prefix = path.join(tmpDir(), 'step');
    const prog = await Program.compile(g, { device: 'cpu', threads: 1, profile: prefix });
    const feeds = { x: new Float32Array(128 * 256).fill(0.5), w: new Float32Array(256 * 256).fill(0.01) };
    for (let i = 0; i < 4; i++) await prog.run(feeds);
    prog.endProfiling();
    await prog.release();
    const { runs, ops } = summariseProfile(profileFile(prefix));
    expect(runs).toBe(3);
    const byOp = Object.fromEntries(ops.map((op) => [op.op, op]));
    expect(byOp.MatMul.nodes).toBe(2);
    expect(byOp.Relu.nodes).toBe(1);
    expect(byOp.MatMul.ms).toBeGreaterThan(0);
    // Two 128×256×256 products outweigh one Relu over 128×256 values.
    expect(ops[0].op).toBe('MatMul');
    expect(ops.reduce((a, op) => a + op.share, 0)).toBeCloseTo(1, 9);
    expect(profileTable(ops)).toMatch(/^\| op type \| ms per step \| share \| nodes \|\n\| --- .*\n\| MatMul \| [\d.]+ \| [\d.]+% \| 2 \|/);
  });
});
