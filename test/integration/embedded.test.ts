/**
 * The embedded Temporal server `recflow dev` runs (lib/temporal/embedded.ts), as a person uses it: it serves until
 * Ctrl-C even without workers; a `recflow dev` killed with SIGKILL leaves its server running, and the next one
 * adopts it instead of failing on the port; a port taken by something else is a clear error; the state file of a
 * newer server is never deleted by an older process.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../lib/config';
import { isReachable, readEmbeddedServerState, startEmbeddedTemporal } from '../../lib/temporal/embedded';
import { tempHome } from '../helpers/temporal';

const bin = join(__dirname, '..', '..', 'bin', 'recflow.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function dev(home: string, port: string): { proc: ChildProcess; out: () => string; exited: Promise<number | null> } {
  let out = '';
  const proc = spawn(process.execPath, [bin, 'dev', '--no-workers'], {
    env: { ...process.env, RECFLOW_HOME: home, RECFLOW_TEMPORAL_PORT: port, RECFLOW_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, out: () => out, exited };
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    assert.ok(Date.now() < end, `timed out waiting for ${what}`);
    await sleep(200);
  }
}

describe('recflow dev: the embedded Temporal server', () => {
  const home = tempHome('recflow-embedded-');
  const config = loadConfig({ RECFLOW_HOME: home });
  const procs: ChildProcess[] = [];
  after(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    const s = readEmbeddedServerState(config);
    if (s?.serverPid) process.kill(s.serverPid, 'SIGKILL');
  });

  it('serves until Ctrl-C without workers; a SIGKILLed dev leaves a server the next dev adopts', async () => {
    const first = dev(home, '0');
    procs.push(first.proc);
    await until('the first server', () => /Ctrl-C to stop/.test(first.out()));
    const state = readEmbeddedServerState(config)!;
    assert.ok(state?.serverPid, first.out());
    await sleep(10_000); // it used to exit by itself after about 8 s
    assert.equal(first.proc.exitCode, null, `dev --no-workers exited: ${first.out()}`);

    first.proc.kill('SIGKILL');
    await first.exited;
    assert.ok(await isReachable(state.address), 'the server outlives its killed owner');
    assert.ok(readEmbeddedServerState(config), 'and is still found by other recflow commands');

    const second = dev(home, '0');
    procs.push(second.proc);
    await until('the second dev', () => /Ctrl-C to stop/.test(second.out()));
    assert.match(second.out(), /adopted/);
    assert.doesNotMatch(second.out(), /address already in use/);
    const adopted = readEmbeddedServerState(config)!;
    assert.equal(adopted.address, state.address);
    assert.equal(adopted.serverPid, state.serverPid);
    assert.equal(adopted.pid, second.proc.pid);

    second.proc.kill('SIGINT');
    assert.equal(await second.exited, 0, second.out());
    await until('the server to stop', async () => !(await isReachable(state.address)), 20_000);
    assert.equal(existsSync(join(config.temporalDir, 'server.json')), false);
  });

  it('refuses a port another process holds, with what to do', async () => {
    const blocker = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const third = dev(tempHome('recflow-embedded-port-'), String(port));
      procs.push(third.proc);
      const code = await third.exited;
      assert.notEqual(code, 0);
      assert.match(third.out(), new RegExp(`port ${port} is already in use by another process.*RECFLOW_TEMPORAL_PORT`));
      assert.doesNotMatch(third.out(), /started/);
    } finally {
      blocker.close();
    }
  });

  it('an older process does not delete the state file of a newer server', async () => {
    const h = tempHome('recflow-embedded-owner-');
    const cfg = loadConfig({ RECFLOW_HOME: h, RECFLOW_TEMPORAL_PORT: '0' });
    const server = await startEmbeddedTemporal(cfg);
    try {
      const file = join(cfg.temporalDir, 'server.json');
      const theirs = { ...JSON.parse(readFileSync(file, 'utf8')), pid: process.pid + 100000 };
      writeFileSync(file, JSON.stringify(theirs));
      await server.stop();
      assert.ok(existsSync(file), 'server.json of another owner is kept');
    } finally {
      await server.stop().catch(() => undefined);
    }
  });
});
