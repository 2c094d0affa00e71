import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RecflowError } from '../../../lib/errors';
import { loadBaseModel, type BaseModel } from '../../../kinds/search/base-model';
import { exportSearchModel, loadSearchModel, type SearchManifest } from '../../../kinds/search/export';
import { writeTinyBert } from '../../helpers/search-model';
import { COLOURS, THINGS } from '../../helpers/search-pairs';

const tmp = mkdtempSync(join(tmpdir(), 'search-export-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('search model export', () => {
  let tiny: BaseModel;
  const items = COLOURS.flatMap((c) => THINGS.map((t) => ({ id: `${c}-${t}`, text: `${c} ${t}` })));
  before(async () => {
    tiny = await loadBaseModel(writeTinyBert(join(tmp, 'tiny'), 5));
  });

  it('writes graphs per precision, the tokenizer and search.json; the loaded search answers with item ids', async () => {
    const dir = mkdtempSync(join(tmp, 'out-'));
    const m = await exportSearchModel(dir, {
      weights: tiny.weights,
      config: tiny.config,
      tokenizerDir: tiny.dir,
      items,
      precisions: ['fp32', 'int8-dynamic', 'int8-static'],
      calibrationTexts: items.map((i) => i.text),
      lineage: { modelName: 'shop-search', base: tiny.source },
    });
    const onDisk = JSON.parse(readFileSync(join(dir, 'search.json'), 'utf8')) as SearchManifest;
    assert.deepEqual(onDisk, JSON.parse(JSON.stringify(m)));
    assert.equal(m.items, 64);
    assert.deepEqual(m.tokenizer, ['tokenizer.json', 'tokenizer_config.json']);
    assert.equal(Object.keys(m.sha256).length, 6);
    for (const p of ['fp32', 'int8-dynamic'] as const) {
      const s = await loadSearchModel(dir, p);
      const hits = await s.search('red backpack', 5);
      assert.equal(hits.length, 5);
      assert.ok(hits.every((h) => items.some((i) => i.id === h.id)));
      for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1]!.score >= hits[i]!.score);
      const batch = await s.searchBatch(['blue mug', 'red backpack'], 5);
      assert.deepEqual(batch[1], hits, 'a query answers the same alone and in a batch');
      const [all] = await s.session.search(['red backpack'], 1000);
      assert.equal(all!.indices.length, 64, 'k clamped to the catalogue');
      await s.session.release();
    }
    await assert.rejects(
      loadSearchModel(dir, 'int8-weight-only'),
      (e: unknown) => e instanceof RecflowError && /no int8-weight-only graphs/.test(e.message),
    );
    writeFileSync(join(dir, m.files.fp32!.search), 'tampered');
    await assert.rejects(
      loadSearchModel(dir, 'fp32'),
      (e: unknown) => e instanceof RecflowError && /sha256 does not match/.test(e.message),
    );
  });

  it('refuses an empty catalogue, repeated ids and int8-static without calibration texts', async () => {
    const base = { weights: tiny.weights, config: tiny.config, tokenizerDir: tiny.dir };
    await assert.rejects(exportSearchModel(tmp, { ...base, items: [] }), /catalogue is empty/);
    await assert.rejects(
      exportSearchModel(tmp, { ...base, items: [items[0]!, items[0]!] }),
      /item id 'red-running shoes' repeats at row 1/,
    );
    await assert.rejects(
      exportSearchModel(tmp, { ...base, items, precisions: ['int8-static'] }),
      /needs calibrationTexts/,
    );
  });
});
