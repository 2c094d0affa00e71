import { resolve } from 'node:path';
import { DEFAULT_NAMESPACE } from './constants';
import { ErrorType, RecflowError } from './errors';

/**
 * recflow's configuration: one table of settings ({@link SETTINGS}: variable, type, default, meaning), parsed and
 * validated once from the environment by {@link loadConfig}, then passed down. Temporal connection settings are the
 * standard `TEMPORAL_*` variables (see `lib/temporal/connection.ts`); the rest are `RECFLOW_*`. `.env.example` is
 * generated from the same table ({@link envExample}; a test keeps them equal).
 */
export interface RecflowConfig {
  /** Root of local state: artifacts, registry, embedded Temporal database, logs. */
  home: string;
  /** Content-addressed artifact store (datasets, checkpoints, ONNX files). */
  artifactsDir: string;
  /** Model registry directory (versions, aliases, fleets). */
  registryDir: string;
  /** Embedded Temporal dev server state (SQLite file). */
  temporalDir: string;
  /** Log level for workers, CLI and servers. */
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /** `pretty`: readable lines on the terminal, JSON into `logFile`; `json`: JSON lines on the terminal. */
  logFormat: 'pretty' | 'json';
  /** Where structured JSON logs go when the terminal shows pretty ones. */
  logFile: string;
  /** Who may run `recflow rollback` (empty: anyone); matched against `--as`. */
  operators: string[];
  /** The code version recorded in lineage (else `git rev-parse HEAD`). */
  codeVersion?: string;
  /** Force a TensorFlow.js backend (`tensorflow-gpu`, `tensorflow`, `wasm`, `cpu`); unset picks the best one present. */
  tfBackend?: string;
  /** `host:port` of the workers' Prometheus endpoint; unset: none. */
  workerMetrics?: string;
  /** A BERT-family encoder folder (Hugging Face layout) for the search kind; unset: the one `npm run setup` installs. */
  baseModelDir?: string;
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
    /** External Temporal frontend; unset means the embedded dev server. */
    address?: string;
    namespace: string;
    /** Port of the embedded dev server; 0 picks a free port. */
    embeddedPort: number;
    /** Serve the Temporal Web UI from the embedded server. */
    ui: boolean;
    uiPort: number;
  };
}

type Env = Record<string, string | undefined>;

/** One setting: its variable, what it means, its default, and how it is parsed. */
export interface Setting {
  env: string;
  doc: string;
  /** The default as written in `.env.example` (empty: unset). */
  example: string;
}

