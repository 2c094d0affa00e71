/**
 * Recommendation quality, every kind and baseline side by side on the same split and metric (lib/eval/evaluate.ts:
 * test split, whole catalogue ranked, training items excluded, relevant = test items not seen in training), overall
 * and for new / returning users, with Python peers on the same split.
 *
 *   npx tsx bench/quality.ts [--seeds 1,2,3] [--users 3000 --items 1500 --events 200000] [--data DIR]... [--no-peer]
 *       [--no-shop] [--kinds als,ease,two-tower] [--movielens-like]
 *
 * - Data: the synthetic shop (the demo's size) for each seed, through the data pipeline (`recflow shop generate`,
 *   validate, prepare); and every `--data DIR` (recflow CSV or MovieLens format, the same pipeline).
 *   `--movielens-like` also builds a MovieLens-format folder (ratings.csv, movies.csv) from a larger shop
 *   ({@link writeMovieLensLike}: each user active in one short burst, as MovieLens raters are, so most test users of
 *   a time split are new; timestamps moved to the 1990s) and benches it: a stand-in, not real data.
 * - Kinds: each kind of {@link KINDS} is fitted with its defaults (hyperparameters chosen on validation),
 *   exported to a bundle and evaluated from its ONNX graphs, fp32 and int8, by `evaluateBundle`, which also fits
 *   and scores the baselines: popularity, recent popularity, ALS, EASE^R (lib/eval/baselines.ts).
 * - Oracle (shop only): the shop's hidden preference model, as of the end of the validation split.
 * - Peers (bench/quality_peer.py, Python from `RECFLOW_BENCH_PYTHON`, default `python3`, with numpy, pandas,
 *   scipy and implicit): `implicit` ALS, a numpy EASE^R and recent popularity with the hyperparameters recflow chose,
 *   on the split exported to CSV, scored by an independent numpy implementation of the protocol; plus the
 *   max |score difference| of numpy EASE^R and recflow's EASE^R on 50 users.
 * Results: bench/results/quality.json.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArtifactStore } from '../lib/artifacts';
import { loadDataset, type LoadedDataset } from '../lib/data/dataset';
import { indexOfId, loadGroundTruth, preferenceByIndex } from '../lib/data/ground-truth';
import { makeShop, prepareDataset } from '../lib/data/pipeline';
import { evaluateBundle, type EvaluationReport, type ModelEvaluation } from '../lib/eval/evaluate';
import { rankingMetrics } from '../lib/eval/metrics';
import { itemsByUser, topK } from '../lib/train/metrics';
import { exportAlsBundle } from '../kinds/als/export';
import { fitAls } from '../kinds/als/fit';
import { exportEaseBundle } from '../kinds/ease/export';
import { fitEase } from '../kinds/ease/fit';
import { easeCatalogScores, type EaseModel } from '../kinds/ease/spec';
import type { AlsModel } from '../kinds/als/spec';
import { fitBaselines, type FittedBaselines } from '../lib/eval/baselines';
import { scanCsv } from '../lib/data/csv';
import { selectBackend } from '../lib/train/backend';
import { resolveModelConfig } from '../kinds/two-tower';
import { writeBundle as writeTwoTowerBundle } from '../kinds/two-tower/bundle';
import { sizesOf, towerFeatures } from '../kinds/two-tower/spec';
import { trainTwoTower } from '../kinds/two-tower/trainer';
import { mulberry32 } from '../lib/rng';
import { writeResult } from './peer';

/**
 * A model kind in the bench: fit on the dataset (or take the identical fit of the evaluation's baselines), write
 * its bundle into `dir`, return what it chose.
 */
interface BenchKind {
  name: string;
  bundle: (ds: LoadedDataset, dir: string, baselines: FittedBaselines) => Promise<Record<string, unknown>>;
}

let lastEase: EaseModel | undefined;

