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
