/**
 * Where a step's time goes: onnxruntime's own profiler (a chrome-trace JSON file per session),
 * summed by operator type. The first run of a session is left out (it grows the memory arena and
 * is not what a training step costs).
 */
import fs from 'node:fs';
import path from 'node:path';

/** The median wall time of `runs` calls of `run`, in ms, after one untimed call (it grows the memory arena). */
export async function medianMs(run: () => Promise<unknown>, runs: number): Promise<number> {
  await run();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await run();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)];
}

export interface OpTime {
  op: string;
  /** Milliseconds per run, summed over every node of this type. */
  ms: number;
  /** Nodes of this type run per step. */
  nodes: number;
  /** Share of all kernel time. */
  share: number;
}

interface TraceEvent {
  cat?: string;
  name?: string;
  ts?: number;
  dur?: number;
  args?: { op_name?: string };
}

/** The newest profile file that onnxruntime wrote with this prefix (it appends a timestamp). */
export function profileFile(prefix: string): string {
  const dir = path.dirname(path.resolve(prefix));
  const base = path.basename(prefix);
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.startsWith(base) && f.endsWith('.json'))
    .map((f) => path.join(dir, f))
    .sort((a, b) => fs.statSync(a).mtimeMs - fs.statSync(b).mtimeMs);
  if (!files.length) throw new Error(`no onnxruntime profile written with prefix ${prefix}`);
  return files[files.length - 1];
}

/** Kernel time per operator type, per run, from the second run on; largest first. */
export function summariseProfile(file: string): { runs: number; ops: OpTime[] } {
  const events = JSON.parse(fs.readFileSync(file, 'utf8')) as TraceEvent[];
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts! - b.ts!);
  if (runs.length < 2) throw new Error(`${file}: ${runs.length} run(s) profiled; need a warm-up run and at least one more`);
  const from = runs[1].ts!;
  const measured = runs.length - 1;
  const byOp = new Map<string, { us: number; count: number }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || !e.args?.op_name || e.ts! < from) continue;
    const s = byOp.get(e.args.op_name) ?? { us: 0, count: 0 };
    s.us += e.dur ?? 0;
    s.count++;
    byOp.set(e.args.op_name, s);
  }
  const total = [...byOp.values()].reduce((a, s) => a + s.us, 0) || 1;
  const ops = [...byOp]
    .map(([op, s]) => ({ op, ms: s.us / 1000 / measured, nodes: s.count / measured, share: s.us / total }))
    .sort((a, b) => b.ms - a.ms);
  return { runs: measured, ops };
}

/** The summary as a Markdown table. */
export function profileTable(ops: OpTime[], top = 15): string {
  const rows = ops.slice(0, top).map((o) => `| ${o.op} | ${o.ms.toFixed(1)} | ${(100 * o.share).toFixed(1)}% | ${Math.round(o.nodes)} |`);
  const rest = ops.slice(top);
  if (rest.length)
    rows.push(
      `| (${rest.length} more types) | ${rest.reduce((a, o) => a + o.ms, 0).toFixed(1)} | ${(100 * rest.reduce((a, o) => a + o.share, 0)).toFixed(1)}% | ${Math.round(rest.reduce((a, o) => a + o.nodes, 0))} |`,
    );
  return ['| op type | ms per step | share | nodes |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
