/**
 * A stateful program: a graph whose state tensors (parameters, BatchNorm buffers, optimiser slots,
 * an EMA teacher) are inputs whose next values are outputs, compiled once and stepped many times.
 * This file is the one owner of that protocol: which tensors are state, how their next values are
 * named, their values at step 0, the scalars fed at each step, and a step that commits only a
 * wholly finite state. Nothing above the engine spells a state tensor's output or slot name.
 */
import type { SessionOptions } from '../../core/runtime/session.js';
import type { Graph, Tensor } from './graph.js';
import { Program, type Feeds, type HostArray, type NchwcOptions } from './program.js';
import { isOptimizerSlot, type UpdateGraph } from './optim.js';

export type State = Map<string, Float32Array>;

const nextName = (name: string) => `next.${name}`;

/** The state of a graph while it is built: what each step reads and writes back, and the scalars it is fed. */
export class StateSpec {
  /** Every state tensor a step reads, with its shape (what a checkpoint holds). */
  readonly shapes = new Map<string, number[]>();
  private readonly carried = new Set<string>();
  private readonly slots = new Map<string, Tensor>();
  private readonly scalarFeeds: ((step: number) => Record<string, number>)[] = [];

  constructor(readonly g: Graph) {}

  /** A state tensor (a parameter or buffer of the graph, or `input`) whose value after a step is `next`. */
  carry(name: string, next: Tensor, input?: Tensor): void {
    this.g.output(next, nextName(name));
    this.carried.add(name);
    this.shapes.set(name, this.dimsOf(name, input));
  }

  /** A parameter or buffer read at every step and never rewritten by it (set between epochs, or frozen). */
  hold(name: string): void {
    if (!this.shapes.has(name)) this.shapes.set(name, this.dimsOf(name));
  }

  /** An optimiser update's parameters and slots (slots start at zero), with the scalars it reads at each step. */
  update(upd: UpdateGraph, rates: (step: number) => { lr: number; peakLr: number }): void {
    for (const [name, next] of upd.params) this.carry(name, next);
    for (const [name, s] of upd.state) {
      this.slots.set(name, s.input);
      this.carry(name, s.next, s.input);
    }
    this.feed((step) => {
      const { lr, peakLr } = rates(step);
      return upd.feeds(step, lr, peakLr);
    });
  }

  /** More scalar inputs computed from the step number (an EMA teacher's momentum). */
  feed(scalars: (step: number) => Record<string, number>): void {
    this.scalarFeeds.push(scalars);
  }

  /** The scalar inputs at `step` (0-based). */
  scalars(step: number): Record<string, number> {
    return Object.assign({}, ...this.scalarFeeds.map((f) => f(step)));
  }

  /** Every input of step `step`: the non-state `inputs` (a batch), the scalars and `state` (by default the initial one). */
  feeds(inputs: Feeds, step: number, state: State = this.initial()): Feeds {
    const feeds: Feeds = { ...inputs, ...this.scalars(step) };
    for (const name of this.shapes.keys()) feeds[name] = state.get(name)!;
    return feeds;
  }

  /** Values at step 0: every parameter's initial value, optimiser slots zero. */
  initial(): State {
    const state: State = new Map();
    for (const [name, p] of this.g.params) state.set(name, p.init.data as Float32Array);
    for (const [name, t] of this.slots) state.set(name, new Float32Array(t.size));
    return state;
  }

  /** Names whose next value the step writes. */
  get carriedNames(): ReadonlySet<string> {
    return this.carried;
  }

  private dimsOf(name: string, input?: Tensor): number[] {
    const dims = this.g.params.get(name)?.tensor.dims ?? input?.dims;
    if (!dims) throw new TypeError(`state '${name}' is neither a parameter of the graph nor given as an input`);
    return dims;
  }
}

/** A step's outputs, and the first output or state tensor that was not finite (the state was then kept as it was). */
export interface StepOutcome {
  out: Record<string, HostArray>;
  nonFinite: string | null;
}

export class StatefulProgram {
  /** The current values of every state tensor (and of every parameter the graph holds). */
  readonly state: State;

  private constructor(
    readonly program: Program,
    private readonly spec: StateSpec,
    private readonly finiteOutputs: string[],
  ) {
    this.state = spec.initial();
  }

  /** Compiles the spec's graph; a step commits its state only when `finiteOutputs` (e.g. the loss) and every next value are finite. */
  static async compile(
    spec: StateSpec,
    o: SessionOptions & { finiteOutputs?: string[]; nchwc?: NchwcOptions } = {},
  ): Promise<StatefulProgram> {
    const { finiteOutputs = [], ...session } = o;
    return new StatefulProgram(await Program.compile(spec.g, session), spec, finiteOutputs);
  }

  get shapes(): Map<string, number[]> {
    return this.spec.shapes;
  }

  get provider(): string {
    return this.program.provider;
  }

  /** The scalar inputs at `step` (0-based): learning rates, bias corrections, a teacher's momentum. */
  scalars(step: number): Record<string, number> {
    return this.spec.scalars(step);
  }

  /** Runs step `step` on `inputs`; the state moves on only if everything that must be finite is. */
  async step(inputs: Feeds, step: number): Promise<StepOutcome> {
    const out = await this.program.run(this.spec.feeds(inputs, step, this.state));
    const nonFinite =
      this.finiteOutputs.find((n) => !allFinite(out[n] as Float32Array)) ??
      [...this.spec.carriedNames].find((n) => !allFinite(out[nextName(n)] as Float32Array)) ??
      null;
    if (!nonFinite) for (const name of this.spec.carriedNames) this.state.set(name, out[nextName(name)] as Float32Array);
    return { out, nonFinite };
  }

  /** Replaces state values (from a checkpoint, a calibration, a method's between-epoch update). */
  set(values: Iterable<[string, Float32Array]>): void {
    for (const [name, v] of values) {
      const dims = this.spec.shapes.get(name) ?? this.spec.g.params.get(name)?.tensor.dims;
      if (!dims) throw new TypeError(`'${name}' is not state of this program`);
      const n = dims.reduce((a, b) => a * b, 1);
      if (v.length !== n) throw new RangeError(`state '${name}' holds ${n} values [${dims}], got ${v.length}`);
      this.state.set(name, v);
    }
  }

  /** The parameters and buffers, without optimiser slots: what an encoder is built from. */
  parameters(): State {
    return parametersOf(this.state);
  }

  async release(): Promise<void> {
    await this.program.release();
  }
}

/** The tensors of a state or checkpoint that are not optimiser slots. */
export function parametersOf<T>(tensors: Map<string, T>): Map<string, T> {
  return new Map([...tensors].filter(([name]) => !isOptimizerSlot(name)));
}

function allFinite(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
  return true;
}
