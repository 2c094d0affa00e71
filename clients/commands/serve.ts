import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../lib/config';
import { ErrorType, RecflowError } from '../../lib/errors';
import { DEFAULT_FLEET, type SlotState } from '../../lib/fleet/types';
import { FleetStore, REPLICA_LIVE_MS } from '../../lib/fleet/store';
import { createLogger } from '../../lib/log';
import type { startServer as StartServer } from '../../serving/server';
import { untilSignal } from './dev';
import { table } from './models';

function int(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new RecflowError(ErrorType.InvalidInput, `${name} ${v} is not an integer in [${min}, ${max}]`);
    return n;
  };
}

/** `recflow serve` (a serving replica) and `recflow fleet status` (desired vs applied state of a fleet). */
export function registerServeCommands(program: Command): void {
  program
    .command('serve')
    .description('run an ONNX serving replica that reconciles to the fleet desired state (or serves one bundle)')
    .option('--port <port>', 'HTTP port (0: any free port)', int('--port', 0, 65535), 8080)
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--fleet <name>', 'fleet whose desired state to follow', DEFAULT_FLEET)
    .option('--advertise-url <url>', 'URL the fleet reaches this replica at (behind NAT or in containers)')
    .option('--replica-id <id>', 'replica id in the fleet reports (default <hostname>-<port>)')
    .option('--bundle <dir>', 'serve this bundle folder as stable, without a fleet')
    .option('--model-version <version>', 'version label of --bundle', 'local')
    .option('--precision <precision>', 'fp32 or int8 for --bundle', 'fp32')
    .option('--poll-ms <ms>', 'reconcile poll interval', int('--poll-ms', 50, 60_000), 1000)
    .option(
      '--threads <n>',
      'onnxruntime intra-op threads (default RECFLOW_ORT_THREADS or 1)',
      int('--threads', 1, 256),
    )
    .option(
      '--queue-budget-ms <ms>',
      'shed model requests (503 + Retry-After) when their expected queueing exceeds this; 0: never (default RECFLOW_QUEUE_BUDGET_MS or 50)',
      int('--queue-budget-ms', 0, 60_000),
    )
    .option('--max-batch <n>', 'largest micro-batch (1 turns batching off)', int('--max-batch', 1, 1024), 64)
    .option(
      '--bundle-root <dir...>',
      'folders a fleet replica may load bundles from (default: the artifact store); a slot elsewhere is refused',
    )
    .action(
      async (opts: {
        port: number;
        host: string;
        fleet: string;
        replicaId?: string;
        advertiseUrl?: string;
        bundle?: string;
        modelVersion: string;
        precision: string;
        pollMs: number;
        threads?: number;
        queueBudgetMs?: number;
        maxBatch: number;
        bundleRoot?: string[];
      }) => {
        if (opts.precision !== 'fp32' && opts.precision !== 'int8')
          throw new RecflowError(ErrorType.InvalidInput, `--precision ${opts.precision} is not fp32 or int8`);
        const config = loadConfig();
        const logger = createLogger('serve', config);
        // Loaded here so other commands do not pay for onnxruntime and fastify.
        const { startServer } = require('../../serving/server') as { startServer: typeof StartServer };
        const server = await startServer({
          port: opts.port,
          host: opts.host,
          registryDir: config.registryDir,
          fleet: opts.fleet,
          replicaId: opts.replicaId,
          advertiseUrl: opts.advertiseUrl,
          bundle: opts.bundle,
          version: opts.modelVersion,
          precision: opts.precision,
          pollMs: opts.pollMs,
          logger,
          ...(opts.queueBudgetMs !== undefined ? { admission: { budgetMs: opts.queueBudgetMs } } : {}),
          model: {
            intraOpThreads: opts.threads,
            maxBatch: opts.maxBatch,
            // A fleet replica loads what the desired state names: only from the artifact store (or --bundle-root).
            bundleRoots: opts.bundle ? undefined : (opts.bundleRoot ?? [config.artifactsDir]).map((d) => resolve(d)),
          },
        });
        logger.info(
          { url: server.url, replicaId: server.replicaId, fleet: opts.bundle ? null : opts.fleet },
          'serving',
        );
        console.log(`serving on ${server.url} (replica ${server.replicaId}); Ctrl-C to stop`);
        const sig = await untilSignal();
        logger.info({ signal: sig }, 'stopping');
        await server.close();
      },
    );

  const fleet = program.command('fleet').description('the serving fleet: desired state and replicas');
  fleet
    .command('set')
    .description('change the desired state by hand (replicas apply it on their next poll); unset fields are kept')
    .option('--fleet <name>', 'fleet name', DEFAULT_FLEET)
    .option('--stable-version <version>', 'version for the stable slot (with --stable-bundle)')
    .option('--stable-bundle <dir>', 'bundle folder for the stable slot')
    .option('--stable-precision <p>', 'fp32 or int8', 'fp32')
    .option('--canary-version <version>', 'version for the canary slot (with --canary-bundle)')
    .option('--canary-bundle <dir>', 'bundle folder for the canary slot')
    .option('--canary-precision <p>', 'fp32 or int8', 'fp32')
    .option('--no-canary', 'empty the canary slot (and set the weight to 0)')
    .option('--weight <percent>', 'canary weight 0..100', int('--weight', 0, 100))
    .requiredOption('--reason <text>', 'who and why, kept in desired.json')
    .action(
      async (o: {
        fleet: string;
        stableVersion?: string;
        stableBundle?: string;
        stablePrecision: string;
        canaryVersion?: string;
        canaryBundle?: string;
        canaryPrecision: string;
        canary: boolean;
        weight?: number;
        reason: string;
      }) => {
        const slot = (name: string, version?: string, bundle?: string, precision?: string): SlotState | undefined => {
          if (!version && !bundle) return undefined;
          if (!version || !bundle)
            throw new RecflowError(ErrorType.InvalidInput, `--${name}-version and --${name}-bundle go together`);
          if (precision !== 'fp32' && precision !== 'int8')
            throw new RecflowError(ErrorType.InvalidInput, `--${name}-precision ${precision} is not fp32 or int8`);
          return { version, bundlePath: resolve(bundle), precision: precision };
        };
        const store = new FleetStore(loadConfig().registryDir, o.fleet);
        const { desired, changed } = await store.updateDesired({
          stable: slot('stable', o.stableVersion, o.stableBundle, o.stablePrecision),
          canary: o.canary ? slot('canary', o.canaryVersion, o.canaryBundle, o.canaryPrecision) : null,
          canaryWeight: o.canary ? o.weight : 0,
          reason: o.reason,
        });
        console.log(
          changed
            ? `fleet ${desired.fleet}: generation ${desired.generation}`
            : `fleet ${desired.fleet}: unchanged (generation ${desired.generation})`,
        );
      },
    );
  fleet
    .command('status')
    .description('show the desired state and what each live replica applied')
    .option('--fleet <name>', 'fleet name', DEFAULT_FLEET)
    .option('--json', 'machine-readable output')
    .action(async (opts: { fleet: string; json?: boolean }) => {
      const store = new FleetStore(loadConfig().registryDir, opts.fleet);
      const desired = await store.readDesired();
      const replicas = await store.readReports({ liveWithinMs: REPLICA_LIVE_MS });
      if (opts.json) return console.log(JSON.stringify({ desired, replicas }, null, 2));
      if (!desired) console.log(`fleet ${opts.fleet}: no desired state in ${store.dir}`);
      else {
        console.log(
          `fleet ${desired.fleet}  generation ${desired.generation}  (${desired.updatedAt}: ${desired.reason})`,
        );
        console.log(`  stable  ${desired.stable ? `${desired.stable.version} [${desired.stable.precision}]` : '-'}`);
        console.log(
          `  canary  ${desired.canary ? `${desired.canary.version} [${desired.canary.precision}]` : '-'}  weight ${desired.canaryWeight}%`,
        );
      }
      if (!replicas.length) return console.log('no live replicas');
      console.log(
        table(
          ['REPLICA', 'URL', 'APPLIED', 'STABLE', 'CANARY', 'WEIGHT', 'HEALTHY', 'HEARTBEAT'],
          replicas.map((r) => [
            r.replicaId,
            r.url,
            String(r.appliedGeneration) + (desired && r.appliedGeneration < desired.generation ? ' (behind)' : ''),
            r.stable ?? '-',
            r.canary ?? '-',
            `${r.canaryWeight}%`,
            String(r.healthy),
            r.heartbeatAt,
          ]),
        ),
      );
    });
}
