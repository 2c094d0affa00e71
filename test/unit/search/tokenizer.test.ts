import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { RecflowError } from '../../../lib/errors';
import { SearchTokenizer, toInt64 } from '../../../kinds/search/tokenizer';
import { baseModelDir } from '../../helpers/search-model';

// Token ids from Python `tokenizers` on the same tokenizer.json: bench/search_reference.py
// (regenerate with scripts/make-search-fixtures.mjs).
interface Fixture {
  tokenizers: string;
  tokenizerSha256: string;
  truncatedLength: number;
  cases: Array<{ text: string; ids: number[]; truncated: number[] }>;
}
const fixture = JSON.parse(
  readFileSync(join(__dirname, '..', '..', 'fixtures', 'search', 'tokenizer.json'), 'utf8'),
) as Fixture;

describe('search tokenizer', () => {
  const dir = baseModelDir();
  const tok = SearchTokenizer.load(dir, 512);

  it('the fixture was made from the installed tokenizer.json', () => {
    const sha = createHash('sha256')
      .update(readFileSync(join(dir, 'tokenizer.json')))
      .digest('hex');
    assert.equal(sha, fixture.tokenizerSha256);
    assert.ok(fixture.cases.length >= 300, `${fixture.cases.length} cases`);
  });

  it('ids equal Python tokenizers for every case, untruncated and truncated', () => {
    const wrong: string[] = [];
    let truncatedCases = 0;
    for (const c of fixture.cases) {
      if (JSON.stringify(tok.encode(c.text)) !== JSON.stringify(c.ids)) wrong.push(`full: ${JSON.stringify(c.text)}`);
      const t = tok.encode(c.text, fixture.truncatedLength);
      if (JSON.stringify(t) !== JSON.stringify(c.truncated)) wrong.push(`truncated: ${JSON.stringify(c.text)}`);
      if (c.ids.length > fixture.truncatedLength) truncatedCases++;
    }
    assert.deepEqual(wrong, []);
    assert.ok(truncatedCases >= 5, `only ${truncatedCases} cases long enough to be truncated`);
  });

  it('hard cases are in the fixture: a literal [CLS] maps to the special id, CJK and emoji are covered', () => {
    const byText = new Map(fixture.cases.map((c) => [c.text, c.ids]));
    assert.equal(byText.get('[CLS] special token in text [SEP]')?.[1], tok.clsId);
    assert.ok([...byText.keys()].some((t) => /\p{Script=Han}/u.test(t)));
    assert.ok([...byText.keys()].some((t) => /\p{Extended_Pictographic}/u.test(t)));
    assert.ok([...byText.keys()].some((t) => /\p{Cc}/u.test(t)));
  });

  it('pads a batch to its longest row, masks the padding, truncates to maxLength', () => {
    const texts = ['red shoes', 'a much longer product title with several more words in it', ''];
    const b = tok.encodeBatch(texts, { maxLength: 8 });
    assert.equal(b.batch, 3);
    assert.equal(b.seqLen, 8);
    assert.deepEqual([...b.lengths], [tok.encode(texts[0]!).length, 8, 2]);
    for (let i = 0; i < 3; i++) {
      const row = [...b.inputIds.subarray(i * 8, i * 8 + 8)];
      const mask = [...b.attentionMask.subarray(i * 8, i * 8 + 8)];
      const len = b.lengths[i] ?? 0;
      assert.deepEqual(row.slice(0, len), tok.encode(texts[i]!, 8));
      assert.ok(row.slice(len).every((x) => x === tok.padId));
      assert.deepEqual(mask, [...Array(len).fill(1), ...Array(8 - len).fill(0)]);
    }
    assert.equal(b.inputIds[15], tok.sepId, 'a truncated row still ends with [SEP]');
    const fixed = tok.encodeBatch(['red shoes'], { padTo: 16 });
    assert.equal(fixed.seqLen, 16);
    const i64 = toInt64(fixed);
    assert.ok(i64.inputIds instanceof BigInt64Array);
    assert.deepEqual([...i64.inputIds].map(Number), [...fixed.inputIds]);
    assert.deepEqual([...i64.attentionMask].map(Number), [...fixed.attentionMask]);
  });

  it('refuses bad options and non-strings clearly', () => {
    const isInput = (re: RegExp) => (err: unknown) =>
      err instanceof RecflowError && err.type === 'InvalidInput' && re.test(err.message);
    assert.throws(() => tok.encodeBatch(['a'], { maxLength: 1 }), isInput(/maxLength 1/));
    assert.throws(() => tok.encodeBatch(['a b c d'], { padTo: 2 }), isInput(/padTo 2 is shorter/));
    assert.throws(() => tok.encode(42 as unknown as string), isInput(/expected a string, got number/));
  });
});
