import type { Command } from 'commander';
import { ArtifactStore } from '../../lib/artifacts';
import { loadConfig } from '../../lib/config';
import { DEFAULT_MODEL_NAME } from '../../lib/constants';
import { ErrorType, RecflowError } from '../../lib/errors';
import { DEFAULT_FLEET } from '../../lib/fleet/types';
import { FleetStore } from '../../lib/fleet/store';
import { FileModelRegistry } from '../../lib/registry';
import type { ModelVersion } from '../../lib/registry/types';

export interface RollbackOptions {
  model: string;
  fleet: string;
  to?: string;
  as: string;
  reason: string;
}

export interface RollbackResult {
  from: string | null;
  to: string;
  generation: number;
}

/**
 * Put the fleet back on an earlier version: the version that served before the current champion (or `--to`).
 * Works straight on the registry and the fleet's desired state, without Temporal, so the on-call engineer can undo a
 * promotion even when the Temporal server is down. A canary in progress is refused: `abort` its run instead (that
 * run owns the fleet's rollout lock).
 */
export async function rollbackFleet(
  o: RollbackOptions,
  registryDir: string,
  artifactsDir: string,
): Promise<RollbackResult> {
  const registry = new FileModelRegistry(registryDir);
  const fleet = new FleetStore(registryDir, o.fleet);
  const store = new ArtifactStore(artifactsDir);
  const desired = await fleet.readDesired();
  if (desired?.canary) {
    throw new RecflowError(
      ErrorType.InvalidInput,
      `fleet ${o.fleet} has a canary in progress (${desired.canary.version}): abort its run with \`npx recflow abort <workflowId> --as ${o.as}\`; if that run is gone (terminated), drop the canary with \`npx recflow fleet set --fleet ${o.fleet} --no-canary --reason "<why>"\` first`,
    );
  }
  const current = await registry.find(`${o.model}@champion`);
  let target: ModelVersion;
  if (o.to) {
    target = await registry.get(o.to.includes('@') ? o.to : `${o.model}@${o.to}`);
  } else {
    const events = await registry.events(o.model);
    const served = new Set(events.filter((e) => e.type === 'status' && e.to === 'production').map((e) => e.version));
    const earlier = (await registry.listVersions(o.model))
      .filter((v) => served.has(v.version) && (!current || v.version < current.version))
      .sort((a, b) => b.version - a.version)[0];
    if (!earlier) {
      throw new RecflowError(
        ErrorType.InvalidInput,
        `no earlier production version of ${o.model} to roll back to; name one with --to vN`,
      );
    }
    target = earlier;
  }
  if (current && target.version === current.version) {
    throw new RecflowError(ErrorType.InvalidInput, `${o.model}@v${target.version} is already the champion`);
  }
  const bundle = await store.get('bundle', target.bundle.id);
  const ref = `${o.model}@v${target.version}`;
  const ctx = { actor: o.as, reason: `rollback: ${o.reason}` };
  const { desired: next } = await fleet.updateDesired({
    stable: { version: ref, bundlePath: bundle.path, precision: desired?.stable?.precision ?? 'int8' },
    canary: null,
    canaryWeight: 0,
    reason: `rollback to ${ref} by ${o.as}: ${o.reason}`,
  });
  if (current) await registry.setStatus(o.model, current.version, 'rolled_back', ctx);
  if (target.status !== 'production') await registry.setStatus(o.model, target.version, 'production', ctx);
  await registry.setAlias(o.model, 'champion', target.version, ctx);
  await registry.setAlias(o.model, 'canary', null, ctx);
  return { from: current ? `${o.model}@v${current.version}` : null, to: ref, generation: next.generation };
}

/** `recflow rollback`: the on-call's undo of a promotion. */
export function registerRollbackCommand(program: Command): void {
  program
    .command('rollback')
    .description('serve the previous production version again (or --to vN); registry and fleet updated together')
    .option('--model <name>', 'model name', DEFAULT_MODEL_NAME)
    .option('--fleet <name>', 'fleet', DEFAULT_FLEET)
    .option('--to <version>', 'version to serve, e.g. v3 (default: the one before the champion)')
    .requiredOption('--as <who>', 'your name (recorded)')
    .requiredOption('--reason <text>', 'why (recorded)')
    .option('--json', 'machine-readable output')
    .action(async (o: RollbackOptions & { json?: boolean }) => {
      const config = loadConfig();
      const r = await rollbackFleet(o, config.registryDir, config.artifactsDir);
      console.log(
        o.json
          ? JSON.stringify(r)
          : `rolled back ${r.from ?? '-'} -> ${r.to} (fleet ${o.fleet}, generation ${r.generation})`,
      );
    });
}
