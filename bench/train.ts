/**
 * Training benchmark: samples/s per tfjs backend, and quality (HR@10 / NDCG@10 on the test split) against popularity,
 * the planted-truth oracle and the same architecture in Keras on TF-CPU (bench/train_peer.py).
 *
 *   npx tsx bench/train.ts [--users 6000] [--items 2000] [--per-user 12] [--speed-positives 20000] [--no-peer]
 *
 * 1. Writes a synthetic shop with planted structure (test/helpers/tiny-dataset.ts: user segments prefer categories,
 *    titles carry category tokens) in the lib/dataset.ts layout, plus a small one (1,000 users, 400 items).
 * 2. Speed: two epochs on `--speed-positives` positives (x5 with the negatives; a quarter of that for cpu) per
 *    backend, the second epoch timed: wasm and cpu with recflow's UnsortedSegmentSum kernel on both datasets; the
 *    stock cpu kernel on the small one, one epoch of 400 positives (it loops over every table row per call); the
 *    stock wasm backend (no kernel: it fails, tfjs issue 8082).
 * 3. Quality: the default ModelConfig trained on wasm with early stopping, then the test split ranked over the whole
 *    catalog (training items excluded), as lib/eval/evaluate.ts does for the exported bundle.
 * 4. Peer: `.tools/bench-venv` (tensorflow-cpu, numpy from PyPI) made if missing; bench/train_peer.py trains the same
 *    towers with the same batch size, negatives, learning-rate schedule and early stopping on the same files.
 * Results: bench/results/train.json.
 */
import { PY, ensureVenv, numArg, strArg } from './peer';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ArtifactStore } from '../lib/artifacts';
import { loadGroundTruth, indexOfId, preferenceByIndex } from '../lib/data/ground-truth';
import { makeShop, prepareDataset } from '../lib/data/pipeline';
import { loadDataset, type LoadedDataset } from '../lib/data/dataset';
import { DEFAULT_MODEL_CONFIG, sizesOf, type ModelConfig } from '../kinds/two-tower/spec';
import { selectBackend } from '../lib/train/backend';
import { useFastSegmentSum } from '../lib/train/kernels';
import { popularityScorer, rankSplit, type SplitRanking } from '../lib/train/metrics';
import { rankTest, trainTwoTower } from '../kinds/two-tower/trainer';
import { plantedScore, writeTinyDataset } from '../test/helpers/tiny-dataset';
import { runTwins, twoTowerEntry, type TwinEntry } from './train-twin';
import { runOpsBench } from './train-ops';

interface SpeedRow {
  backend: string;
  kernel: 'recflow' | 'stock';
  dataset: string;
  tables: string;
  batchSize: number;
  samples: number;
  samplesPerSec: number | null;
  secondsPerEpoch: number | null;
  error?: string;
}

async function speed(
  ds: LoadedDataset,
  name: string,
  backend: 'wasm' | 'cpu',
  kernel: 'recflow' | 'stock',
  config: ModelConfig,
  positives: number,
  epochs = 2,
): Promise<SpeedRow> {
  await selectBackend(backend);
  useFastSegmentSum(backend, kernel === 'recflow');
  const s = sizesOf(ds);
  const base = {
    backend,
    kernel,
    dataset: name,
    tables: `items ${s.items}x${config.embeddingDim}, history ${config.historyLength}`,
    batchSize: config.batchSize,
  };
  try {
    const r = await trainTwoTower(
      ds,
      { ...config, epochs, earlyStoppingPatience: 99 },
      {
        maxEpochs: epochs,
        maxPositives: positives,
        maxValidationUsers: 100,
      },
    );
    const last = r.history[r.history.length - 1];
    console.log(`${name} ${backend} ${kernel}: ${Math.round(last?.samplesPerSec ?? 0)} samples/s`);
    return {
      ...base,
      samples: last?.samples ?? 0,
      samplesPerSec: last?.samplesPerSec ?? null,
      secondsPerEpoch: last?.seconds ?? null,
    };
  } catch (err) {
    const error = (err as Error).message.split('\n')[0] ?? '';
    console.log(`${name} ${backend} ${kernel}: ${error}`);
    return { ...base, samples: 0, samplesPerSec: null, secondsPerEpoch: null, error };
  } finally {
    useFastSegmentSum(backend, true);
  }
}

function oracleScorer(ds: LoadedDataset): (users: Int32Array) => Float32Array {
  const nI = ds.vocab.items.length;
  const nC = ds.vocab.categories.length - 1;
  const perCat = new Map<number, number>();
  for (let i = 1; i < nI; i++) perCat.set(ds.items.category[i] ?? 0, (perCat.get(ds.items.category[i] ?? 0) ?? 0) + 1);
  return (users) => {
    const out = new Float32Array(users.length * nI);
    users.forEach((u, j) => {
      const seg = ds.users.segment[u] ?? 0;
      for (let i = 1; i < nI; i++) {
        const c = ds.items.category[i] ?? 0;
        out[j * nI + i] = plantedScore(seg, c, nC, perCat.get(c) ?? 1, nI - 1);
      }
    });
    return out;
  };
}

