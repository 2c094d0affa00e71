/**
 * Test environments on the Temporal binaries that `npm run setup` installed (never a download, where they exist).
 * - {@link timeSkippingEnv}: the time-skipping test server, for workflow tests with fake activities.
 * - {@link devServerEnv}: the real dev server (the `temporal` CLI), for integration tests with real activities.
 * Both log which binary runs, so the test log shows the server version.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { temporal } from '@temporalio/proto';
import {
  DefaultLogger,
  Runtime,
  Worker,
  bundleWorkflowCode,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { SEARCH_ATTRIBUTE_KEYS } from '../../lib/constants';
import { devServerExecutable, findTemporalBinaries, testServerExecutable } from '../../lib/temporal/binaries';
import { WORKFLOWS_PATH } from '../../workers/run-worker';
import { activityInterceptors } from '../../activities/interceptors';

let runtimeInstalled = false;
function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const bindAddress = process.env.RECFLOW_WORKER_METRICS; // as the workers do (workers/run-worker.ts)
  Runtime.install({
    logger: new DefaultLogger(process.env.TEST_LOG_LEVEL === 'debug' ? 'DEBUG' : 'WARN'),
    ...(bindAddress
      ? {
          telemetryOptions: {
            metrics: { prometheus: { bindAddress, countersTotalSuffix: true, useSecondsForDurations: true } },
          },
        }
      : {}),
  });
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** The workflows bundled once per test process. */
export function testWorkflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });
  return bundle;
}

export async function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  const bins = findTemporalBinaries();
  console.log(
    `# time-skipping server: ${bins.testServer ? `${bins.testServer.source} ${bins.testServer.path}` : 'SDK download'}`,
  );
  const env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: testServerExecutable(bins) } });
  // The time-skipping server has no option for custom search attributes: register them like an operator would.
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(
      SEARCH_ATTRIBUTE_KEYS.map((k) => [k.name, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD]),
    ),
  });
  return env;
}

/** The real dev server; `port` fixed (e.g. to restart it where clients expect it), else any free one. */
export async function devServerEnv(
  opts: { dbFilename?: string; port?: number } = {},
): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  const bins = findTemporalBinaries();
  console.log(`# dev server: ${bins.cli ? `${bins.cli.version} (${bins.cli.source})` : 'SDK download'}`);
  const start = () =>
    TestWorkflowEnvironment.createLocal({
      server: {
        executable: devServerExecutable(bins),
        ip: '127.0.0.1',
        port: opts.port,
        dbFilename: opts.dbFilename,
        searchAttributes: SEARCH_ATTRIBUTE_KEYS,
        log: { format: 'json', level: 'error' },
      },
    });
  // The SDK gives the server 5 s to accept connections; a loaded host (two cores, a training run beside) can miss
  // that once. Starting again is safe: the failed start left no server behind.
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= 3 || !/did not start within/.test(String(err))) throw err;
      console.log(`# dev server did not start in time (attempt ${attempt}), starting again`);
    }
  }
}

/** A fresh temp folder for a test's artifacts and registry. */
export function tempHome(prefix = 'recflow-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Run `fn` while a worker for `taskQueue` polls, with the shared workflow bundle. */
export async function withWorker<T>(
  env: TestWorkflowEnvironment,
  opts: { taskQueue: string; activities: object; workflows?: boolean },
  fn: () => Promise<T>,
): Promise<T> {
  const worker = await Worker.create({
    interceptors: { activity: activityInterceptors },
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: opts.taskQueue,
    activities: opts.activities,
    workflowBundle: opts.workflows === false ? undefined : await testWorkflowBundle(),
  });
  return worker.runUntil(fn());
}
