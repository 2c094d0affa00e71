/**
 * The canary statistics are sandbox-safe: a workflow that imports them bundles for Temporal's deterministic
 * sandbox (which refuses Node built-ins), so the rollout workflow can run the analysis itself.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { DefaultLogger, bundleWorkflowCode } from '@temporalio/worker';

describe('canary statistics in the workflow sandbox', () => {
  it('a workflow importing lib/canary bundles', async () => {
    const testDir = join(__dirname, '..', '..');
    mkdirSync(join(testDir, '.tmp'), { recursive: true });
    const dir = mkdtempSync(join(testDir, '.tmp', 'canary-wf-'));
    const lib = relative(dir, join(testDir, '..', 'lib', 'canary'))
      .split('\\')
      .join('/');
    writeFileSync(
      join(dir, 'wf.ts'),
      [
        `import { analyzeRolloutLook } from '${lib}/analyze';`,
        `import { emptyBuckets, mergeBuckets, subtractBuckets } from '${lib}/buckets';`,
        `import { simulateRollouts, sequentialAnalyst } from '${lib}/simulate';`,
        'export async function canaryStatsWorkflow(): Promise<string> {',
        '  const p = { canaryWeight: 10, stable: mergeBuckets([emptyBuckets(8)]), canary: subtractBuckets(emptyBuckets(8), emptyBuckets(8)) };',
        '  const r = analyzeRolloutLook({ periods: [p] });',
        '  return `${r.analysis.verdict} ${simulateRollouts(1, 1, sequentialAnalyst()).rollouts}`;',
        '}',
        '',
      ].join('\n'),
    );
    try {
      const bundle = await bundleWorkflowCode({
        workflowsPath: join(dir, 'wf.ts'),
        logger: new DefaultLogger('ERROR'),
      });
      assert.ok(bundle.code.includes('canaryStatsWorkflow'));
      assert.ok(bundle.code.includes('analyzeRolloutLook'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
