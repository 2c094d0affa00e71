import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';

/**
 * When `RECFLOW_RECORD_HISTORIES=1`, save a finished workflow's history as a replay fixture
 * (test/fixtures/histories/<workflowType>-<label>.json). No-op otherwise.
 */
export async function maybeRecordHistory(handle: WorkflowHandle, workflowType: string, label: string): Promise<void> {
  if (process.env.RECFLOW_RECORD_HISTORIES !== '1') return;
  const history = await handle.fetchHistory();
  const file = join(__dirname, '..', 'fixtures', 'histories', `${workflowType}-${label}.json`);
  // The workflow id goes with the events: replay must use it (child workflow ids are derived from it).
  writeFileSync(file, `${JSON.stringify({ workflowId: handle.workflowId, ...history }, null, 1)}\n`);
  console.log(`# recorded ${file}`);
}
