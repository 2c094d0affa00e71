import { resolve } from 'node:path';
import { DEFAULT_NAMESPACE } from './constants';
import { ErrorType, RecflowError } from './errors';

/**
 * recflow's configuration, parsed and validated once from the environment, then passed down.
 * Temporal connection settings are the standard `TEMPORAL_*` variables (see {@link loadTemporalConnection}); the
 * rest are `RECFLOW_*` (README, "Configuration").
 */
export interface RecflowConfig {
  /** Root of local state: artifacts, registry, embedded Temporal database. `RECFLOW_HOME`. @default `./.recflow` */
  home: string;
  /** Content-addressed artifact store (datasets, checkpoints, ONNX files). `RECFLOW_ARTIFACTS`. @default `<home>/artifacts` */
  artifactsDir: string;
  /** Model registry directory. `RECFLOW_REGISTRY`. @default `<home>/registry` */
  registryDir: string;
  /** Embedded Temporal dev server state (SQLite file). @default `<home>/temporal` */
  temporalDir: string;
  /** Log level for workers, CLI and servers. `RECFLOW_LOG_LEVEL`. @default `info` */
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /** Serving replicas and the activities that talk to them. */
  serving: {
    /** Bearer token of the serving admin API. `RECFLOW_ADMIN_TOKEN`. @default unset (admin changes refused) */
    adminToken?: string;
    /**
     * Secret that signs feedback tokens and derives the fleet's stats-reader token (at least 16 characters).
     * `RECFLOW_FEEDBACK_SECRET`. @default unset: a random secret created once in the fleet folder (mode 0600)
     */
    feedbackSecret?: string;
    /** onnxruntime intra-op threads per session. `RECFLOW_ORT_THREADS`. @default 1 */
    ortThreads: number;
    /**
     * Admission control: a model request is shed (503 + `Retry-After`) when its expected queueing time exceeds
     * this. `RECFLOW_QUEUE_BUDGET_MS`; 0 turns shedding off. @default 50
     */
    queueBudgetMs: number;
  };
  temporal: {
    /** External Temporal frontend (`TEMPORAL_ADDRESS`); unset means the embedded dev server. */
    address?: string;
    /** `TEMPORAL_NAMESPACE`. @default `default` */
    namespace: string;
    /** Port of the embedded dev server. `RECFLOW_TEMPORAL_PORT`. @default 7233; 0 picks a free port */
    embeddedPort: number;
    /** Serve the Temporal Web UI from the embedded server. `RECFLOW_TEMPORAL_UI`. @default false */
    ui: boolean;
    /** Web UI port of the embedded server. `RECFLOW_TEMPORAL_UI_PORT`. @default 8233 */
    uiPort: number;
  };
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RecflowError(ErrorType.InvalidInput, `${name}=${raw} is not an integer in [${min}, ${max}]`);
  }
  return n;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
  throw new RecflowError(ErrorType.InvalidInput, `${name}=${raw} is not a boolean (use true or false)`);
}

function secret(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (raw.length < 16)
    throw new RecflowError(ErrorType.InvalidInput, `${name} is ${raw.length} characters: use at least 16`);
  return raw;
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;

/**
 * Parse the configuration from an environment.
 * @throws {RecflowError} `InvalidInput` naming the variable and its bad value.
 */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): RecflowConfig {
  const home = resolve(cwd, env.RECFLOW_HOME || '.recflow');
  const logLevel = (env.RECFLOW_LOG_LEVEL || 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new RecflowError(
      ErrorType.InvalidInput,
      `RECFLOW_LOG_LEVEL=${logLevel} is not one of ${LOG_LEVELS.join(', ')}`,
    );
  }
  return {
    home,
    artifactsDir: resolve(home, env.RECFLOW_ARTIFACTS || 'artifacts'),
    registryDir: resolve(home, env.RECFLOW_REGISTRY || 'registry'),
    temporalDir: resolve(home, 'temporal'),
    logLevel: logLevel as RecflowConfig['logLevel'],
    serving: {
      adminToken: env.RECFLOW_ADMIN_TOKEN || undefined,
      feedbackSecret: secret(env, 'RECFLOW_FEEDBACK_SECRET'),
      ortThreads: int(env, 'RECFLOW_ORT_THREADS', 1, 1, 256),
      queueBudgetMs: int(env, 'RECFLOW_QUEUE_BUDGET_MS', 50, 0, 60_000),
    },
    temporal: {
      address: env.TEMPORAL_ADDRESS || undefined,
      namespace: env.TEMPORAL_NAMESPACE || DEFAULT_NAMESPACE,
      embeddedPort: int(env, 'RECFLOW_TEMPORAL_PORT', 7233, 0, 65535),
      ui: bool(env, 'RECFLOW_TEMPORAL_UI', false),
      uiPort: int(env, 'RECFLOW_TEMPORAL_UI_PORT', 8233, 1, 65535),
    },
  };
}
