import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type MockActivityEnvironment } from '@temporalio/testing';
import { createDataActivities } from '../../../activities/data';
import { ArtifactStore } from '../../../lib/artifacts';
import { loadConfig } from '../../../lib/config';
import { tempHome } from '../../helpers/temporal';
import { mockActivityEnv } from '../../helpers/activity-env';

/** `MockActivityEnvironment.run`, typed by the activity. */
function runIn<I, O>(env: MockActivityEnvironment, fn: (input: I) => Promise<O>, input: I): Promise<O> {
  return env.run<[I], O, (input: I) => Promise<O>>(fn, input);
}

function acts(home: string) {
  const config = loadConfig({ RECFLOW_HOME: home });
  return createDataActivities({ config, store: new ArtifactStore(config.artifactsDir) });
}

describe('data activities (mock activity environment)', () => {
  it('heartbeat progress while generating and validating; return references and counts only', async () => {
    const home = tempHome();
    const a = acts(home);
    const env = mockActivityEnv();
    const beats: Array<Record<string, unknown>> = [];
    env.on('heartbeat', (d: Record<string, unknown>) => beats.push(d));
    const shop = await runIn(env, a.generateShop, {
      users: 500,
      items: 200,
      events: 210_000,
      seed: 4,
    });
    assert.equal(shop.reused, false);
    assert.equal(shop.shop.kind, 'shop');
    assert.deepEqual(Object.keys(shop.counts).sort(), ['events', 'items', 'users']);
    assert.deepEqual(
      beats.map((b) => [b.step, Math.floor(Number(b.events) / 100_000) * 100_000]),
      [
        ['generate', 100_000],
        ['generate', 200_000],
      ],
    );
    beats.length = 0;
    const v = await runIn(env, a.validateData, {
      source: { kind: 'shop' as const, id: shop.shop.id },
    });
    assert.equal(v.hard, 0);
    assert.equal(v.rows.events, shop.counts.events);
    assert.deepEqual(
      beats.map((b) => [b.step, b.file, b.rows]),
      [
        ['validate', 'events.csv', 100_000],
        ['validate', 'events.csv', 200_000],
      ],
    );
    assert.ok(JSON.stringify(v).length < 2000, 'a reference, not the report');
    const again = await runIn(env, a.generateShop, {
      users: 500,
      items: 200,
      events: 210_000,
      seed: 4,
    });
    assert.equal(again.reused, true);
    assert.equal(again.shop.contentHash, shop.shop.contentHash);
  });

  it('bad data and bad input are non-retryable ApplicationFailures; a failed prepare leaves no dataset', async () => {
    const home = tempHome();
    const a = acts(home);
    const env = mockActivityEnv();
    const dir = join(home, 'in');
    mkdirSync(dir);
    writeFileSync(join(dir, 'items.csv'), 'item_id,category,brand,price,title\n');
    writeFileSync(join(dir, 'events.csv'), 'user_id;item_id;event_type;timestamp\nu1;i1;view;2026-01-01T00:00:00Z\n');
    await assert.rejects(
      env.run(a.prepareDataset, { source: { kind: 'dir' as const, path: dir } }),
      (err: Error & { type?: string; nonRetryable?: boolean }) => {
        assert.equal(err.type, 'InvalidData');
        assert.equal(err.nonRetryable, true);
        assert.match(err.message, /^events\.csv row 1: wrong delimiter/);
        return true;
      },
    );
    await assert.rejects(
      env.run(a.validateData, { source: { kind: 'dir' as const, path: join(home, 'nope') } }),
      (err: Error & { type?: string; nonRetryable?: boolean }) =>
        err.type === 'InvalidInput' && err.nonRetryable === true,
    );
    await assert.rejects(env.run(a.generateShop, { users: -1 }), /users=-1/);
    await assert.rejects(
      env.run(a.compareDatasets, { baseId: 'ds-a', candidateId: 'ds-b' }),
      /dataset artifact 'ds-a' not found/,
    );
    const root = join(home, 'artifacts');
    assert.deepEqual(
      readdirSync(root).filter((d) => d !== '.tmp'),
      [],
    );
    assert.deepEqual(readdirSync(join(root, '.tmp')), []);
  });
});