/** The kinds compared; adding one is one entry (the sequential model plugs in here). */
const KINDS: BenchKind[] = [
  {
    name: 'als',
    bundle: async (ds, dir, b) => {
      // fitAls(ds) with the defaults is the evaluation's ALS baseline: reuse that fit (deterministic, same seed).
      const m = (b.baselines.find((x) => x.name === 'als')?.model as AlsModel | undefined) ?? (await fitAls(ds));
      await exportAlsBundle(dir, m, { modelName: 'als', checkpointId: 'bench', vocab: ds.vocab });
      const { grid: _g, ...config } = m.config;
      return { config, fitSeconds: m.fitSeconds };
    },
  },
  {
    name: 'ease',
    bundle: async (ds, dir, b) => {
      const m = (b.baselines.find((x) => x.name === 'ease')?.model as EaseModel | undefined) ?? (await fitEase(ds));
      lastEase = m;
      await exportEaseBundle(dir, m, { modelName: 'ease', checkpointId: 'bench', vocab: ds.vocab });
      return { lambda: m.config.lambda, fitSeconds: m.fitSeconds };
    },
  },
  {
    name: 'two-tower',
    bundle: async (ds, dir) => {
      // The kind's defaults, trained as the lifecycle's training activity does (tfjs, best backend present).
      const backend = await selectBackend();
      const config = resolveModelConfig({});
      const t0 = performance.now();
      const r = await trainTwoTower(ds, config, {
        onEpoch: async (rec, _w, e) => {
          console.log(
            `two-tower epoch ${rec.epoch}: loss ${rec.loss.toFixed(4)}, validation ndcg@10 ${rec.ndcg10.toFixed(4)} (prior weight ${e.priorWeight}), ${rec.seconds.toFixed(0)} s`,
          );
        },
      });
      const trainSeconds = (performance.now() - t0) / 1000;
      await writeTwoTowerBundle(dir, {
        modelName: 'two-tower',
        datasetId: ds.manifest.id,
        checkpointId: 'bench',
        weights: r.weights,
        features: towerFeatures(ds),
        meta: { config, sizes: sizesOf(ds), extras: r.extras },
        vocab: ds.vocab,
        popularity: ds.items.popularity,
      });
      return {
        backend: backend.backend,
        bestEpoch: r.bestEpoch,
        epochsRun: r.epochsRun,
        stoppedEarly: r.stoppedEarly,
        trainSeconds: round(trainSeconds),
        samplesPerSec: Math.round(r.samplesPerSec),
        validationNdcg10: r.history.map((h) => round(h.ndcg10)),
        priorWeight: r.extras.priorWeight,
        priorConfig: r.extras.priorConfig,
        idItems: r.extras.itemHasId.reduce((a, b) => a + b, 0),
        calibration: r.extras.calibration,
        // The learned recency weighting: share of the pooled vector of the 10 most recent history positions.
        recencyWeights: (() => {
          const e = Array.from(r.weights.history_position.data, Math.exp);
          const z = e.reduce((a, b) => a + b, 0);
          return e.slice(0, 10).map((x) => round(x / z));
        })(),
      };
    },
  },
];

const PY = process.env.RECFLOW_BENCH_PYTHON || 'python3';
const METRICS = ['ndcg@10', 'hitRate@10', 'recall@50', 'auc', 'logLoss'] as const;
const SEGMENTS = ['overall', 'users:new', 'users:returning'] as const;

type Row = Record<(typeof SEGMENTS)[number], Record<string, number> | null>;

const round = (x: number) => Math.round(x * 1e5) / 1e5;

function rowOf(e: ModelEvaluation): Row {
  const pick = (m: Record<string, number> | undefined) =>
    m ? { users: m.users ?? 0, ...Object.fromEntries(METRICS.map((k) => [k, round(m[k] ?? NaN)])) } : null;
  return {
    overall: pick(e.overall),
    'users:new': pick(e.segments['users:new']),
    'users:returning': pick(e.segments['users:returning']),
  };
}

