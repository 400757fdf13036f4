/**
 * onnxruntime-node sessions with an execution-provider choice that falls back visibly:
 * `auto` tries CUDA, then WebGPU, then CPU, keeping the first that actually creates a session,
 * and says in one line which it chose and why the others were passed over.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import ort from 'onnxruntime-node';
import { encodeModel } from '../onnx/onnx-proto.js';

export type Device = 'auto' | 'cpu' | 'cuda' | 'webgpu';
export const DEVICES: Device[] = ['auto', 'cpu', 'cuda', 'webgpu'];

export interface SessionOptions {
  device?: Device;
  /** Intra-op threads (0 = ORT's default, one per core). */
  threads?: number;
  /** Busy-wait of idle ORT threads; off when another busy thread (data loading) shares the cores. */
  spinning?: boolean;
  /** Where fall-back messages go; stderr by default. */
  log?: (line: string) => void;
  /**
   * onnxruntime's memory pattern: after the first run it allocates one block for a run's
   * intermediates, on top of the arena blocks the first run grew, which doubles a training step's
   * peak memory (bench/train-step: 4.0 GB against 2.1 GB for the convnet at 256 × 2) for no
   * measurable speed. On unless turned off.
   */
  memPattern?: boolean;
  /** File prefix for onnxruntime's per-op profile of this session (written when profiling ends). */
  profile?: string;
}

export interface LoadedSession {
  session: ort.InferenceSession;
  provider: 'cpu' | 'cuda' | 'webgpu';
}

/** Providers this onnxruntime-node build could load: CUDA only where its provider library is installed. */
function backends(): Set<string> {
  let names: string[];
  try {
    names = ort.listSupportedBackends().map((b) => b.name);
  } catch {
    names = ['cpu'];
  }
  const set = new Set(names);
  try {
    const binDir = path.join(
      path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json')),
      'bin',
      'napi-v6',
      process.platform,
      process.arch,
    );
    if (!fs.existsSync(path.join(binDir, 'libonnxruntime_providers_cuda.so'))) set.delete('cuda');
  } catch {
    set.delete('cuda');
  }
  return set;
}

/**
 * Whether this Linux machine has a GPU for Dawn (onnxruntime's WebGPU) to find: a DRM render node
 * or an NVIDIA device. Without one, trying WebGPU only prints Dawn's "Couldn't load Vulkan"
 * warnings from native code (they read like a crash), so `auto` does not try it.
 */
function gpuDevicePresent(): boolean {
  if (process.platform !== 'linux') return true;
  const has = (dir: string, prefix: string) => fs.existsSync(dir) && fs.readdirSync(dir).some((f) => f.startsWith(prefix));
  return has('/dev/dri', 'renderD') || has('/dev', 'nvidia');
}

/** What each device setting settled on in this process, so later sessions neither probe nor log again. */
const settled = new Map<Device, LoadedSession['provider']>();

export async function createSession(model: Uint8Array, o: SessionOptions = {}): Promise<LoadedSession> {
  const device = o.device ?? 'cpu';
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const known = settled.get(device);
  // A settled GPU provider still falls back to CPU for a model it cannot run.
  const candidates: LoadedSession['provider'][] = known
    ? [...new Set([known, 'cpu' as const])]
    : device === 'auto'
      ? ['cuda', 'webgpu', 'cpu']
      : device === 'cpu'
        ? ['cpu']
        : [device, 'cpu'];
  const first = !settled.has(device);
  const available = backends();
  if (device === 'auto' && !gpuDevicePresent()) available.delete('webgpu');
  let lastError = '';
  /** Why each GPU provider was passed over, for `auto`'s one line. */
  const skipped: string[] = [];
  for (const provider of candidates) {
    if (provider !== 'cpu' && !available.has(provider)) {
      lastError = `${provider} is not in this onnxruntime-node build`;
      skipped.push(provider === 'cuda' ? 'no CUDA provider libraries' : 'no GPU device for WebGPU');
      if (device !== 'auto') log(`sslkit: execution provider '${provider}' unavailable (${lastError}); falling back to CPU`);
      continue;
    }
    try {
      const opts: ort.InferenceSession.SessionOptions = {
        executionProviders: [provider],
        interOpNumThreads: 1,
        // SSLKIT_ORT_OPT=disabled|basic|extended|all: onnxruntime's graph optimisation level, for
        // bisecting a numerical difference (graph optimisations once exposed an in-place BN bug).
        graphOptimizationLevel: (process.env.SSLKIT_ORT_OPT as 'all' | undefined) ?? 'all',
        enableCpuMemArena: true,
        enableMemPattern: o.memPattern ?? true,
      };
      if (o.threads) opts.intraOpNumThreads = o.threads;
      // o.profile or SSLKIT_ORT_PROFILE=prefix writes onnxruntime's per-op profile (chrome-trace JSON).
      const profile = o.profile ?? process.env.SSLKIT_ORT_PROFILE;
      if (profile) Object.assign(opts, { enableProfiling: true, profileFilePrefix: profile });
      if (o.spinning === false) opts.extra = { session: { intra_op: { allow_spinning: '0' } } };
      const session = await ort.InferenceSession.create(model, opts);
      if (first && provider === 'cpu' && device !== 'cpu' && device !== 'auto') log(`sslkit: running on CPU instead of ${device}`);
      if (first && device === 'auto') log(`sslkit: device ${provider}${skipped.length ? ` (${skipped.join('; ')})` : ''}`);
      if (first) settled.set(device, provider);
      return { session, provider };
    } catch (e) {
      if (provider === 'cpu') throw e;
      // ORT's messages carry source paths and lambdas; keep the part a user can act on.
      const msg = (e as Error).message.split('\n')[0];
      lastError = /Failed to get a WebGPU adapter.*$/.exec(msg)?.[0] ?? msg.replace(/^.*\] ?/, '');
      if (device === 'auto') skipped.push(`${provider}: ${lastError}`);
      else log(`sslkit: execution provider '${provider}' failed to load (${lastError}); trying the next one`);
    }
  }
  throw new Error(`no execution provider could run the model (${lastError})`);
}

/** Which provider a device setting ends up on (probed once with a one-node model), so that callers can build for it. */
export async function resolveProvider(device: Device, log?: (line: string) => void): Promise<LoadedSession['provider']> {
  if (device === 'cpu') return 'cpu';
  const vi = (name: string) => ({ name, type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: 1 }] } } } });
  const model = encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'probe',
      node: [{ op_type: 'Relu', input: ['x'], output: ['y'] }],
      initializer: [],
      input: [vi('x')],
      output: [vi('y')],
    },
  });
  const { session, provider } = await createSession(model, { device, log });
  await session.release();
  return provider;
}

/** Runs a session on one float32 input and returns every output as plain data and dims (callers need no onnxruntime types). */
export async function runFloat32(
  session: LoadedSession['session'],
  input: string,
  data: Float32Array,
  dims: number[],
): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
  const out = await session.run({ [input]: new ort.Tensor('float32', data, dims) });
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { data: t.data as Float32Array, dims: t.dims }]));
}
