/**
 * The report's building blocks: number formats a person can read, and bar charts whose labels cannot overlap (the
 * old grouped column chart printed `0.92660.9266` for two equal bars side by side).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  barChart,
  decimalsFor,
  escapeHtml,
  formatBytes,
  formatCount,
  formatDelta,
  formatDuration,
  formatFixed,
  formatPercent,
  formatRelative,
  formatValue,
  html,
  lineChart,
  niceCeil,
  table,
  textWidth,
} from '../../../lib/report/html';

interface TextBox {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  text: string;
}

/** The text elements of an SVG with their boxes (width from the same generous estimate the chart uses). */
function textBoxes(svg: string): TextBox[] {
  const out: TextBox[] = [];
  for (const m of svg.matchAll(
    /<text x="([\d.-]+)" y="([\d.-]+)" font-size="(\d+)" text-anchor="(\w+)"[^>]*>(.*?)<\/text>/g,
  )) {
    const [, xs, ys, fs, anchor, inner] = m as unknown as [string, string, string, string, string, string];
    const text = inner.replace(/<[^>]+>/g, '').replace(/&amp;/g, '&');
    const size = Number(fs);
    const w = textWidth(text, size);
    const x = Number(xs);
    const x0 = anchor === 'end' ? x - w : anchor === 'middle' ? x - w / 2 : x;
    out.push({ x0, x1: x0 + w, y0: Number(ys) - size, y1: Number(ys) + size * 0.25, text });
  }
  return out;
}

const overlap = (a: TextBox, b: TextBox) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
const svgWidth = (svg: string) => Number(/<svg[^>]* width="(\d+)"/.exec(svg)?.[1]);

describe('number formats', () => {
  it('durations read as people say them', () => {
    assert.equal(formatDuration(0.919), '0.9 s');
    assert.equal(formatDuration(123.4), '2 min 3 s');
    assert.equal(formatDuration(0.031), '31 ms');
    assert.equal(formatDuration(42.4), '42 s');
    assert.equal(formatDuration(59.7), '1 min');
    assert.equal(formatDuration(3600 + 300), '1 h 5 min');
    assert.equal(formatDuration(2 * 86_400 + 3 * 3600), '2 d 3 h');
    assert.equal(formatDuration(0), '0 s');
    assert.equal(formatDuration(Number.NaN), 'n/a');
  });

  it('a tiny difference never reads -0.0000; zero is ±0; decimals follow the values', () => {
    assert.equal(formatDelta(-0.000012, 4), '-0.000012');
    assert.equal(formatDelta(-0.0021, 4), '-0.0021');
    assert.equal(formatDelta(0.0123, 3), '+0.012');
    assert.equal(formatDelta(0, 4), '±0');
    assert.equal(formatFixed(-0.00001, 4), '0.0000');
    assert.equal(formatFixed(-0.0000001, 0), '0');
    assert.equal(decimalsFor([0.7012, 0.6988]), 3);
    assert.equal(decimalsFor([0.0297, 0.0266]), 4);
    assert.equal(decimalsFor([256, 223]), 0);
    assert.equal(decimalsFor([Number.NaN, 0]), 0);
  });

  it('values, counts, shares, relative changes and sizes', () => {
    assert.equal(formatValue(0.70123), '0.701');
    assert.equal(formatValue(0.026613), '0.0266');
    assert.equal(formatValue(13.853), '13.9');
    assert.equal(formatValue(0.02), '0.02');
    assert.equal(formatValue(20000), '20,000');
    assert.equal(formatValue(undefined), 'n/a');
    assert.equal(formatCount(1234567.4), '1,234,567');
    assert.equal(formatCount(-1500), '-1,500');
    assert.equal(formatPercent(0.5), '50%');
    assert.equal(formatPercent(0.1234), '12.3%');
    assert.equal(formatPercent(0.0004), '0.04%');
    assert.equal(formatPercent(0.17, 2, true), '17.00%');
    assert.equal(formatRelative(0.0011, 0.0266), '+4.1%');
    assert.equal(formatRelative(-0.03, 0.25), '-12%');
    assert.equal(formatRelative(-0.00001, 0.7), '-0.001%');
    assert.equal(formatRelative(0.1, 0), 'n/a');
    assert.equal(formatBytes(41_225), '41.2 kB');
    assert.equal(formatBytes(1_300_000), '1.3 MB');
    assert.equal(niceCeil(0.107), 0.12);
    assert.equal(niceCeil(0.72), 0.8);
    assert.equal(niceCeil(13.9), 15);
    assert.equal(niceCeil(1), 1);
  });

  it('escapes markup in text but keeps cells given as markup', () => {
    assert.equal(escapeHtml(`<b a="1">'&'</b>`), '&lt;b a=&quot;1&quot;&gt;&#39;&amp;&#39;&lt;/b&gt;');
    const t = table(
      ['a', 'b'],
      [
        ['<x>', html('<i>y</i>')],
        [0.70123, null],
      ],
      { numeric: [1] },
    );
    assert.match(t, /<td>&lt;x&gt;<\/td><td class="num"><i>y<\/i><\/td>/);
    assert.match(t, /<td>0\.701<\/td><td class="num"><\/td>/);
  });
});

