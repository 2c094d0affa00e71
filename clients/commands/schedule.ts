import { readFileSync } from 'node:fs';
import { ScheduleOverlapPolicy, type Client, type ScheduleOptions } from '@temporalio/client';
import { Option, type Command } from 'commander';
import {
  CPU_TASK_QUEUE,
  DEFAULT_MODEL_NAME,
  DEFAULT_SEARCH_MODEL_NAME,
  defaultModelName,
  nightlyScheduleId,
  nightlyWorkflowId,
} from '../../lib/constants';
import { KIND_NAMES, type KindName } from '../../lib/kinds';
import { ErrorType, RecflowError } from '../../lib/errors';
import type { LifecycleInput } from '../../lib/lifecycle/types';
import type { NightlyInput } from '../../workflows/nightly';
import { lifecycleClient } from './lifecycle';

const OVERLAP: Record<string, ScheduleOverlapPolicy> = {
  skip: ScheduleOverlapPolicy.SKIP,
  'buffer-one': ScheduleOverlapPolicy.BUFFER_ONE,
  'buffer-all': ScheduleOverlapPolicy.BUFFER_ALL,
  'cancel-other': ScheduleOverlapPolicy.CANCEL_OTHER,
  'terminate-other': ScheduleOverlapPolicy.TERMINATE_OTHER,
  'allow-all': ScheduleOverlapPolicy.ALLOW_ALL,
};

interface ScheduleFlags {
  /** Default: the kind's (`shop-search` for `search`), else `shop-recs`. */
  model?: string;
  kind?: KindName | 'auto';
  cron: string;
  tz: string;
  overlap: string;
  catchup: string;
  input?: string;
  data?: string;
  format?: string;
  reviewers?: string;
  force?: boolean;
  skipWithoutDrift?: boolean;
  note?: string;
}

/** The schedule's definition from flags: a cron in a time zone starting `nightlyRetrainWorkflow`. */
export function scheduleOptions(f: ScheduleFlags): ScheduleOptions {
  const overlap = OVERLAP[f.overlap];
  if (overlap === undefined)
    throw new RecflowError(
      ErrorType.InvalidInput,
      `--overlap ${f.overlap}: expected one of ${Object.keys(OVERLAP).join(', ')}`,
    );
  if (f.cron.trim().split(/\s+/).length !== 5)
    throw new RecflowError(ErrorType.InvalidInput, `--cron '${f.cron}': expected 5 fields, e.g. '0 2 * * *'`);
  const lifecycle: LifecycleInput = f.input ? (JSON.parse(readFileSync(f.input, 'utf8')) as LifecycleInput) : {};
  if (f.kind) lifecycle.kind = f.kind;
  const model = f.model ?? lifecycle.modelName ?? defaultModelName(lifecycle.kind);
  lifecycle.modelName = model;
  lifecycle.requestedBy ??= 'nightly-schedule';
  if (f.data)
    lifecycle.data = { kind: 'dir', path: f.data, format: f.format === 'movielens' ? 'movielens' : 'recflow' };
  if (f.reviewers)
    lifecycle.approval = { ...lifecycle.approval, reviewers: f.reviewers.split(',').map((s) => s.trim()) };
  const input: NightlyInput = { lifecycle, force: f.force, skipWithoutDrift: f.skipWithoutDrift };
  return {
    scheduleId: nightlyScheduleId(model),
    spec: { cronExpressions: [f.cron], timezone: f.tz },
    action: {
      type: 'startWorkflow',
      workflowType: 'nightlyRetrainWorkflow',
      workflowId: nightlyWorkflowId(model),
      taskQueue: CPU_TASK_QUEUE,
      args: [input],
    },
    policies: { overlap, catchupWindow: f.catchup },
    state: { note: f.note ?? `nightly retrain of ${model}${lifecycle.kind ? ` (${lifecycle.kind})` : ''}` },
  };
}

async function withClient<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const client = await lifecycleClient();
  try {
    return await fn(client);
  } finally {
    await client.connection.close();
  }
}

function definitionFlags(cmd: Command): Command {
  return cmd
    .option(
      '--model <name>',
      `model name (default ${DEFAULT_MODEL_NAME}; ${DEFAULT_SEARCH_MODEL_NAME} with --kind search)`,
    )
    .addOption(new Option('--kind <kind>', 'model kind the nightly run trains').choices(['auto', ...KIND_NAMES]))
    .option('--cron <expr>', 'cron expression (5 fields)', '0 2 * * *')
    .option('--tz <zone>', 'IANA time zone of the cron', 'UTC')
    .option('--overlap <policy>', `when a run is still going: ${Object.keys(OVERLAP).join(', ')}`, 'skip')
    .option('--catchup <duration>', 'how late a missed run may still start (server down)', '1 day')
    .option('--input <file>', 'lifecycle input JSON (gates, approval, rollout...)')
    .option('--data <dir>', 'folder of CSV exports refreshed nightly (default: the synthetic shop)')
    .option('--format <format>', 'recflow or movielens')
    .option('--reviewers <list>', 'comma-separated reviewers')
    .option('--force', 'retrain even when the data did not change')
    .option('--skip-without-drift', 'skip also when the data changed without drift')
    .option('--note <text>', 'note shown with the schedule');
}