async function groundTruthScorer(ds: LoadedDataset, shopDir: string): Promise<(users: Int32Array) => Float32Array> {
  const gt = await loadGroundTruth(shopDir);
  const nI = ds.vocab.items.length;
  const itemIdx = ds.vocab.items.map((id) => indexOfId(id, gt.meta.itemIdPrefix, gt.meta.items));
  const at = ds.manifest.split.validationEnd;
  return (users) => {
    const out = new Float32Array(users.length * nI).fill(-Infinity);
    users.forEach((u, j) => {
      const gu = indexOfId(ds.vocab.users[u] ?? '', gt.meta.userIdPrefix, gt.meta.users);
      if (gu < 0) return;
      for (let i = 1; i < nI; i++) {
        const gi = itemIdx[i] ?? -1;
        if (gi >= 0) out[j * nI + i] = preferenceByIndex(gt, gu, gi, at);
      }
    });
    return out;
  };
}

/** Quality on one dataset: tfjs (wasm), popularity, an oracle, and the Keras peer. */
async function quality(
  ds: LoadedDataset,
  dir: string,
  work: string,
  config: ModelConfig,
  oracle: (users: Int32Array) => Float32Array,
  oracleNote: string,
  runPeer: boolean,
): Promise<Record<string, unknown>> {
  await selectBackend('wasm');
  const t0 = performance.now();
  const trained = await trainTwoTower(ds, config, {
    onEpoch: async (r) => {
      console.log(`${ds.manifest.id} epoch ${r.epoch}: loss ${r.loss.toFixed(4)} val ndcg@10 ${r.ndcg10.toFixed(4)}`);
    },
  });
  const trainSeconds = (performance.now() - t0) / 1000;
  const tfjsTest: SplitRanking = { k: 10, ...(await rankTest(ds, config, trained.weights, trained.extras)) };
  const popTest = await rankSplit(ds, ds.splits.test, popularityScorer(ds));
  const oracleTest = await rankSplit(ds, ds.splits.test, oracle);
  let peer: Record<string, unknown> | null = null;
  if (runPeer) {
    ensureVenv(['tensorflow', 'numpy'], ['tensorflow-cpu', 'numpy']);
    const out = join(work, `peer-${ds.manifest.id}.json`);
    const specFile = join(work, 'spec.json');
    writeFileSync(specFile, JSON.stringify({ config, speedPositives: numArg('speed-positives', 20000) }));
    const r = spawnSync(PY, [join(__dirname, 'train_peer.py'), dir, specFile, out], { stdio: 'inherit' });
    if (r.status === 0) peer = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
    else console.log(`peer failed with status ${r.status}`);
  }
  return {
    dataset: { id: ds.manifest.id, counts: ds.manifest.counts },
    split: 'test (whole catalog ranked per user, training items excluded; relevant = test items not seen in training)',
    tfjs: {
      backend: 'wasm',
      ...pick(tfjsTest),
      bestEpoch: trained.bestEpoch,
      epochsRun: trained.epochsRun,
      trainSeconds: round(trainSeconds, 1),
    },
    popularity: pick(popTest),
    oracle: { ...pick(oracleTest), note: oracleNote },
    keras: peer?.quality ?? null,
    kerasSpeed: peer?.speed ?? null,
  };
}

const round = (x: number, d = 4): number => Math.round(x * 10 ** d) / 10 ** d;
const pick = (r: SplitRanking): { hr10: number; ndcg10: number; users: number } => ({
  hr10: round(r.hr),
  ndcg10: round(r.ndcg),
  users: r.users,
});