/** Every setting recflow reads, in one place (the `TEMPORAL_*` ones are Temporal's own). */
export const SETTINGS: readonly Setting[] = [
  {
    env: 'RECFLOW_HOME',
    doc: 'root of local state (artifacts, registry, embedded Temporal, logs)',
    example: './.recflow',
  },
  { env: 'RECFLOW_ARTIFACTS', doc: 'artifact store, relative to RECFLOW_HOME', example: 'artifacts' },
  { env: 'RECFLOW_REGISTRY', doc: 'model registry and fleet folders, relative to RECFLOW_HOME', example: 'registry' },
  { env: 'RECFLOW_LOG_LEVEL', doc: 'trace, debug, info, warn or error', example: 'info' },
  {
    env: 'RECFLOW_LOG_FORMAT',
    doc: 'pretty (readable terminal, JSON to the log file) or json (JSON on the terminal)',
    example: 'pretty',
  },
  { env: 'RECFLOW_LOG_FILE', doc: 'structured JSON log file, relative to RECFLOW_HOME', example: 'logs/recflow.jsonl' },
  { env: 'RECFLOW_ADMIN_TOKEN', doc: 'bearer token of the serving admin API (unset: admin API disabled)', example: '' },
  {
    env: 'RECFLOW_FEEDBACK_SECRET',
    doc: 'signs feedback tokens, shared by every replica (unset: a secret created once in the fleet folder)',
    example: '',
  },
  { env: 'RECFLOW_ORT_THREADS', doc: 'onnxruntime intra-op threads per serving session', example: '1' },
  {
    env: 'RECFLOW_QUEUE_BUDGET_MS',
    doc: 'admission control: shed a request (503 + Retry-After) whose expected queueing exceeds this (0: off)',
    example: '50',
  },
  {
    env: 'RECFLOW_OPERATORS',
    doc: 'comma-separated names allowed to run `recflow rollback` (unset: anyone)',
    example: '',
  },
  { env: 'RECFLOW_CODE_VERSION', doc: 'code version recorded in the lineage (unset: git rev-parse HEAD)', example: '' },
  {
    env: 'RECFLOW_TF_BACKEND',
    doc: 'force a TensorFlow.js backend: tensorflow-gpu, tensorflow, wasm or cpu (unset: the best present)',
    example: '',
  },
  { env: 'RECFLOW_WORKER_METRICS', doc: "host:port of the workers' Prometheus endpoint (unset: none)", example: '' },
  {
    env: 'RECFLOW_BASE_MODEL',
    doc: 'BERT encoder folder for the search kind (unset: the one npm run setup installs)',
    example: '',
  },
  {
    env: 'RECFLOW_TEMPORAL_PORT',
    doc: 'gRPC port of the embedded Temporal dev server (0: a free port)',
    example: '7233',
  },
  {
    env: 'RECFLOW_TEMPORAL_UI',
    doc: 'serve the Temporal Web UI from the embedded server (true or false)',
    example: 'false',
  },
  { env: 'RECFLOW_TEMPORAL_UI_PORT', doc: 'Web UI port of the embedded server', example: '8233' },
  {
    env: 'TEMPORAL_ADDRESS',
    doc: 'an external Temporal frontend, host:port (unset: the embedded dev server)',
    example: '',
  },
  { env: 'TEMPORAL_NAMESPACE', doc: 'Temporal namespace', example: DEFAULT_NAMESPACE },
];

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(n) || n < min || n > max) {
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

function oneOf<T extends string>(env: Env, name: string, values: readonly T[], fallback: T): T {
  const raw = (env[name] || fallback).toLowerCase();
  if (!(values as readonly string[]).includes(raw))
    throw new RecflowError(ErrorType.InvalidInput, `${name}=${env[name]} is not one of ${values.join(', ')}`);
  return raw as T;
}

const opt = (env: Env, name: string): string | undefined => env[name]?.trim() || undefined;

function secret(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (raw.length < 16)
    throw new RecflowError(ErrorType.InvalidInput, `${name} is ${raw.length} characters: use at least 16`);
  return raw;
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;

/**
 * Parse the configuration from an environment. Only the variables of {@link SETTINGS} are read.
 * @throws {RecflowError} `InvalidInput` naming the variable and its bad value.
 */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): RecflowConfig {
  const home = resolve(cwd, env.RECFLOW_HOME || '.recflow');
  const tfBackend = opt(env, 'RECFLOW_TF_BACKEND');
  const backends = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
  if (tfBackend && !backends.includes(tfBackend))
    throw new RecflowError(
      ErrorType.InvalidInput,
      `RECFLOW_TF_BACKEND=${tfBackend} is not one of ${backends.join(', ')}`,
    );
  const metrics = opt(env, 'RECFLOW_WORKER_METRICS');
  if (metrics && !/^[^\s:]+:\d{1,5}$/.test(metrics))
    throw new RecflowError(ErrorType.InvalidInput, `RECFLOW_WORKER_METRICS=${metrics} is not host:port`);
  return {
    home,
    artifactsDir: resolve(home, env.RECFLOW_ARTIFACTS || 'artifacts'),
    registryDir: resolve(home, env.RECFLOW_REGISTRY || 'registry'),
    temporalDir: resolve(home, 'temporal'),
    logLevel: oneOf(env, 'RECFLOW_LOG_LEVEL', LOG_LEVELS, 'info'),
    logFormat: oneOf(env, 'RECFLOW_LOG_FORMAT', ['pretty', 'json'] as const, 'pretty'),
    logFile: resolve(home, env.RECFLOW_LOG_FILE || 'logs/recflow.jsonl'),
    operators: (env.RECFLOW_OPERATORS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    codeVersion: opt(env, 'RECFLOW_CODE_VERSION'),
    tfBackend,
    workerMetrics: metrics,
    baseModelDir: opt(env, 'RECFLOW_BASE_MODEL') ? resolve(cwd, env.RECFLOW_BASE_MODEL!) : undefined,
    serving: {
      adminToken: env.RECFLOW_ADMIN_TOKEN || undefined,
      feedbackSecret: secret(env, 'RECFLOW_FEEDBACK_SECRET'),
      ortThreads: int(env, 'RECFLOW_ORT_THREADS', 1, 1, 256),
      queueBudgetMs: int(env, 'RECFLOW_QUEUE_BUDGET_MS', 50, 0, 60_000),
    },
    temporal: {
      address: opt(env, 'TEMPORAL_ADDRESS'),
      namespace: env.TEMPORAL_NAMESPACE || DEFAULT_NAMESPACE,
      embeddedPort: int(env, 'RECFLOW_TEMPORAL_PORT', 7233, 0, 65535),
      ui: bool(env, 'RECFLOW_TEMPORAL_UI', false),
      uiPort: int(env, 'RECFLOW_TEMPORAL_UI_PORT', 8233, 1, 65535),
    },
  };
}

/** The committed `.env.example`: every setting with its meaning and default. */
export function envExample(): string {
  const lines = ['# recflow settings (lib/config.ts SETTINGS). Unset values use the default shown.', ''];
  for (const s of SETTINGS) lines.push(`# ${s.doc}`, `${s.example ? '' : '# '}${s.env}=${s.example}`, '');
  return `${lines.join('\n').trimEnd()}\n`;
}
