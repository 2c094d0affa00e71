import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';
import type { RecflowConfig } from '../config';
import { ErrorType, RecflowError } from '../errors';
import { readEmbeddedServerState } from './embedded';

/** Where to reach Temporal and how. */
export interface TemporalTarget {
  /** `env` (standard TEMPORAL_* variables or profile), `embedded` (a local recflow dev server), or `explicit`. */
  source: 'env' | 'embedded' | 'explicit';
  namespace: string;
  connectionOptions: NativeConnectionOptions;
}

const ENV_KEYS = ['TEMPORAL_ADDRESS', 'TEMPORAL_PROFILE', 'TEMPORAL_CONFIG_FILE', 'TEMPORAL_API_KEY'];

/**
 * Find the Temporal server: the standard `TEMPORAL_*` variables (and `temporal.toml` profiles, via
 * `@temporalio/envconfig`, so Temporal Cloud, API keys and mTLS work unchanged) when any is set; else the
 * embedded dev server a recflow process runs. Undefined when neither.
 */
export function findTemporalTarget(
  config: RecflowConfig,
  env: Record<string, string | undefined> = process.env,
): TemporalTarget | undefined {
  if (ENV_KEYS.some((k) => env[k])) {
    const loaded = loadClientConnectConfig({ overrideEnvVars: env as Record<string, string> });
    return {
      source: 'env',
      namespace: loaded.namespace ?? config.temporal.namespace,
      connectionOptions: loaded.connectionOptions,
    };
  }
  const state = readEmbeddedServerState(config);
  if (state) return { source: 'embedded', namespace: state.namespace, connectionOptions: { address: state.address } };
  return undefined;
}

/** {@link findTemporalTarget}, or a clear error that says how to start one. */
export function requireTemporalTarget(config: RecflowConfig): TemporalTarget {
  const target = findTemporalTarget(config);
  if (!target) {
    throw new RecflowError(
      ErrorType.InvalidInput,
      `no Temporal server: set TEMPORAL_ADDRESS, or start the embedded one with \`npx recflow dev\` (state in ${config.temporalDir})`,
    );
  }
  return target;
}

/**
 * A client for a target.
 * @throws {RecflowError} `TemporalUnavailable` naming the address and where it came from (never the credentials).
 */
export async function connectClient(target: TemporalTarget): Promise<Client> {
  const connection = await Connection.connect(target.connectionOptions).catch((err: unknown) => {
    throw unreachable(target, err);
  });
  return new Client({ connection, namespace: target.namespace });
}

/** A worker connection for a target. @throws {RecflowError} `TemporalUnavailable`, as {@link connectClient}. */
export async function connectWorker(target: TemporalTarget): Promise<NativeConnection> {
  return NativeConnection.connect(target.connectionOptions).catch((err: unknown) => {
    throw unreachable(target, err);
  });
}

function unreachable(target: TemporalTarget, err: unknown): RecflowError {
  const from =
    target.source === 'env'
      ? 'from TEMPORAL_ADDRESS / TEMPORAL_PROFILE'
      : target.source === 'embedded'
        ? 'the embedded dev server; `npx recflow dev` starts it'
        : 'as configured';
  const why = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 300);
  return new RecflowError(
    ErrorType.TemporalUnavailable,
    `cannot reach Temporal at ${target.connectionOptions.address ?? '(no address)'} (${from}): ${why}`,
  );
}