async function main(): Promise<void> {
  const users = numArg('users', 6000);
  const items = numArg('items', 2000);
  const perUser = numArg('per-user', 12);
  const speedPositives = numArg('speed-positives', 20000);
  const runPeer = !process.argv.includes('--no-peer');
  const sectionsArg = process.argv.indexOf('--sections');
  const sections = new Set(
    (sectionsArg >= 0 ? (process.argv[sectionsArg + 1] ?? '') : 'twin,ops,speed,planted,shop').split(','),
  );
  const work = mkdtempSync(join(tmpdir(), 'recflow-bench-train-'));
  const config: ModelConfig = { ...DEFAULT_MODEL_CONFIG };
  const resultsFile = join(__dirname, 'results', 'train.json');
  const results: Record<string, unknown> = existsSync(resultsFile)
    ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as Record<string, unknown>)
    : {};
  Object.assign(results, {
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, tfjs: tf.version.tfjs },
    config,
  });

  const shopOpts = { users, items, perUser, segments: 8, categories: 24, seed: 11 };
  if (sections.has('ops')) results.ops = await runOpsBench();
  if (sections.has('speed') || sections.has('planted') || sections.has('twin')) {
    const bigDir = join(work, 'planted');
    await writeTinyDataset(bigDir, { ...shopOpts, id: 'bench-planted' });
    const big = await loadDataset(bigDir);
    console.log(`planted dataset ${bigDir}: ${big.manifest.counts.train} train positives`);
    if (sections.has('twin')) {
      // tfjs against the PyTorch twin (bench/train_twin.py), then Keras (bench/train_peer.py) at the default batch.
      const positives = numArg('twin-positives', speedPositives);
      const batchSizes = strArg('twin-batches', `${config.batchSize},2048`).split(',').map(Number);
      const entries: TwinEntry[] = [
        twoTowerEntry(big, bigDir, config, positives),
        // The sequential recommender and the search fine-tune: one entry each here.
      ];
      ensureVenv(['torch', 'numpy'], ['torch', 'numpy']);
      const rows = await runTwins(entries, work, batchSizes, numArg('repeats', 2));
      let keras: unknown = null;
      if (runPeer && spawnSync(PY, ['-c', 'import tensorflow'], { stdio: 'ignore' }).status === 0) {
        const out = join(work, 'keras-speed.json');
        const specFile = join(work, 'keras-spec.json');
        writeFileSync(specFile, JSON.stringify({ config, speedPositives: positives, speedOnly: true }));
        const r = spawnSync(PY, [join(__dirname, 'train_peer.py'), bigDir, specFile, out], { stdio: 'inherit' });
        if (r.status === 0) keras = JSON.parse(readFileSync(out, 'utf8'));
      }
      results.twin = {
        command: `npx tsx bench/train.ts --sections twin,ops`,
        note:
          'samples/s of the second (timed) epoch, best of the rounds; tfjs is trainTwoTower (wasm, one thread); ' +
          'PyTorch is bench/train_twin.py (same weights, examples, loss, Adam) with torch.set_num_threads(1 | 2)',
        rows,
        keras,
      };
    }
    if (sections.has('speed')) {
      const smallDir = join(work, 'small');
      await writeTinyDataset(smallDir, { users: 1000, items: 400, perUser: 10, seed: 12, id: 'bench-small' });
      const small = await loadDataset(smallDir);
      const rows: SpeedRow[] = [];
      rows.push(await speed(small, 'small', 'wasm', 'recflow', config, 2000));
      rows.push(await speed(small, 'small', 'cpu', 'recflow', config, 2000));
      rows.push(await speed(small, 'small', 'cpu', 'stock', config, 400, 1));
      rows.push(await speed(small, 'small', 'wasm', 'stock', config, 400, 1));
      rows.push(await speed(big, 'planted', 'wasm', 'recflow', config, speedPositives));
      rows.push(await speed(big, 'planted', 'cpu', 'recflow', config, Math.ceil(speedPositives / 4)));
      results.speed = rows;
      results.speedCommand = `npx tsx bench/train.ts --sections speed`;
    }
    if (sections.has('planted')) {
      results.qualityPlanted = {
        generator: 'test/helpers/tiny-dataset.ts (planted: segment -> 2 preferred categories, 85% of interactions)',
        options: shopOpts,
        command: `npx tsx bench/train.ts --sections planted`,
        ...(await quality(
          big,
          bigDir,
          work,
          config,
          oracleScorer(big),
          'ranks by the generator probability (segment -> preferred categories)',
          runPeer,
        )),
      };
    }
  }
  if (sections.has('shop')) {
    // The data pipeline's synthetic shop (lib/data/generator.ts), prepared like production data.
    const store = new ArtifactStore(join(work, 'artifacts'));
    const shopOptions = {
      users: numArg('shop-users', 4000),
      items: numArg('shop-items', 1500),
      events: numArg('shop-events', 150000),
    };
    const { shop } = await makeShop(store, shopOptions);
    const prepared = await prepareDataset(store, { source: { kind: 'shop', id: shop.id } });
    const ds = await loadDataset(prepared.dataset.path);
    console.log(`shop dataset ${prepared.dataset.path}: ${ds.manifest.counts.train} train rows`);
    results.qualityShop = {
      generator: 'lib/data/generator.ts via makeShop + prepareDataset (validation, cleaning, time split)',
      options: shopOptions,
      command: `npx tsx bench/train.ts --sections shop`,
      ...(await quality(
        ds,
        prepared.dataset.path,
        work,
        config,
        await groundTruthScorer(ds, shop.path),
        'ranks by the ground-truth preference (lib/data/ground-truth.ts preferenceByIndex at the test start)',
        runPeer,
      )),
    };
  }
  results.date = new Date().toISOString();
  results.command = 'npx tsx bench/train.ts [--sections twin,ops,speed,planted,shop] [--no-peer]';
  // Results of the first layout (one quality section on the planted data): keep them under their new names.
  if (results.quality && !results.qualityPlanted) {
    const peer = results.peer as { speed?: unknown } | null | undefined;
    results.qualityPlanted = { dataset: results.dataset, ...results.quality, kerasSpeed: peer?.speed };
  }
  for (const row of (results.speed as SpeedRow[] | undefined) ?? [])
    if (row.dataset === 'shop') row.dataset = 'planted';
  delete results.quality;
  delete results.peer;
  delete results.dataset;
  mkdirSync(join(__dirname, 'results'), { recursive: true });
  writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
  console.log(JSON.stringify(results, null, 2));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