/** `recflow schedule create|update|describe|pause|unpause|trigger|backfill|delete`. */
export function registerScheduleCommands(program: Command): void {
  const schedule = program.command('schedule').description('the nightly retrain: a Temporal Schedule per model');

  definitionFlags(schedule.command('create').description('create the nightly schedule')).action(
    async (f: ScheduleFlags) =>
      withClient(async (c) => {
        const h = await c.schedule.create(scheduleOptions(f));
        console.log(`created schedule ${h.scheduleId}: '${f.cron}' ${f.tz}, overlap ${f.overlap}`);
      }),
  );

  definitionFlags(schedule.command('update').description('replace the schedule definition')).action(
    async (f: ScheduleFlags) =>
      withClient(async (c) => {
        const next = scheduleOptions(f);
        await c.schedule.getHandle(next.scheduleId).update((prev) => ({
          ...prev,
          spec: next.spec,
          action: next.action,
          policies: { ...prev.policies, ...next.policies },
        }));
        console.log(`updated schedule ${next.scheduleId}`);
      }),
  );

  schedule
    .command('describe')
    .option('--model <name>', 'model name', DEFAULT_MODEL_NAME)
    .option('--json', 'machine-readable output')
    .action(async (o: { model: string; json?: boolean }) =>
      withClient(async (c) => {
        const d = await c.schedule.getHandle(nightlyScheduleId(o.model)).describe();
        const summary = {
          scheduleId: d.scheduleId,
          paused: d.state.paused,
          note: d.state.note,
          cron: d.spec.calendars?.length ? 'calendar' : undefined,
          timezone: d.spec.timezone,
          overlap: d.policies.overlap,
          catchupWindowMs: d.policies.catchupWindow,
          nextRuns: d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()),
          recentRuns: d.info.recentActions.map((a) => ({
            scheduledAt: a.scheduledAt.toISOString(),
            workflowId: a.action.type === 'startWorkflow' ? a.action.workflow.workflowId : undefined,
          })),
          runningWorkflows: d.info.runningActions.map((a) => a.workflow.workflowId),
        };
        if (o.json) console.log(JSON.stringify(summary, null, 2));
        else {
          console.log(`${summary.scheduleId}${summary.paused ? ' (PAUSED)' : ''}: ${summary.note ?? ''}`);
          console.log(`  next: ${summary.nextRuns.join(', ') || '-'}`);
          for (const r of summary.recentRuns) console.log(`  ran ${r.scheduledAt} -> ${r.workflowId}`);
        }
      }),
    );

  for (const [name, what] of [
    ['pause', 'pause the schedule'],
    ['unpause', 'resume the schedule'],
    ['trigger', 'run now (respects the overlap policy)'],
    ['delete', 'delete the schedule (running workflows go on)'],
  ] as const) {
    schedule
      .command(name)
      .description(what)
      .option('--model <name>', 'model name', DEFAULT_MODEL_NAME)
      .option('--note <text>', 'why (pause/unpause)')
      .action(async (o: { model: string; note?: string }) =>
        withClient(async (c) => {
          const h = c.schedule.getHandle(nightlyScheduleId(o.model));
          if (name === 'pause') await h.pause(o.note);
          else if (name === 'unpause') await h.unpause(o.note);
          else if (name === 'trigger') await h.trigger();
          else await h.delete();
          console.log(`${name}: ${h.scheduleId}`);
        }),
      );
  }

  schedule
    .command('backfill')
    .description('run the schedule for a past period (e.g. after an outage)')
    .option('--model <name>', 'model name', DEFAULT_MODEL_NAME)
    .requiredOption('--from <iso>', 'start time, ISO 8601')
    .requiredOption('--to <iso>', 'end time, ISO 8601')
    .option('--overlap <policy>', 'overlap policy of the backfilled runs', 'buffer-all')
    .action(async (o: { model: string; from: string; to: string; overlap: string }) =>
      withClient(async (c) => {
        const start = new Date(o.from);
        const end = new Date(o.to);
        if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end <= start)
          throw new RecflowError(
            ErrorType.InvalidInput,
            `--from ${o.from} --to ${o.to}: expected two ISO times, from < to`,
          );
        await c.schedule
          .getHandle(nightlyScheduleId(o.model))
          .backfill([{ start, end, overlap: OVERLAP[o.overlap] ?? ScheduleOverlapPolicy.BUFFER_ALL }]);
        console.log(`backfill requested: ${start.toISOString()} .. ${end.toISOString()}`);
      }),
    );
}
