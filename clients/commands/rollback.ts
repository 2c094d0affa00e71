import type { Command } from 'commander';
import { ArtifactStore } from '../../lib/artifacts';
import { loadConfig } from '../../lib/config';
import { DEFAULT_MODEL_NAME } from '../../lib/constants';
import { ErrorType, RecflowError } from '../../lib/errors';
import { DEFAULT_FLEET } from '../../lib/fleet/types';
import { FleetStore } from '../../lib/fleet/store';
import { FileModelRegistry } from '../../lib/registry';
import { assertTransition, type ModelRegistry, type ModelVersion } from '../../lib/registry/types';

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
 * promotion even when the Temporal server is down.
 *
 * Everything is checked before anything is written: the actor is an allowed operator (`RECFLOW_OPERATORS`, when
 * set); no canary is in progress (its run owns the fleet's rollout lock: `abort` it instead); the target exists, was
 * approved by a reviewer (or the gates and the first deployment) and served in production before, and its bundle is
 * in the store. Then the fleet and the registry change together: when a registry write fails after the fleet was
 * changed, the fleet is put back as it was and the error says so.
 */
export async function rollbackFleet(
  o: RollbackOptions,
  registryDir: string,
  artifactsDir: string,
  operators: string[] = [],
  registry: ModelRegistry = new FileModelRegistry(registryDir),
): Promise<RollbackResult> {
  if (operators.length && !operators.includes(o.as))
    throw new RecflowError(
      ErrorType.InvalidInput,
      `${o.as} may not roll back: operators are ${operators.join(', ')} (RECFLOW_OPERATORS)`,
    );
  if (!o.reason?.trim()) throw new RecflowError(ErrorType.InvalidInput, 'a rollback needs a reason');
  const fleet = new FleetStore(registryDir, o.fleet);
  const store = new ArtifactStore(artifactsDir);
  const desired = await fleet.readDesired();
  if (desired?.canary) {
    throw new RecflowError(
      ErrorType.InvalidInput,
      `fleet ${o.fleet} has a canary in progress (${desired.canary.version}): abort its run with \`npx recflow abort <workflowId> --as ${o.as}\`; if that run is gone (terminated), drop the canary with \`npx recflow fleet set --fleet ${o.fleet} --no-canary --reason "<why>"\` first`,
    );
  }
  if (desired?.stable && !desired.stable.version.startsWith(`${o.model}@`))
    throw new RecflowError(
      ErrorType.InvalidInput,
      `fleet ${o.fleet} serves ${desired.stable.version}, not a version of ${o.model}: use --model or --fleet`,
    );
  const current = await registry.find(`${o.model}@champion`);
  const events = await registry.events(o.model);
  const served = new Set(events.filter((e) => e.type === 'status' && e.to === 'production').map((e) => e.version));
  let target: ModelVersion;
  if (o.to) {
    target = await registry.get(o.to.includes('@') ? o.to : `${o.model}@${o.to}`);
  } else {
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
  const ref = `${o.model}@v${target.version}`;
  if (current && target.version === current.version) {
    throw new RecflowError(ErrorType.InvalidInput, `${ref} is already the champion`);
  }
  const approved = events.some((e) => e.type === 'approval' && e.version === target.version && e.to === 'approved');
  if (!served.has(target.version) || target.status === 'rejected' || (!approved && target.approver === undefined))
    throw new RecflowError(
      ErrorType.InvalidInput,
      `${ref} (status ${target.status}) ${target.status === 'rejected' ? 'was rejected' : 'never served in production'}: a rollback only goes back to a version that was approved and served`,
    );
  assertTransition(target.status, 'production', ref);
  if (current) assertTransition(current.status, 'rolled_back', `${o.model}@v${current.version}`);
  const bundle = await store.get('bundle', target.bundle.id);

  // Checked: now change the fleet and the registry together.
  const ctx = { actor: o.as, reason: `rollback: ${o.reason}` };
  const { desired: next } = await fleet.updateDesired({
    stable: { version: ref, bundlePath: bundle.path, precision: desired?.stable?.precision ?? 'int8' },
    canary: null,
    canaryWeight: 0,
    reason: `rollback to ${ref} by ${o.as}: ${o.reason}`,
  });
  // Each registry change with its undo, so a failure half way puts everything back.
  const undo: Array<() => Promise<unknown>> = [];
  const undoCtx = { actor: o.as, reason: `undo of a failed rollback to ${ref}` };
  try {
    if (current) {
      await registry.setStatus(o.model, current.version, 'rolled_back', ctx);
      undo.push(() => registry.setStatus(o.model, current.version, current.status, undoCtx));
    }
    if (target.status !== 'production') {
      await registry.setStatus(o.model, target.version, 'production', ctx);
      undo.push(() => registry.setStatus(o.model, target.version, target.status, undoCtx));
    }
    const previousChampion = await registry.setAlias(o.model, 'champion', target.version, ctx);
    undo.push(() => registry.setAlias(o.model, 'champion', previousChampion, undoCtx));
    await registry.setAlias(o.model, 'canary', null, ctx);
  } catch (err) {
    const undone: string[] = [];
    for (const u of undo.reverse()) await u().catch((e: unknown) => undone.push((e as Error).message));
    await fleet.updateDesired({
      stable: desired?.stable ?? null,
      canary: null,
      canaryWeight: 0,
      reason: `rollback to ${ref} by ${o.as} undone: the registry could not follow (${(err as Error).message})`,
    });
    throw new RecflowError(
      ErrorType.InvalidInput,
      `rollback to ${ref} undone: the registry refused (${(err as Error).message}); the fleet serves ${desired?.stable?.version ?? 'nothing'} again${undone.length ? `; could not undo in the registry: ${undone.join('; ')}` : ''}`,
    );
  }
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
      const r = await rollbackFleet(o, config.registryDir, config.artifactsDir, config.operators);
      console.log(
        o.json
          ? JSON.stringify(r)
          : `rolled back ${r.from ?? '-'} -> ${r.to} (fleet ${o.fleet}, generation ${r.generation})`,
      );
    });
}