/** The protocol of lib/eval/evaluate.ts for a catalogue scorer (the oracle): overall, new, returning. */
function rankScorer(ds: LoadedDataset, score: (u: number) => Float32Array): Row {
  const seen = itemsByUser(ds.splits.train);
  const cases: Record<string, Array<{ ranking: number[]; relevant: Set<number> }>> = { new: [], returning: [] };
  for (const [u, items] of [...itemsByUser(ds.splits.test)].sort((a, b) => a[0] - b[0])) {
    const s = seen.get(u);
    const relevant = new Set([...items].filter((i) => i !== 0 && !s?.has(i)));
    if (!relevant.size) continue;
    (s ? cases.returning! : cases.new!).push({ ranking: topK(score(u), 50, s), relevant });
  }
  const agg = (cs: Array<{ ranking: number[]; relevant: Set<number> }>) => {
    if (!cs.length) return null;
    const m10 = rankingMetrics(cs, 10);
    const m50 = rankingMetrics(cs, 50);
    return {
      users: cs.length,
      'ndcg@10': round(m10.ndcg),
      'hitRate@10': round(m10.hitRate),
      'recall@50': round(m50.recall),
    };
  };
  return {
    overall: agg([...cases.new!, ...cases.returning!]),
    'users:new': agg(cases.new!),
    'users:returning': agg(cases.returning!),
  };
}

async function oracleRow(ds: LoadedDataset, shopDir: string): Promise<Row> {
  const gt = await loadGroundTruth(shopDir);
  const n = ds.vocab.items.length;
  const itemIdx = ds.vocab.items.map((id) => indexOfId(id, gt.meta.itemIdPrefix, gt.meta.items));
  const at = ds.manifest.split.validationEnd;
  return rankScorer(ds, (u) => {
    const out = new Float32Array(n).fill(-Infinity);
    const gu = indexOfId(ds.vocab.users[u] ?? '', gt.meta.userIdPrefix, gt.meta.users);
    if (gu < 0) return out;
    for (let i = 1; i < n; i++) if ((itemIdx[i] ?? -1) >= 0) out[i] = preferenceByIndex(gt, gu, itemIdx[i]!, at);
    return out;
  });
}

function exportSplit(ds: LoadedDataset, dir: string, spec: Record<string, unknown>): void {
  mkdirSync(dir, { recursive: true });
  for (const s of ['train', 'test'] as const) {
    const sp = ds.splits[s];
    const lines = ['user,item,label,timestamp'];
    for (let r = 0; r < sp.user.length; r++)
      lines.push(`${sp.user[r]},${sp.item[r]},${sp.label[r]},${sp.timestamp[r]}`);
    writeFileSync(join(dir, `${s}.csv`), `${lines.join('\n')}\n`);
  }
  writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec));
}

interface PeerOut {
  recentPopularity: Row;
  implicitAls: Row & { fitSeconds: number };
  numpyEase?: Row & { fitSeconds: number };
  easeSample?: { users: number[]; scores: number[][] };
}

