/**
 * The service's model thread (see model-thread.ts): loads the encoder, then embeds batches sent by
 * the HTTP thread. Log lines, load errors and results go back as messages.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OnnxEncoder } from '../core/runtime/onnx-encoder.js';
import { UserError } from '../core/errors.js';
import { META_KEYS } from './model-thread.js';

const port = parentPort!;
const log = (line: string) => port.postMessage({ type: 'log', line });
let encoder: OnnxEncoder;
try {
  encoder = await OnnxEncoder.load(workerData.file, { ...workerData.options, log });
  port.postMessage({ type: 'ready', meta: Object.fromEntries(META_KEYS.map((k) => [k, encoder[k]])) });
} catch (e) {
  port.postMessage({ type: 'load-error', message: (e as Error).message, user: e instanceof UserError });
  port.close();
}

port.on('message', async (m: { type: 'embed'; id: number; images: Float32Array; n: number; maxBatch: number } | { type: 'release' }) => {
  if (m.type === 'release') {
    await encoder.release();
    port.postMessage({ type: 'released' });
    port.close();
    return;
  }
  try {
    const out = await encoder.embed(m.images, m.n, m.maxBatch);
    port.postMessage({ type: 'result', id: m.id, out }, [out.buffer as ArrayBuffer]);
  } catch (e) {
    port.postMessage({ type: 'result', id: m.id, error: (e as Error).message });
  }
});
