/**
 * The stateful program: state tensors move on only when the step's outputs and every next value
 * are finite; the scalars of each step reach the graph; optimiser slots are state but not parameters.
 */
import { describe, expect, it } from 'vitest';
import { Graph, tensorData, type Param } from '../../../train/engine/graph.js';
import { buildUpdate, DEFAULT_OPTIMIZER } from '../../../train/engine/optim.js';
import { StatefulProgram, StateSpec } from '../../../train/engine/stateful.js';
import * as o from '../../../train/engine/ops.js';

/** w ← w − lr·g with g fed, and a buffer b ← b·s; the loss is Σw·s. */
async function program() {
  const g = new Graph('train');
  const w = g.param('w', tensorData('float32', [2], Float32Array.of(1, 2)));
  const b = g.param('b', tensorData('float32', [2], Float32Array.of(3, 4)), 'buffer');
  const s = g.input('s', []);
  const grad = g.input('g', [2]);
  const upd = buildUpdate(g, [['w', g.params.get('w') as Param]], [grad], {
    ...DEFAULT_OPTIMIZER,
    name: 'sgd',
    momentum: 0.5,
    weightDecay: 0,
  });
  g.output(o.reduceSum(o.mul(w, s)), 'loss');
  const spec = new StateSpec(g);
  spec.update(upd, (step) => ({ lr: 0.1 * (step + 1), peakLr: 1 }));
  spec.carry('b', o.mul(b, s));
  return StatefulProgram.compile(spec, { finiteOutputs: ['loss'] });
}

describe('StatefulProgram', () => {
  it('steps parameters, slots and buffers with the scalars of each step', async () => {
    const p = await program();
    expect([...p.shapes.keys()].sort()).toEqual(['b', 'opt.v.w', 'w']);
    expect(p.scalars(1)).toEqual({ lr: 0.2 });
    const r0 = await p.step({ s: 2, g: Float32Array.of(1, 1) }, 0);
    expect(r0.nonFinite).toBeNull();
    expect((r0.out.loss as Float32Array)[0]).toBe(6); // computed from the state before the step
    // v = g, w = w − 0.1·v; step 1: v = 0.5·v + g, w −= 0.2·v
    await p.step({ s: 2, g: Float32Array.of(1, 1) }, 1);
    const w = p.state.get('w')!;
    [1 - 0.1 - 0.2 * 1.5, 2 - 0.1 - 0.2 * 1.5].forEach((want, i) => expect(w[i]).toBeCloseTo(want, 6));
    expect([...p.state.get('b')!]).toEqual([12, 16]);
    expect([...p.parameters().keys()].sort()).toEqual(['b', 'w']);
    await p.release();
  });

  it('keeps the whole state when a next value or a watched output is not finite', async () => {
    const p = await program();
    const before = new Map(p.state);
    // A finite loss (Σw·s with s = 1) but an infinite gradient: w's next value overflows.
    const r = await p.step({ s: 1, g: Float32Array.of(Infinity, 0) }, 0);
    expect(r.nonFinite).toBe('w');
    // An infinite loss with finite next values of w (the buffer overflows too).
    const r2 = await p.step({ s: Infinity, g: Float32Array.of(0, 0) }, 0);
    expect(r2.nonFinite).toBe('loss');
    for (const [name, v] of before) expect(p.state.get(name), name).toBe(v);
    expect(() => p.set([['w', new Float32Array(3)]])).toThrow(/holds 2 values/);
    expect(() => p.set([['nope', new Float32Array(1)]])).toThrow(/not state/);
    await p.release();
  });
});
