/**
 * Pick the TensorFlow.js backend at run time, best first:
 * 1. `@tensorflow/tfjs-node-gpu` when the package loads and sees a GPU (backend `tensorflow`, gpu true);
 * 2. the real `@tensorflow/tfjs-node` (backend `tensorflow`). In this repository `node_modules/@tensorflow/tfjs-node`
 *    is an npm alias of plain `@tensorflow/tfjs` (an override for danfojs), recognised by its package.json `name`;
 * 3. `@tensorflow/tfjs-backend-wasm` (single-threaded in Node, SIMD), with recflow's kernels (lib/train/kernels.ts:
 *    `UnsortedSegmentSum`, which stock wasm lacks, fast `GatherV2`/`Transpose`, the fused embedding and Adam kernels);
 * 4. plain `cpu`, with the same kernels.
 *
 * `RECFLOW_TF_BACKEND` = `tensorflow-gpu` | `tensorflow` | `wasm` | `cpu` forces one (an error if it cannot load).
 * The choice is logged and written into each checkpoint (`CheckpointMeta.backend` / `gpu`).
 */
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type * as WasmBackend from '@tensorflow/tfjs-backend-wasm';
import { ErrorType, RecflowError } from '../errors';
import { useFastKernels } from './kernels';

/** The backend in use and why. */
export interface BackendChoice {
  /** tfjs backend name: `tensorflow` (tfjs-node / -gpu), `wasm` or `cpu`. */
  backend: string;
  /** True when the GPU build of tfjs-node runs on a GPU. */
  gpu: boolean;
  /** Why this one: what was tried and what failed, in order. */
  reason: string;
}

/** Names `RECFLOW_TF_BACKEND` accepts. */
export const BACKEND_PREFERENCES = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendPreference = (typeof BACKEND_PREFERENCES)[number];

let chosen: Promise<BackendChoice> | undefined;
let chosenFor: string | undefined;
let wasmPathsSet = false;

function tryRequire(name: string): unknown {
  return require(name) as unknown;
}

async function tryNode(gpu: boolean): Promise<string | BackendChoice> {
  const pkg = gpu ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
  try {
    const { name } = require(`${pkg}/package.json`) as { name: string };
    if (name !== pkg) return `${pkg} is an alias of ${name}, not the native binding`;
  } catch {
    return `${pkg} is not installed`;
  }
  try {
    tryRequire(pkg);
    if (!(await tf.setBackend('tensorflow'))) return `${pkg} loaded but backend 'tensorflow' did not initialise`;
  } catch (err) {
    return `${pkg} failed to load: ${(err as Error).message.split('\n')[0] ?? ''}`;
  }
  const b = tf.backend() as unknown as { isUsingGpuDevice?: () => boolean };
  const onGpu = typeof b.isUsingGpuDevice === 'function' ? b.isUsingGpuDevice() : gpu;
  if (gpu && !onGpu) return `${pkg} loaded but sees no GPU`;
  return { backend: 'tensorflow', gpu: onGpu, reason: `${pkg} loaded${onGpu ? ' and sees a GPU' : ''}` };
}

async function tryWasm(): Promise<string | BackendChoice> {
  try {
    const wasm = tryRequire('@tensorflow/tfjs-backend-wasm') as typeof WasmBackend;
    const dist = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/';
    if (!wasmPathsSet) wasm.setWasmPaths(dist);
    wasmPathsSet = true;
    useFastKernels('wasm');
    if (!(await tf.setBackend('wasm'))) return 'wasm backend did not initialise';
    return {
      backend: 'wasm',
      gpu: false,
      reason: 'wasm backend with recflow kernels (UnsortedSegmentSum, GatherV2, Transpose, embeddingConcat, Adam)',
    };
  } catch (err) {
    return `wasm failed: ${(err as Error).message.split('\n')[0] ?? ''}`;
  }
}

async function tryCpu(): Promise<string | BackendChoice> {
  useFastKernels('cpu');
  if (!(await tf.setBackend('cpu'))) return 'cpu backend did not initialise';
  return {
    backend: 'cpu',
    gpu: false,
    reason: 'cpu backend with recflow kernels (UnsortedSegmentSum, GatherV2, Transpose, embeddingConcat, Adam)',
  };
}

const TRIES: Record<BackendPreference, () => Promise<string | BackendChoice>> = {
  'tensorflow-gpu': () => tryNode(true),
  tensorflow: () => tryNode(false),
  wasm: tryWasm,
  cpu: tryCpu,
};

async function choose(forced: string | undefined): Promise<BackendChoice> {
  if (forced) {
    if (!(BACKEND_PREFERENCES as readonly string[]).includes(forced)) {
      throw new RecflowError(
        ErrorType.InvalidInput,
        `RECFLOW_TF_BACKEND=${forced} is not one of ${BACKEND_PREFERENCES.join(', ')}`,
      );
    }
    const r = await TRIES[forced as BackendPreference]();
    if (typeof r === 'string') throw new RecflowError(ErrorType.InvalidInput, `RECFLOW_TF_BACKEND=${forced}: ${r}`);
    return { ...r, reason: `forced by RECFLOW_TF_BACKEND: ${r.reason}` };
  }
  const skipped: string[] = [];
  for (const pref of BACKEND_PREFERENCES) {
    const r = await TRIES[pref]();
    if (typeof r !== 'string') return { ...r, reason: [...skipped, r.reason].join('; ') };
    skipped.push(r);
  }
  throw new Error(`no TensorFlow.js backend available: ${skipped.join('; ')}`);
}

/**
 * Choose and initialise the backend once per process (later calls return the same choice, unless `forced` differs).
 * @param forced a {@link BackendPreference}; @default process.env.RECFLOW_TF_BACKEND
 * @throws {RecflowError} `InvalidInput` when a forced backend is unknown or cannot load.
 */
export function selectBackend(
  forced: string | undefined = process.env.RECFLOW_TF_BACKEND || undefined,
): Promise<BackendChoice> {
  if (!chosen || chosenFor !== forced) {
    chosenFor = forced;
    chosen = choose(forced);
    chosen.catch(() => {
      chosen = undefined;
    });
  }
  return chosen;
}
