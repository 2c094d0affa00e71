/**
 * Profile of one two-tower training step on a backend (development tool, not a benchmark of record):
 *
 *   npx tsx bench/train-profile.ts [wasm|cpu]    env: BATCH=512 USERS=3000 ITEMS=1500 EVENTS=200000 STEPS=20
 *                                                PROFILE=1 TOP=30
 *
 * Trains on a synthetic shop (lib/data/pipeline.ts makeShop, prepared like production data) with the default
 * config. Prints wall and process-CPU milliseconds per step (CPU time is the steadier figure on a shared machine)
 * and, with PROFILE=1, the kernels of one step from `tf.profile` (count by kernel, the costliest by shape).
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArtifactStore } from '../lib/artifacts';
import { loadDataset } from '../lib/data/dataset';
import { makeShop, prepareDataset } from '../lib/data/pipeline';
import { DEFAULT_MODEL_CONFIG, sizesOf, towerFeatures } from '../kinds/two-tower/spec';
import { selectBackend } from '../lib/train/backend';
import { TwoTowerModel } from '../kinds/two-tower/model';
import { batchContext, buildBatch, epochExamples, seededRandom } from '../kinds/two-tower/trainer';
import { FusedAdam } from '../lib/train/optimizer';

async function main() {
  const be = process.argv[2] ?? 'wasm';
  await selectBackend(be);
  const store = new ArtifactStore(join(mkdtempSync(join(tmpdir(), 'prof-')), 'artifacts'));
  const { shop } = await makeShop(store, {
    users: Number(process.env.USERS ?? 3000),
    items: Number(process.env.ITEMS ?? 1500),
    events: Number(process.env.EVENTS ?? 200_000),
    seed: 1,
  });
  const ds = await loadDataset((await prepareDataset(store, { source: { kind: 'shop', id: shop.id } })).dataset.path);
  const config = { ...DEFAULT_MODEL_CONFIG, batchSize: Number(process.env.BATCH ?? DEFAULT_MODEL_CONFIG.batchSize) };
  const model = new TwoTowerModel(config, sizesOf(ds), towerFeatures(ds));
  const opt = new FusedAdam(config.learningRate);
  const vars = Object.values(model.vars);
  const ctx = batchContext(ds, config);
  const ex = epochExamples(ctx.seqs, config, 0);
  const rand = seededRandom(1);
  const B = config.batchSize;
  const step = (b: number) => {
    const lo = (b * B) % (ex.users.length - B);
    const batch = buildBatch(ctx, ex, lo, lo + B, rand);
    const cost = tf.tidy(() => opt.minimize(() => model.loss(batch), true, vars)!);
    const l = cost.dataSync()[0];
    cost.dispose();
    return l;
  };
  for (let b = 0; b < 5; b++) step(b);
  const N = Number(process.env.STEPS ?? 20);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let l: number | undefined = 0;
  for (let b = 0; b < N; b++) l = step(b);
  const ms = (performance.now() - t0) / N;
  const cu = process.cpuUsage(c0);
  const cpuMs = (cu.user + cu.system) / 1000 / N;
  console.log(
    `${be} batch ${B}: ${ms.toFixed(2)} ms/step wall, ${cpuMs.toFixed(2)} cpu (${Math.round((B / cpuMs) * 1000)}/s), ${Math.round((B / ms) * 1000)} samples/s, loss ${l}, tensors ${tf.memory().numTensors}`,
  );
  if (process.env.PROFILE) {
    const prof = await tf.profile(() => {
      step(3);
    });
    const agg = new Map<string, [number, number]>();
    let total = 0;
    for (const k of prof.kernels) {
      const t = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      total += t;
      const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
      const a = agg.get(key) ?? [0, 0];
      a[0] += 1;
      a[1] += t;
      agg.set(key, a);
    }
    console.log(`kernels ${prof.kernels.length}, sum kernel ms ${total.toFixed(2)}`);
    const byName = new Map<string, number>();
    for (const k of prof.kernels) byName.set(k.name, (byName.get(k.name) ?? 0) + 1);
    console.log(
      [...byName.entries()]
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `${k} ${n}`)
        .join(', '),
    );
    const rows = [...agg.entries()].sort((a, b) => b[1][1] - a[1][1]).slice(0, Number(process.env.TOP ?? 30));
    for (const [k, [n, t]] of rows) console.log(`${t.toFixed(3).padStart(8)} ms  x${n}  ${k}`);
  }
}
void main();
