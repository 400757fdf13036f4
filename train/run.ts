/**
 * The run folder: RUN/config.json (every resolved setting), RUN/metrics.jsonl (a line per step
 * and per epoch) and RUN/checkpoint.ckpt (atomically written state and position). Export, eval,
 * the quick start and resume read runs through here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../core/errors.js';
import { writeFileAtomic } from '../core/fs.js';
import { loadCheckpoint, saveCheckpoint, type Position } from './checkpoint.js';
import type { ResolvedConfig } from './config.js';
import { parametersOf } from './engine/stateful.js';

export const CHECKPOINT_FILE = 'checkpoint.ckpt';

export function readRunConfig(runDir: string): ResolvedConfig {
  const file = path.join(runDir, 'config.json');
  if (!fs.existsSync(file)) throw new UserError(`${runDir}: not a run folder (no config.json)`);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as ResolvedConfig;
}

export function writeRunConfig(runDir: string, cfg: ResolvedConfig): void {
  writeFileAtomic(path.join(runDir, 'config.json'), [`${JSON.stringify(cfg, null, 2)}\n`]);
}

export const hasCheckpoint = (runDir: string) => fs.existsSync(path.join(runDir, CHECKPOINT_FILE));

/** Appends one JSON line to RUN/metrics.jsonl. */
export function metricsWriter(runDir: string): (m: Record<string, unknown>) => void {
  const file = path.join(runDir, 'metrics.jsonl');
  return (m) => fs.appendFileSync(file, `${JSON.stringify(m)}\n`);
}

/** The state tensors `shapes` names from a run's checkpoint, checked against the step graph, and its position. */
export function loadRunState(runDir: string, shapes: Map<string, number[]>): { state: Map<string, Float32Array>; position: Position } {
  const ck = loadCheckpoint(path.join(runDir, CHECKPOINT_FILE));
  const state = new Map<string, Float32Array>();
  for (const [name, shape] of shapes) {
    const t = ck.tensors.get(name);
    if (!t) throw new UserError(`${runDir}: checkpoint lacks '${name}' (a different method or backbone?)`);
    if (t.data.length !== shape.reduce((a, b) => a * b, 1))
      throw new UserError(`${runDir}: checkpoint tensor '${name}' has the wrong size`);
    state.set(name, t.data);
  }
  return { state, position: ck.position };
}

export function saveRunState(
  runDir: string,
  seed: number,
  position: Position,
  shapes: Map<string, number[]>,
  state: Map<string, Float32Array>,
): void {
  saveCheckpoint(path.join(runDir, CHECKPOINT_FILE), {
    position,
    seed,
    tensors: new Map([...shapes].map(([n, shape]) => [n, { shape, data: state.get(n)! }])),
  });
}

/** Parameter values of a run's latest checkpoint (optimiser state left out). */
export function runParameters(runDir: string): Map<string, Float32Array> {
  return runCheckpoint(runDir).parameters;
}

/** The latest checkpoint's parameter values and its position in training. */
export function runCheckpoint(runDir: string): { parameters: Map<string, Float32Array>; position: Position } {
  const ck = loadCheckpoint(path.join(runDir, CHECKPOINT_FILE));
  return {
    parameters: new Map([...parametersOf(ck.tensors)].map(([n, t]) => [n, t.data])),
    position: ck.position,
  };
}
