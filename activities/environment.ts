import { hostname } from 'node:os';
import { log } from '@temporalio/activity';
import type { ActivityDeps } from './deps';

export interface DescribeWorkerInput {
  /** Who asks, for the log. */
  requestedBy?: string;
}

export interface DescribeWorkerResult {
  host: string;
  pid: number;
  node: string;
  taskQueue: string;
  artifactsDir: string;
  /** Which optional native packages load on this worker. */
  packages: Record<string, string | null>;
}

function versionOf(pkg: string): string | null {
  try {
    return (require(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return null;
  }
}

/** Environment activities: what a worker is and can do (used by the smoke workflow and `recflow doctor`). */
export function createEnvironmentActivities(deps: ActivityDeps, taskQueue: string) {
  return {
    async describeWorker(input: DescribeWorkerInput): Promise<DescribeWorkerResult> {
      const result: DescribeWorkerResult = {
        host: hostname(),
        pid: process.pid,
        node: process.version,
        taskQueue,
        artifactsDir: deps.store.root,
        packages: {
          'onnxruntime-node': versionOf('onnxruntime-node'),
          '@tensorflow/tfjs': versionOf('@tensorflow/tfjs'),
          '@tensorflow/tfjs-backend-wasm': versionOf('@tensorflow/tfjs-backend-wasm'),
          '@tensorflow/tfjs-node': versionOf('@tensorflow/tfjs-node'),
          '@tensorflow/tfjs-node-gpu': versionOf('@tensorflow/tfjs-node-gpu'),
          'danfojs-node': versionOf('danfojs-node'),
        },
      };
      log.info('described worker', { requestedBy: input.requestedBy, taskQueue, host: result.host });
      return result;
    },
  };
}
