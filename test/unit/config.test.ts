import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { envExample, loadConfig, SETTINGS } from '../../lib/config';

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

describe('settings', () => {
  it('reads every RECFLOW_* setting through the one table, and refuses bad values by name', () => {
    const c = loadConfig(
      {
        RECFLOW_HOME: '/h',
        RECFLOW_LOG_FORMAT: 'json',
        RECFLOW_OPERATORS: 'alice, bob',
        RECFLOW_ADMIN_TOKEN: 't',
        RECFLOW_TF_BACKEND: 'wasm',
        RECFLOW_WORKER_METRICS: '0.0.0.0:9464',
        RECFLOW_CODE_VERSION: 'abc',
      },
      '/srv',
    );
    assert.equal(c.logFormat, 'json');
    assert.equal(c.logFile, '/h/logs/recflow.jsonl');
    assert.deepEqual(c.operators, ['alice', 'bob']);
    assert.equal(c.serving.adminToken, 't');
    assert.equal(c.tfBackend, 'wasm');
    assert.equal(c.workerMetrics, '0.0.0.0:9464');
    assert.equal(c.codeVersion, 'abc');
    assert.throws(() => loadConfig({ RECFLOW_LOG_FORMAT: 'xml' }), /RECFLOW_LOG_FORMAT=xml is not one of pretty, json/);
    assert.throws(() => loadConfig({ RECFLOW_TF_BACKEND: 'tpu' }), /RECFLOW_TF_BACKEND=tpu/);
    assert.throws(() => loadConfig({ RECFLOW_WORKER_METRICS: '9464' }), /is not host:port/);
  });

  it('.env.example is the settings table, and every RECFLOW_ variable the code reads is in it', () => {
    const root = join(__dirname, '..', '..');
    assert.equal(
      readFileSync(join(root, '.env.example'), 'utf8'),
      envExample(),
      'regenerate .env.example from lib/config.ts',
    );
    const known = new Set(SETTINGS.map((s) => s.env));
    const read = new Set<string>();
    for (const dir of ['lib', 'activities', 'workflows', 'workers', 'clients', 'serving', 'kinds']) {
      const walk = (d: string): void => {
        for (const e of readdirSync(d, { withFileTypes: true })) {
          const p = join(d, e.name);
          if (e.isDirectory()) walk(p);
          else if (p.endsWith('.ts'))
            for (const m of readFileSync(p, 'utf8').matchAll(/process\.env\.(RECFLOW_[A-Z_]+)/g)) read.add(m[1]!);
        }
      };
      walk(join(root, dir));
    }
    assert.deepEqual(
      [...read].filter((v) => !known.has(v)),
      [],
      'settings read outside lib/config.ts SETTINGS',
    );
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
