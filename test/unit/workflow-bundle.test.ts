import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DefaultLogger, bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOWS_PATH } from '../../workers/run-worker';

describe('workflow bundle', () => {
  it('bundles workflows/index.ts for the deterministic sandbox', async () => {
    const bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('ERROR') });
    assert.ok(bundle.code.includes('smokeWorkflow'));
  });

  it('refuses a workflow that imports a Node built-in', async () => {
    // Inside the project, so that @temporalio/workflow resolves as it does for workflows/.
    mkdirSync(join(__dirname, '..', '.tmp'), { recursive: true });
    const dir = mkdtempSync(join(__dirname, '..', '.tmp', 'bad-wf-'));
    const file = join(dir, 'bad.ts');
    writeFileSync(
      file,
      "import { readFileSync } from 'fs';\nexport async function badWorkflow(): Promise<string> { return readFileSync('/etc/hostname', 'utf8'); }\n",
    );
    try {
      await assert.rejects(
        bundleWorkflowCode({ workflowsPath: file, logger: new DefaultLogger('ERROR') }),
        /disallowed modules[\s\S]*'fs'/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
