/**
 * The search kind from the command line: `recflow run --kind search` names its own model (`shop-search`) and can
 * size the shop's search log; `recflow schedule create --kind search` schedules that model's nightly run; the
 * lifecycle input check refuses kind search without a model name (a `temporal workflow start --input` would else
 * land on the recommender's model).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { formatStatus, lifecycleInputFromOptions, searchRankerLines } from '../../../clients/commands/lifecycle';
import type { LifecycleStatus } from '../../../lib/lifecycle/types';
import { scheduleOptions } from '../../../clients/commands/schedule';
import { DEFAULT_MODEL_NAME, DEFAULT_SEARCH_MODEL_NAME, defaultModelName } from '../../../lib/constants';
import { checkLifecycleInput } from '../../../lib/lifecycle/input';
import type { NightlyInput } from '../../../workflows/nightly';

const scheduleFlags = { cron: '0 2 * * *', tz: 'UTC', overlap: 'skip', catchup: '1 day' };

void describe('search kind on the command line', () => {
  void it('run --kind search defaults the model to shop-search; --model and the input file still win', () => {
    assert.equal(defaultModelName('search'), DEFAULT_SEARCH_MODEL_NAME);
    assert.equal(defaultModelName('auto'), DEFAULT_MODEL_NAME);
    assert.equal(defaultModelName(undefined), DEFAULT_MODEL_NAME);
    const search = lifecycleInputFromOptions({ kind: 'search', requestedBy: 'alice' });
    assert.equal(search.modelName, 'shop-search');
    assert.equal(search.kind, 'search');
    assert.equal(search.rollout?.fleet, 'search', 'a search model rolls out on its own fleet');
    assert.equal(lifecycleInputFromOptions({ kind: 'search', fleet: 'f2', requestedBy: 'a' }).rollout?.fleet, 'f2');
    assert.equal(lifecycleInputFromOptions({ kind: 'ease', requestedBy: 'a' }).rollout, undefined);
    assert.equal(lifecycleInputFromOptions({ kind: 'ease', requestedBy: 'a' }).modelName, 'shop-recs');
    assert.equal(
      lifecycleInputFromOptions({ kind: 'search', model: 'catalog-search', requestedBy: 'a' }).modelName,
      'catalog-search',
    );
    const dir = mkdtempSync(join(tmpdir(), 'recflow-cli-'));
    writeFileSync(join(dir, 'in.json'), JSON.stringify({ kind: 'search', train: { config: { maxPairs: 100 } } }));
    const fromFile = lifecycleInputFromOptions({ input: 'in.json', requestedBy: 'a' }, dir);
    assert.equal(fromFile.modelName, 'shop-search', 'the kind of the input file picks the default too');
    assert.deepEqual(fromFile.train, { config: { maxPairs: 100 } });
  });

  void it('--queries sizes the synthetic shop search log, --epochs the fine-tune', () => {
    const input = lifecycleInputFromOptions({ kind: 'search', queries: 800, epochs: 2, requestedBy: 'a' });
    assert.deepEqual(input.data, {
      kind: 'synthetic',
      seed: undefined,
      users: undefined,
      items: undefined,
      events: undefined,
      queries: 800,
    });
    assert.equal(input.train?.config?.epochs, 2);
    assert.ok(checkLifecycleInput(input).ok);
  });

  void it('the input check: kind search needs a model name; data.queries is a count', () => {
    const noName = checkLifecycleInput({ kind: 'search' });
    assert.equal(noName.ok, false);
    assert.match(!noName.ok ? noName.errors.join('; ') : '', /modelName: required with kind search/);
    assert.ok(checkLifecycleInput({ kind: 'search', modelName: 'shop-search' }).ok);
    assert.ok(checkLifecycleInput({ kind: 'ease' }).ok, 'recommenders keep their default name');
    const bad = checkLifecycleInput({ kind: 'search', modelName: 's', data: { kind: 'synthetic', queries: -1 } });
    assert.equal(bad.ok, false);
    assert.match(!bad.ok ? bad.errors.join('; ') : '', /data\.queries: expected an integer/);
  });

  void it('schedule create --kind search: the search model schedule, its own ids, kind in the nightly input', () => {
    const o = scheduleOptions({ ...scheduleFlags, kind: 'search' });
    assert.equal(o.scheduleId, 'recflow-nightly-shop-search');
    assert.ok(o.action.type === 'startWorkflow');
    assert.equal(o.action.workflowId, 'recflow-nightly-shop-search');
    const [nightly] = o.action.args as [NightlyInput];
    assert.equal(nightly.lifecycle.kind, 'search');
    assert.equal(nightly.lifecycle.modelName, 'shop-search');
    assert.ok(checkLifecycleInput(nightly.lifecycle).ok);
    const recs = scheduleOptions({ ...scheduleFlags });
    assert.equal(recs.scheduleId, 'recflow-nightly-shop-recs');
    const named = scheduleOptions({ ...scheduleFlags, kind: 'search', model: 'catalog-search' });
    assert.equal(named.scheduleId, 'recflow-nightly-catalog-search');
  });

  void it('status: the evaluation headline, and the search rankers table with what serves', () => {
    const lines = searchRankerLines({
      queries: 126,
      hybridWeight: 0.8,
      choice: { variant: 'int8-weight-only', preferred: 'int8', reason: 'fastest within 1 %' },
      rankers: [
        {
          name: 'int8-weight-only',
          role: 'variant',
          description: '',
          overall: { 'ndcg@10': 0.62851, 'mrr@10': 0.5922, 'recall@100': 0.953 },
          bytes: 23_879_391,
          latencyMs: { '1': 4.671 },
          serves: ['int8'],
        },
        { name: 'bm25', role: 'baseline', description: '', overall: { 'ndcg@10': 0.5575 } },
      ],
    });
    assert.equal(lines[0], 'search: 126 test queries');
    assert.match(lines[2] ?? '', /^ {2}int8-weight-only +0\.6285 +0\.5922 +0\.9530 +4\.67 +23\.9 +int8$/);
    assert.match(lines[3] ?? '', /^ {2}bm25 +0\.5575 +- +- +- +- +baseline$/);
    assert.equal(lines[4], '  int8 serves int8-weight-only: fastest within 1 %');
    assert.equal(lines.length, 5, 'a report from before `served` says nothing more');
    const hybrid = searchRankerLines({
      queries: 126,
      hybridWeight: 0.6,
      choice: { variant: 'int8-dynamic', preferred: 'int8', reason: 'fastest within 1 %' },
      served: {
        int8: { ranker: 'hybrid-int8-dynamic', variant: 'int8-dynamic', weight: 0.6 },
        fp32: { ranker: 'fp32', variant: 'fp32', weight: 1 },
      },
      rankers: [
        {
          name: 'hybrid-int8-dynamic',
          role: 'hybrid',
          description: '',
          overall: { 'ndcg@10': 0.449 },
          serves: ['int8'],
        },
      ],
    });
    assert.match(hybrid[2] ?? '', /^ {2}hybrid-int8-dynamic +0\.4490 +- +- +- +- +int8$/);
    assert.deepEqual(hybrid.slice(-2), [
      '  serves (int8): hybrid, int8-dynamic encoder, dense weight 0.60',
      '  serves (fp32): dense, fp32 encoder',
    ]);
    const status = {
      workflowId: 'w',
      modelName: 'shop-search',
      kind: 'search',
      requestedBy: 'a',
      stage: 'done',
      steps: [],
      approval: { state: 'not_requested', refused: [] },
      evaluation: { id: 'e', blessed: true, gates: [], headline: { 'ndcg@10': 0.62851, queries: 126 } },
    } as unknown as LifecycleStatus;
    assert.match(formatStatus(status), /evaluation: ndcg@10 0\.6285, queries 126/);
  });
});
