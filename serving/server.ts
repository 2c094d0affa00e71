/**
 * The serving process: builds the app, listens, runs the reconcile loop, closes gracefully (stop taking
 * connections, finish requests in flight, release the models, remove the replica report).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import type { Precision } from '../lib/bundle';
import { loadConfig } from '../lib/config';
import { ErrorType, RecflowError } from '../lib/errors';
import { loadFleetSecret, statsReaderToken } from '../lib/fleet/secret';
import { REPLICA_LIVE_MS, type FleetStore } from '../lib/fleet/store';
import { DEFAULT_FLEET } from '../lib/fleet/types';
import { Admission, admissionServerFactory, type AdmissionOptions } from './admission';
import { buildApp } from './app';
import type { Peer } from './feedback';
import { ServingMetrics } from './metrics';
import { ModelSlots, type ModelOptions } from './model-slot';
import { FleetSource, MemorySource, Reconciler, type DesiredSource } from './reconcile';

/** Options of {@link startServer}. */
export interface ServerOptions {
  /** 0 picks a free port. */
  port: number;
  /** @default 127.0.0.1 */
  host?: string;
  /** Model registry dir holding `fleets/<fleet>/` (fleet mode). */
  registryDir?: string;
  /** @default `default` */
  fleet?: string;
  /** @default `<hostname>-<port>` */
  replicaId?: string;
  /** Serve this bundle folder as stable, without a fleet. */
  bundle?: string;
  /** Version label of `bundle`. @default `local` */
  version?: string;
  /** Precision of `bundle`. @default `fp32` */
  precision?: Precision;
  /** URL other hosts reach this replica at (reported to the fleet). @default `http://<host>:<port>` */
  advertiseUrl?: string;
  /** Reconcile poll interval. @default 1000 */
  pollMs?: number;
  /** Admin API bearer token. @default `RECFLOW_ADMIN_TOKEN` (lib/config.ts) */
  adminToken?: string;
  /**
   * The fleet secret (signs feedback tokens, derives the stats-reader token). @default `RECFLOW_FEEDBACK_SECRET`,
   * else the fleet folder's secret file (created once), else (`bundle` mode) a random one for this process
   */
  feedbackSecret?: string;
  logger?: Logger | false;
  model?: ModelOptions;
  /** Admission control. @default budget `RECFLOW_QUEUE_BUDGET_MS` (50 ms) */
  admission?: AdmissionOptions;
  /** Collect process metrics (off in tests that start many apps). @default true */
  processMetrics?: boolean;
}

/** The fleet's live replicas from their reports, read at most once a second. */
function livePeers(store: FleetStore | undefined): () => Promise<Peer[]> {
  if (!store) return async () => [];
  let cached: { at: number; peers: Promise<Peer[]> } | undefined;
  return () => {
    if (!cached || Date.now() - cached.at > 1000) {
      const peers = store
        .readReports({ liveWithinMs: REPLICA_LIVE_MS })
        .then((rs) => rs.filter((r) => r.url).map((r) => ({ replicaId: r.replicaId, url: r.url })))
        .catch(() => []);
      cached = { at: Date.now(), peers };
    }
    return cached.peers;
  };
}

/** A running replica. */
export interface RunningServer {
  url: string;
  replicaId: string;
  app: FastifyInstance;
  slots: ModelSlots;
  reconciler: Reconciler;
  metrics: ServingMetrics;
  admission: Admission;
  close(): Promise<void>;
}

/**
 * Start a replica: listen, then reconcile to the desired state (the single bundle at once, or the fleet's state on
 * the first tick and every `pollMs` after).
 * @throws {RecflowError} `InvalidInput` when neither a bundle nor a registry dir is given.
 */
export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const log = opts.logger === undefined ? pino({ level: 'info' }) : opts.logger;
  const config = loadConfig().serving;
  const metrics = new ServingMetrics({ processMetrics: opts.processMetrics });
  const slots = new ModelSlots(
    {
      ...opts.model,
      intraOpThreads: opts.model?.intraOpThreads ?? config.ortThreads,
      onBatch: (graph, version, size, seconds) => {
        metrics.batchSize.observe({ graph }, size);
        opts.model?.onBatch?.(graph, version, size, seconds);
      },
    },
    (s) => metrics.observeSlots(s),
  );
  let source: DesiredSource;
  if (opts.bundle) {
    source = new MemorySource({
      fleet: 'local',
      generation: 1,
      stable: {
        version: opts.version ?? 'local',
        bundlePath: resolve(opts.bundle),
        precision: opts.precision ?? 'fp32',
      },
      canary: null,
      canaryWeight: 0,
      updatedAt: new Date().toISOString(),
      reason: 'serve --bundle',
    });
  } else if (opts.registryDir) {
    source = new FleetSource(opts.registryDir, opts.fleet ?? DEFAULT_FLEET);
  } else {
    throw new RecflowError(ErrorType.InvalidInput, 'serve: give --bundle DIR, or a registry dir for fleet mode');
  }
  const configured = opts.feedbackSecret ?? config.feedbackSecret;
  const secret = source.store
    ? await loadFleetSecret(source.store.dir, configured)
    : Buffer.from(configured ?? randomBytes(32).toString('hex'));
  const replicaIdArg = opts.replicaId;
  const reconciler = new Reconciler({
    source,
    slots,
    replicaId: replicaIdArg ?? 'pending',
    intervalMs: opts.pollMs,
    log: log || undefined,
  });
  const peers = livePeers(source.store);
  const admission = new Admission({ budgetMs: config.queueBudgetMs, ...opts.admission });
  const app = buildApp({
    slots,
    metrics,
    reconciler,
    feedbackSecret: secret,
    peers,
    serverFactory: admissionServerFactory(admission, (path) => metrics.shed.inc({ route: path })),
    adminToken: opts.adminToken ?? config.adminToken,
    readToken: statsReaderToken(secret),
    logger: log,
    bundleRoots: opts.model?.bundleRoots,
  });
  app.server.keepAliveTimeout = 65_000;
  app.server.requestTimeout = 30_000;
  const host = opts.host ?? '127.0.0.1';
  // A deep accept queue: a burst of new connections (1000 clients at once) waits in the kernel instead of
  // having its SYNs dropped and retried a second later.
  await app.listen({ port: opts.port, host, backlog: 4096 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const replicaId = replicaIdArg ?? `${hostname()}-${port}`.toLowerCase().replace(/[^a-z0-9._-]/g, '-');
  reconciler.replicaId = replicaId;
  reconciler.url = opts.advertiseUrl ?? `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  if (opts.bundle) await reconciler.tick();
  reconciler.start();
  let closing: Promise<void> | undefined;
  return {
    url: reconciler.url,
    replicaId,
    app,
    slots,
    reconciler,
    metrics,
    admission,
    close: () =>
      (closing ??= (async () => {
        await reconciler.stop();
        await app.close();
        await slots.close();
      })()),
  };
}
