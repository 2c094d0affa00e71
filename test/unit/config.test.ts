import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../lib/config';

describe('loadConfig', () => {
  it('defaults under ./.recflow', () => {
    const c = loadConfig({}, '/srv/x');
    assert.equal(c.home, '/srv/x/.recflow');
    assert.equal(c.artifactsDir, '/srv/x/.recflow/artifacts');
    assert.equal(c.temporal.address, undefined);
    assert.equal(c.temporal.namespace, 'default');
    assert.equal(c.temporal.embeddedPort, 7233);
  });

  it('reads the standard TEMPORAL_* and RECFLOW_* variables', () => {
    const c = loadConfig(
      {
        RECFLOW_HOME: '/data/rf',
        TEMPORAL_ADDRESS: 'temporal:7233',
        TEMPORAL_NAMESPACE: 'ml',
        RECFLOW_TEMPORAL_UI: 'true',
      },
      '/srv/x',
    );
    assert.equal(c.home, '/data/rf');
    assert.equal(c.temporal.address, 'temporal:7233');
    assert.equal(c.temporal.namespace, 'ml');
    assert.equal(c.temporal.ui, true);
  });

  it('names the variable and value it refuses', () => {
    assert.throws(
      () => loadConfig({ RECFLOW_TEMPORAL_PORT: '70000' }),
      /RECFLOW_TEMPORAL_PORT=70000 is not an integer/,
    );
    assert.throws(() => loadConfig({ RECFLOW_TEMPORAL_UI: 'maybe' }), /RECFLOW_TEMPORAL_UI=maybe is not a boolean/);
    assert.throws(() => loadConfig({ RECFLOW_LOG_LEVEL: 'loud' }), /RECFLOW_LOG_LEVEL=loud/);
  });
});

describe('loadConfig: serving', () => {
  it('defaults to one onnxruntime thread and a 50 ms queue budget, no tokens', () => {
    const c = loadConfig({}, '/srv/x');
    assert.deepEqual(c.serving, { adminToken: undefined, feedbackSecret: undefined, ortThreads: 1, queueBudgetMs: 50 });
  });

  it('reads RECFLOW_ADMIN_TOKEN, RECFLOW_FEEDBACK_SECRET, RECFLOW_ORT_THREADS, RECFLOW_QUEUE_BUDGET_MS', () => {
    const c = loadConfig({
      RECFLOW_ADMIN_TOKEN: 'tok',
      RECFLOW_FEEDBACK_SECRET: 's'.repeat(16),
      RECFLOW_ORT_THREADS: '2',
      RECFLOW_QUEUE_BUDGET_MS: '0',
    });
    assert.deepEqual(c.serving, { adminToken: 'tok', feedbackSecret: 's'.repeat(16), ortThreads: 2, queueBudgetMs: 0 });
    assert.throws(() => loadConfig({ RECFLOW_FEEDBACK_SECRET: 'short' }), /RECFLOW_FEEDBACK_SECRET is 5 characters/);
    assert.throws(
      () => loadConfig({ RECFLOW_ORT_THREADS: '0' }),
      /RECFLOW_ORT_THREADS=0 is not an integer in \[1, 256\]/,
    );
  });
});
