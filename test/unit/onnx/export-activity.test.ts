/* eslint-disable @typescript-eslint/unbound-method, @typescript-eslint/no-unnecessary-type-assertion -- activity methods do not use `this`; env.run cannot infer results */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { createExportActivities, type ExportModelResult } from '../../../activities/export';
import type { BundleManifest } from '../../../lib/bundle';
import { loadConfig } from '../../../lib/config';
import { metadataOf, decodeModel } from '../../../lib/onnx/builder';
import { decidePrecision } from '../../../lib/onnx/precision';
import { storeWithModel, writeRandomDataset } from '../../helpers/random-model';
import { mockActivityEnv } from '../../helpers/activity-env';

void describe('exportModel activity', () => {
  let root: string;
  let ctx: Awaited<ReturnType<typeof storeWithModel>>;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'recflow-export-'));
    ctx = await storeWithModel(join(root, 'artifacts'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  const acts = () => createExportActivities({ config: loadConfig({ RECFLOW_HOME: root }), store: ctx.store });

  void it('writes a bundle per lib/bundle.ts, and reuses it for the same inputs', async () => {
    const env = mockActivityEnv();
    const input = { checkpointId: ctx.checkpointId, datasetId: ctx.datasetId };
    const first = (await env.run(acts().exportModel, input)) as ExportModelResult;
    assert.equal(first.reused, false);
    assert.equal(first.bundle.kind, 'bundle');
    const manifest = JSON.parse(await readFile(join(first.bundle.path, 'bundle.json'), 'utf8')) as BundleManifest;
    assert.equal(manifest.opset, 13);
    assert.equal(manifest.datasetId, ctx.datasetId);
    for (const p of ['fp32', 'int8'] as const)
      for (const k of ['score', 'recommend'] as const) {
        const bytes = await readFile(join(first.bundle.path, manifest.files[p][k]));
        assert.equal(bytes.byteLength, manifest.sizes[p][k]);
        assert.equal(metadataOf(decodeModel(bytes))['recflow.vocab_hash'], manifest.vocabHash);
        await (await ort.InferenceSession.create(bytes)).release();
      }
    const vocab = JSON.parse(await readFile(join(first.bundle.path, 'vocab.json'), 'utf8'));
    assert.deepEqual(Object.keys(vocab).sort(), ['items', 'users']);
    assert.equal(vocab.items.length, ctx.model.sizes.items);
    const popular = JSON.parse(await readFile(join(first.bundle.path, 'popular.json'), 'utf8')) as string[];
    assert.ok(popular.length > 10 && !popular.includes('<unk>'));
    // int8 where it pays: both precisions timed, the choice kept in the manifest and returned.
    const sp = manifest.servingPrecision!;
    assert.ok(sp && (sp.preferred === 'fp32' || sp.preferred === 'int8'), JSON.stringify(sp));
    assert.ok(sp.fp32['1']! > 0 && sp.int8['16']! > 0 && sp.sizes.int8 < sp.sizes.fp32, JSON.stringify(sp));
    assert.equal(first.servingPrecision?.preferred, sp.preferred);
    const again = (await env.run(acts().exportModel, input)) as ExportModelResult;
    assert.equal(again.reused, true);
    assert.equal(again.bundle.id, first.bundle.id);
    assert.equal(again.bundle.contentHash, first.bundle.contentHash);
  });

  void it('fails non-retryably on a missing checkpoint and on a checkpoint of another dataset', async () => {
    const env = mockActivityEnv();
    await assert.rejects(
      env.run(acts().exportModel, { checkpointId: 'nope', datasetId: ctx.datasetId }),
      (err: Error & { type?: string; nonRetryable?: boolean }) => {
        assert.equal(err.type, 'ArtifactMissing');
        assert.equal(err.nonRetryable, true);
        return true;
      },
    );
    await ctx.store.put('dataset', 'other-ds', async (dir) => {
      await writeRandomDataset(dir, ctx.model, { id: 'other-ds' });
    });
    await assert.rejects(
      env.run(acts().exportModel, { checkpointId: ctx.checkpointId, datasetId: 'other-ds' }),
      /trained on dataset ds-random, not other-ds/,
    );
    // Nothing half-written: the failed build left no temp folder and no bundle.
    assert.deepEqual(await readdir(join(root, 'artifacts', '.tmp')), []);
  });
});

void describe('int8 where it pays', () => {
  void it('prefers int8 when it is at least as fast, or a little slower on large graphs; fp32 otherwise', () => {
    const small = { fp32: 1e6, int8: 3e5 };
    const large = { fp32: 80e6, int8: 21e6 };
    assert.equal(decidePrecision({ '1': 1, '16': 4 }, { '1': 0.9, '16': 3 }, small).preferred, 'int8');
    const slow = decidePrecision({ '1': 1, '16': 4 }, { '1': 1.4, '16': 5 }, small);
    assert.equal(slow.preferred, 'fp32');
    assert.match(slow.reason, /int8 is slower here \(batch 1: 1.40x, batch 16: 1.25x/);
    assert.equal(decidePrecision({ '1': 1, '16': 4 }, { '1': 1.05, '16': 4.2 }, large).preferred, 'int8');
    assert.equal(decidePrecision({ '1': 1, '16': 4 }, { '1': 1.4, '16': 5 }, large).preferred, 'fp32');
  });
});
