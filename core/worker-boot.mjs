// Entry of every sslkit worker thread: registers tsx's loader when sslkit runs from its
// TypeScript sources (Node 20 has no type stripping), then imports the real worker module.
import { workerData } from 'node:worker_threads';

if (workerData.entry.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import(workerData.entry);
