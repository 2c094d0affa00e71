/**
 * Temporal credentials (an API key, an mTLS client key) never reach the output of recflow's processes, even at the
 * trace log level and when the server cannot be reached; the failure says where it tried, without a stack trace.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from '../helpers/net';
import { tempHome } from '../helpers/temporal';

const REPO = resolve(__dirname, '..', '..');

describe('Temporal credentials stay out of the output', () => {
  it('worker, doctor and status: a clear TemporalUnavailable error, no API key, no private key', async (t) => {
    const home = tempHome();
    const key = join(home, 'client.key');
    const cert = join(home, 'client.pem');
    try {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=recflow-test',
      ], { stdio: 'ignore' }); // prettier-ignore
    } catch {
      if (process.env.CI) throw new Error('openssl is needed to make a test client certificate');
      t.skip('no openssl');
      return;
    }
    const apiKey = 'apikey-3c1d9e0f-do-not-log';
    // The secret part of the key: its base64 body lines.
    const keyLines = readFileSync(key, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('-----'));
    assert.ok(keyLines.length > 0);
    const port = await freePort();
    const env = {
      ...process.env,
      TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
      TEMPORAL_API_KEY: apiKey,
      TEMPORAL_TLS_CLIENT_KEY_PATH: key,
      TEMPORAL_TLS_CLIENT_CERT_PATH: cert,
      RECFLOW_HOME: home,
      RECFLOW_LOG_LEVEL: 'trace',
    };
    for (const args of [['worker', '--queue', 'cpu'], ['doctor'], ['status', 'some-run']]) {
      const r = spawnSync(process.execPath, [join(REPO, 'bin', 'recflow.js'), ...args], {
        env,
        encoding: 'utf8',
        timeout: 120_000,
      });
      const out = `${r.stdout}${r.stderr}`;
      assert.notEqual(r.status, 0, `${args[0]} failed`);
      assert.match(
        out,
        new RegExp(`recflow: cannot reach Temporal at 127\\.0\\.0\\.1:${port} \\(from TEMPORAL_ADDRESS`),
      );
      assert.doesNotMatch(out, /^\s+at /m, `${args[0]}: no stack trace`);
      assert.ok(!out.includes(apiKey), `${args[0]} printed the API key`);
      for (const l of keyLines) assert.ok(!out.includes(l), `${args[0]} printed the private key`);
    }
  });
});
