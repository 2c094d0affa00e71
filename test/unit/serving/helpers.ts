/**
 * Real bundles for the serving tests: a random two-tower model (test/helpers/random-model.ts) exported by the real
 * exporter (kinds/two-tower/bundle.ts writeBundle) into a folder, fp32 and int8 graphs.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { SlotState } from '../../../lib/fleet/types';
import { buildApp, type AppOptions } from '../../../serving/app';
import { ServingMetrics } from '../../../serving/metrics';
import { ModelSlots } from '../../../serving/model-slot';
import { MemorySource, Reconciler } from '../../../serving/reconcile';
import { writeBundle } from '../../../kinds/two-tower/bundle';
import { randomModel, type RandomModel } from '../../helpers/random-model';

export interface TestBundle {
  dir: string;
  model: RandomModel;
  users: string[];
  items: string[];
  slot: (version: string, precision?: 'fp32' | 'int8') => SlotState;
}

/** Each test user's stored history: user index `u` had items `(u * 7) % 50 + 1`, then `(u * 13) % 50 + 1`. */
export function testHistory(u: number): number[] {
  return [((u * 7) % 50) + 1, ((u * 13) % 50) + 1];
}

/**
 * Write a bundle of a random model (seed) under `root/<name>`. Users `u1..`, items `i1..`; every user has the two
 * items of {@link testHistory} as stored history (unless `history: false`).
 */
export async function makeBundle(
  root: string,
  name: string,
  seed = 1,
  opts: { history?: boolean } = {},
): Promise<TestBundle> {
  const model = randomModel({ seed });
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  const ids = (p: string, n: number) => ['<unk>', ...Array.from({ length: n - 1 }, (_, i) => `${p}${i + 1}`)];
  const users = ids('u', model.sizes.users);
  const items = ids('i', model.sizes.items);
  const popularity = Float32Array.from({ length: model.sizes.items }, (_, i) => (i === 0 ? 0 : 1000 - i));
  await writeBundle(dir, {
    modelName: 'two-tower',
    datasetId: 'ds-test',
    checkpointId: `ck-${seed}`,
    weights: model.weights,
    features: model.features,
    meta: { config: model.config, sizes: model.sizes },
    vocab: { users, items },
    popularity,
    history: opts.history === false ? undefined : interactionsOf(model.sizes.users),
  });
  return {
    dir,
    model,
    users: users.slice(1),
    items: items.slice(1),
    slot: (version, precision = 'fp32') => ({ version, bundlePath: dir, precision }),
  };
}

function interactionsOf(users: number) {
  const user: number[] = [];
  const item: number[] = [];
  for (const step of [0, 1])
    for (let u = 1; u < users; u++) {
      user.push(u);
      item.push(testHistory(u)[step] ?? 1);
    }
  return {
    user: Int32Array.from(user),
    item: Int32Array.from(item),
    timestamp: Float64Array.from(user, (_, i) => 1_700_000_000_000 + i),
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON answers
type AnyJson = any;

/** POST JSON over real HTTP; returns status, headers and parsed body. */
export async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: AnyJson }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** An app built (not listening) over one bundle loaded into stable, for `app.inject` tests. */
export interface InjectApp {
  app: FastifyInstance;
  slots: ModelSlots;
  metrics: ServingMetrics;
  close(): Promise<void>;
}

/**
 * Build the serving app over `bundle` (stable, version `version`), with a reconciler over an in-memory desired state
 * so the admin fleet API works.
 */
export async function injectApp(
  bundle: TestBundle,
  opts: Partial<AppOptions> & { version?: string } = {},
): Promise<InjectApp> {
  const metrics = new ServingMetrics({ processMetrics: false });
  const slots = new ModelSlots({}, (s) => metrics.observeSlots(s));
  const version = opts.version ?? 'm@v1';
  const source = new MemorySource({
    fleet: 'local',
    generation: 1,
    stable: bundle.slot(version),
    canary: null,
    canaryWeight: 0,
    updatedAt: new Date().toISOString(),
    reason: 'test',
  });
  const reconciler = new Reconciler({ source, slots, replicaId: 'inject-1' });
  await reconciler.tick();
  const app = buildApp({ slots, metrics, reconciler, logger: false, ...opts });
  await app.ready();
  return {
    app,
    slots,
    metrics,
    close: async () => {
      await app.close();
      await slots.close();
    },
  };
}
