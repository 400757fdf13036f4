import { Worker } from 'node:worker_threads';

/** Starts a worker thread running `entry` (a module URL, .ts from sources or .js when built). */
export function startWorker(entry: URL, workerData: Record<string, unknown>): Worker {
  return new Worker(new URL('./worker-boot.mjs', import.meta.url), { workerData: { ...workerData, entry: entry.href } });
}

/** The URL of a sibling module, keeping the caller's extension (.ts from sources, .js when built). */
export function siblingModule(callerUrl: string, name: string): URL {
  return new URL(`./${name}${callerUrl.endsWith('.ts') ? '.ts' : '.js'}`, callerUrl);
}