/** Everything on one dataset. */
async function benchDataset(
  name: string,
  ds: LoadedDataset,
  work: string,
  opts: { shopDir?: string; peer: boolean; kinds: BenchKind[] },
): Promise<Record<string, unknown>> {
  console.log(`\n== ${name}: ${JSON.stringify(ds.manifest.counts)}`);
  const trainUsers = new Set(ds.splits.train.user);
  const valUsers = new Set(ds.splits.validation.user);
  const testUsers = new Set(ds.splits.test.user);
  const cold = [...testUsers].filter((u) => !trainUsers.has(u));
  const rows: Record<string, Row> = {};
  const chosen: Record<string, unknown> = {};
  let report: EvaluationReport | undefined;
  const t0 = performance.now();
  const fitted = await fitBaselines(ds, {}, (w) => process.stderr.write(`\r${w.slice(0, 100).padEnd(100)}`));
  process.stderr.write('\n');
  console.log(`baselines fitted in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  for (const kind of opts.kinds) {
    const dir = join(work, `${name}-${kind.name}`);
    mkdirSync(dir, { recursive: true });
    const tk = performance.now();
    try {
      chosen[kind.name] = await kind.bundle(ds, dir, fitted);
    } catch (err) {
      chosen[kind.name] = { skipped: (err as Error).message };
      console.log(`${kind.name}: skipped: ${(err as Error).message}`);
      continue;
    }
    report = await evaluateBundle(dir, ds, { precisions: ['fp32', 'int8'] });
    for (const p of ['fp32', 'int8'] as const) rows[`${kind.name} (onnx ${p})`] = rowOf(report.models[p]!);
    console.log(
      `${kind.name}: ${((performance.now() - tk) / 1000).toFixed(1)} s, ndcg@10 fp32 ${rows[`${kind.name} (onnx fp32)`]!.overall?.['ndcg@10']}`,
    );
  }
  if (report) {
    rows.popularity = rowOf(report.popularity);
    for (const [n, b] of Object.entries(report.baselines ?? {})) {
      rows[`baseline ${n}`] = rowOf(b);
      chosen[`baseline ${n}`] = Object.fromEntries(
        Object.entries(b.config).filter(([k]) => !['validationGrid', 'grid', 'lambdaGrid', 'recentGrid'].includes(k)),
      );
    }
    if (report.skippedBaselines && Object.keys(report.skippedBaselines).length)
      chosen.skippedBaselines = report.skippedBaselines;
  }
  if (opts.shopDir) rows.oracle = await oracleRow(ds, opts.shopDir);
  const parity: Record<string, unknown> = {};
  if (opts.peer && report?.baselines?.als && report.baselines.recentPopularity) {
    const als = report.baselines.als.config;
    const rp = report.baselines.recentPopularity.config;
    const splitDir = join(work, `${name}-split`);
    const ease = report.baselines.ease ? { lambda: report.baselines.ease.config.lambda } : undefined;
    exportSplit(ds, splitDir, {
      users: ds.vocab.users.length,
      items: ds.vocab.items.length,
      trainEnd: ds.manifest.split.trainEnd,
      popularity: Array.from(ds.items.popularity),
      recent: { windowDays: rp.windowDays, halfLifeDays: rp.halfLifeDays },
      als: {
        factors: als.factors,
        regularization: als.regularization,
        alpha: als.alpha,
        iterations: als.iterations,
        seed: als.seed,
      },
      ...(ease ? { ease } : {}),
    });
    const outFile = join(splitDir, 'peer.json');
    const r = spawnSync(PY, [join(__dirname, 'quality_peer.py'), splitDir, outFile], {
      stdio: 'inherit',
      env: { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' },
    });
    if (r.status === 0) {
      const peer = JSON.parse(readFileSync(outFile, 'utf8')) as PeerOut;
      rows['peer recent popularity (numpy)'] = peer.recentPopularity;
      rows['peer ALS (implicit)'] = peer.implicitAls;
      if (peer.numpyEase) rows['peer EASE^R (numpy)'] = peer.numpyEase;
      const ours = rows['baseline als']?.overall?.['ndcg@10'] ?? NaN;
      const theirs = peer.implicitAls.overall?.['ndcg@10'] ?? NaN;
      parity.alsNdcg10Ratio = round(ours / theirs);
      if (
        peer.easeSample &&
        lastEase &&
        lastEase.datasetId === ds.manifest.id &&
        lastEase.config.lambda === ease?.lambda
      ) {
        let max = 0;
        peer.easeSample.users.forEach((u, k) => {
          const mine = easeCatalogScores(lastEase!, u, []);
          peer.easeSample!.scores[k]!.forEach((v, j) => {
            if (j > 0) max = Math.max(max, Math.abs(v - mine[j]!));
          });
        });
        parity.easeMaxAbsScoreDiff = max;
      }
    } else console.log(`peer failed with status ${r.status}`);
  }
  for (const [n, r] of Object.entries(rows))
    console.log(`${n.padEnd(34)} ${SEGMENTS.map((s) => `${s} ${r[s]?.['ndcg@10'] ?? '-'}`).join('  ')}`);
  return {
    name,
    source: ds.manifest.source.kind,
    counts: ds.manifest.counts,
    testUsers: testUsers.size,
    newTestUsers: cold.length,
    newTestUsersWithValidationEvents: cold.filter((u) => valUsers.has(u)).length,
    chosen,
    rows,
    parity,
  };
}

/**
 * A MovieLens-format folder from a shop (`ratings.csv`: userId, movieId, rating, timestamp in seconds; `movies.csv`:
 * movieId, title, genres = the category): each shop user keeps the events of one burst of `burstDays` days starting
 * at a uniformly drawn time (MovieLens raters rate most of their films within days of signing up, then leave, so on
 * a time split most test users are new), event types become ratings (purchase 5, add_to_cart 4, click 3, view 2:
 * the reader's mapping back), times are shifted by `yearsBack` (MovieLens data is from the 1990s). Rows the shop
 * wrote dirty (missing fields, bad times) are left out. Returns the folder and its counts.
 */
async function writeMovieLensLike(
  shopDir: string,
  out: string,
  opts: { burstDays?: number; yearsBack?: number; seed?: number } = {},
): Promise<{ dir: string; ratings: number; users: number; movies: number }> {
  const burst = (opts.burstDays ?? 14) * 86_400_000;
  const shift = (opts.yearsBack ?? 28) * 365.25 * 86_400_000;
  const rand = mulberry32(opts.seed ?? 5);
  mkdirSync(out, { recursive: true });
  const rating: Record<string, number> = { purchase: 5, add_to_cart: 4, click: 3, view: 2 };
  const events: Array<{ u: string; i: string; r: number; t: number }> = [];
  let lo = Infinity;
  let hi = -Infinity;
  await scanCsv(
    join(shopDir, 'events.csv'),
    { required: ['user_id', 'item_id', 'event_type', 'timestamp'] },
    (rec, _row, c) => {
      const f = rec.fields();
      const u = f[c.get('user_id')!] ?? '';
      const i = f[c.get('item_id')!] ?? '';
      const r = rating[f[c.get('event_type')!] ?? ''];
      const t = Date.parse(f[c.get('timestamp')!] ?? '');
      if (!u || !i || !r || !Number.isFinite(t)) return;
      events.push({ u, i, r, t });
      lo = Math.min(lo, t);
      hi = Math.max(hi, t);
    },
  );
  const start = new Map<string, number>();
  for (const e of events) if (!start.has(e.u)) start.set(e.u, lo + rand() * (hi - lo - burst));
  const kept = events.filter((e) => e.t >= start.get(e.u)! && e.t < start.get(e.u)! + burst);
  const num = (id: string) => id.replace(/^[^0-9]*/, '');
  const lines = ['userId,movieId,rating,timestamp'];
  for (const e of kept) lines.push(`${num(e.u)},${num(e.i)},${e.r},${Math.floor((e.t - shift) / 1000)}`);
  writeFileSync(join(out, 'ratings.csv'), `${lines.join('\n')}\n`);
  const movies = ['movieId,title,genres'];
  await scanCsv(join(shopDir, 'items.csv'), { required: ['item_id', 'category', 'title'] }, (rec, _row, c) => {
    const f = rec.fields();
    const id = num(f[c.get('item_id')!] ?? '');
    const title = (f[c.get('title')!] ?? '').replace(/"/g, "'");
    if (id) movies.push(`${id},"${title}",${f[c.get('category')!] || '(no genres listed)'}`);
  });
  writeFileSync(join(out, 'movies.csv'), `${movies.join('\n')}\n`);
  return { dir: out, ratings: kept.length, users: new Set(kept.map((e) => e.u)).size, movies: movies.length - 1 };
}

function listArg(name: string): string[] {
  const out: string[] = [];
  process.argv.forEach((a, i) => {
    if (a === `--${name}` && process.argv[i + 1]) out.push(process.argv[i + 1]!);
  });
  return out;
}

const num = (name: string, fallback: number) => Number(listArg(name)[0] ?? fallback);

/** Mean of each metric over the shop seeds. */
function meanRows(datasets: Array<{ rows: Record<string, Row> }>): Record<string, Row> {
  const out: Record<string, Row> = {};
  const names = datasets[0] ? Object.keys(datasets[0].rows) : [];
  for (const n of names) {
    const row = {} as Row;
    for (const s of SEGMENTS) {
      const vals = datasets.map((d) => d.rows[n]?.[s]).filter((v): v is Record<string, number> => !!v);
      row[s] = vals.length
        ? Object.fromEntries(
            Object.keys(vals[0]!).map((k) => [k, round(vals.reduce((a, v) => a + (v[k] ?? 0), 0) / vals.length)]),
          )
        : null;
    }
    out[n] = row;
  }
  return out;
}

async function main(): Promise<void> {
  const seeds = (listArg('seeds')[0] ?? '1,2,3').split(',').map(Number);
  const peer = !process.argv.includes('--no-peer');
  const kindNames = listArg('kinds')[0]?.split(',');
  const kinds = kindNames ? KINDS.filter((k) => kindNames.includes(k.name)) : KINDS;
  const work = mkdtempSync(join(tmpdir(), 'recflow-bench-quality-'));
  const store = new ArtifactStore(join(work, 'artifacts'));
  const shopSize = { users: num('users', 3000), items: num('items', 1500), events: num('events', 200_000) };
  const shops: Array<Record<string, unknown> & { rows: Record<string, Row> }> = [];
  if (!process.argv.includes('--no-shop'))
    for (const seed of seeds) {
      const { shop } = await makeShop(store, { ...shopSize, seed });
      const prepared = await prepareDataset(store, { source: { kind: 'shop', id: shop.id } });
      const ds = await loadDataset(prepared.dataset.path);
      shops.push((await benchDataset(`shop-seed${seed}`, ds, work, { shopDir: shop.path, peer, kinds })) as never);
    }
  const dataDirs = listArg('data');
  if (process.argv.includes('--movielens-like')) {
    // A shop with the demo's catalogue, 4x the users and 6x the events, cut to one 14-day burst per user: about 60%
    // of the test users are new (the review measured 58% on real MovieLens data).
    const { shop } = await makeShop(store, { users: 12_000, items: 1500, events: 1_200_000, seed: 7 });
    const made = await writeMovieLensLike(shop.path, join(work, 'movielens-like'));
    console.log(
      `MovieLens-format folder ${made.dir}: ${made.ratings} ratings, ${made.users} users, ${made.movies} movies`,
    );
    dataDirs.push(made.dir);
  }
  const data: unknown[] = [];
  for (const dir of dataDirs) {
    const prepared = await prepareDataset(store, { source: { kind: 'dir', path: dir } });
    const ds = await loadDataset(prepared.dataset.path);
    data.push(await benchDataset(`data:${dir.split('/').filter(Boolean).pop()}`, ds, work, { peer, kinds }));
  }
  // Merge with the previous results: a run with --no-shop keeps the shop section, data sets are replaced by name.
  const file = join(__dirname, 'results', 'quality.json');
  const prev = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  const prevData = ((prev.data as Array<{ name: string }> | undefined) ?? []).filter(
    (d) => !data.some((x) => (x as { name: string }).name === d.name),
  );
  await writeResult('quality.json', {
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version },
    protocol:
      'test split of a time split; whole catalogue ranked per user, training items excluded; relevant = test items not seen in training; users:new = test users without training events (empty history: every model falls back to its prior); NDCG@10 binary gains',
    shop: shops.length
      ? {
          command: `npx tsx bench/quality.ts ${process.argv.slice(2).join(' ')}`.trim(),
          size: shopSize,
          seeds,
          mean: meanRows(shops),
          perSeed: shops,
        }
      : (prev.shop ?? null),
    data: [
      ...prevData,
      ...data.map((d) => ({
        command: `npx tsx bench/quality.ts ${process.argv.slice(2).join(' ')}`.trim(),
        ...(d as object),
      })),
    ],
  });
  console.log(`\nwrote bench/results/quality.json (work folder ${work})`);
}

void main();