describe('bar charts', () => {
  it('two equal values get their own rows: labels never overlap, and stay inside the chart', () => {
    const svg = barChart('AUC', [
      {
        label: 'all users',
        bars: [
          { name: 'candidate int8', value: 0.9266, color: '#1f77b4', note: '+0%' },
          { name: 'champion int8', value: 0.9266, color: '#ff7f0e' },
          { name: 'popularity', value: 0.9266, color: '#7f7f7f' },
        ],
      },
      {
        label: 'new users',
        bars: [
          { name: 'candidate int8', value: 0.91, color: '#1f77b4' },
          { name: 'a very long baseline name that must be clipped', value: 0.0001, color: '#7f7f7f' },
        ],
      },
    ]);
    const boxes = textBoxes(svg);
    const values = boxes.filter((b) => b.text.startsWith('0.927'));
    assert.equal(values.length, 3, svg);
    const ys = values.map((b) => b.y0);
    assert.equal(new Set(ys).size, 3, 'one row each');
    for (let i = 0; i < boxes.length; i++)
      for (let j = i + 1; j < boxes.length; j++)
        assert.ok(!overlap(boxes[i]!, boxes[j]!), `'${boxes[i]!.text}' overlaps '${boxes[j]!.text}'`);
    const W = svgWidth(svg);
    for (const b of boxes) assert.ok(b.x0 >= 0 && b.x1 <= W + 0.5, `'${b.text}' outside 0..${W}: ${b.x0}..${b.x1}`);
    assert.ok(
      boxes.some((b) => b.text.endsWith('…')),
      'the long name is clipped',
    );
    assert.ok(!svg.includes('0.9270.927'));
  });

  it('puts each value label right of its bar, never on it', () => {
    const svg = barChart('NDCG@10', [
      {
        label: '',
        bars: [
          { name: 'a', value: 0.03, color: '#111111' },
          { name: 'b', value: 0.025, color: '#222222' },
        ],
      },
    ]);
    const rects = [...svg.matchAll(/<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"/g)].map((m) => ({
      end: Number(m[1]) + Number(m[3]),
      y: Number(m[2]),
    }));
    const labels = textBoxes(svg).filter((b) => /^0\.0\d{3}$/.test(b.text));
    assert.equal(rects.length, 2);
    for (const r of rects) {
      const l = labels.find((b) => b.y0 < r.y + 11 && b.y1 > r.y);
      assert.ok(l && l.x0 >= r.end, `label right of the bar ending at ${r.end}`);
    }
    // Same decimals for the values of one chart, and a round axis end.
    assert.deepEqual(
      labels.map((l) => l.text),
      ['0.0300', '0.0250'],
    );
    assert.match(svg, />0\.03<\/text>/);
    assert.match(
      barChart('x', [{ label: '', bars: [{ name: 'a', value: 0.107, color: '#111111' }] }]),
      />0\.12<\/text>/,
    );
  });

  it('an unknown value is n/a without a bar (a p99 over no request is not 0 ms)', () => {
    const svg = barChart(
      'p99',
      [
        {
          label: '10%',
          bars: [
            { name: 'stable', value: null, color: '#ff7f0e' },
            { name: 'canary', value: Number.NaN, color: '#1f77b4' },
          ],
        },
        { label: '50%', bars: [{ name: 'stable', value: 11.1, color: '#ff7f0e' }] },
      ],
      { format: (v) => `${formatValue(v)} ms` },
    );
    assert.equal([...svg.matchAll(/<rect /g)].length, 1, 'one bar: the known value');
    assert.equal(textBoxes(svg).filter((b) => b.text === 'n/a').length, 2);
    assert.ok(!svg.includes('>0 ms<') || svg.indexOf('>0 ms<') > svg.indexOf('<line'), 'no 0 ms value label');
  });

  it('starts the axis where asked (AUC at chance) and draws negative changes left of zero', () => {
    const auc = barChart('AUC', [{ label: '', bars: [{ name: 'm', value: 0.75, color: '#000000' }] }], {
      min: 0.5,
      max: 1,
    });
    const rect = /<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"/.exec(auc)!;
    const x0 = Number(rect[1]);
    const w = Number(rect[2]);
    const axis = /<line x1="([\d.]+)" x2="([\d.]+)" y1="[\d.]+" y2="[\d.]+" stroke="#ccc"/.exec(auc)!;
    const plotW = Number(axis[2]) - Number(axis[1]);
    assert.ok(Math.abs(w / plotW - 0.5) < 0.01, `0.75 is half way from 0.5 to 1 (${w}/${plotW})`);
    assert.ok(Math.abs(x0 - Number(axis[1])) < 0.1, 'bars start at the axis start');
    const delta = barChart(
      'vs champion',
      [
        {
          label: '',
          bars: [
            { name: 'up', value: 0.1, color: '#00aa00' },
            { name: 'down', value: -0.2, color: '#aa0000' },
          ],
        },
      ],
      { min: -0.2, max: 0.2, format: (v) => formatRelative(v, 1) },
    );
    const [up, down] = [...delta.matchAll(/<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"/g)].map((m) => [
      Number(m[1]),
      Number(m[2]),
    ]);
    assert.ok(up && down && Math.abs(down[0]! + down[1]! - up[0]!) < 0.2, 'both bars meet at zero');
    assert.ok(Math.abs(down[1]! - 2 * up[1]!) < 0.5, 'twice as long');
    assert.ok(textBoxes(delta).some((b) => b.text === '-20%'));
  });
});

describe('line charts', () => {
  it('leaves non-finite points out and says when there is nothing to draw', () => {
    const svg = lineChart('loss', [
      {
        name: 'loss',
        color: '#d62728',
        points: [
          [1, 0.69],
          [2, Number.NaN],
          [3, 0.6],
        ],
      },
    ]);
    assert.equal([...svg.matchAll(/<circle /g)].length, 2);
    assert.ok(!svg.includes('NaN'));
    assert.match(lineChart('empty', [{ name: 'x', color: '#000', points: [] }]), /empty: no data/);
  });
});
