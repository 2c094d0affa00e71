/**
 * Building blocks of the run report (activities/report.ts): number formats, horizontal bar charts whose labels
 * cannot overlap, line charts, tables and the page. Pure string builders: one self-contained HTML page with inline
 * SVG, no scripts, no network, so it opens from the artifact store, a CI artifact or an e-mail alike.
 *
 * Charts put every bar on its own row: the bar's name in a left column, the bar, then its value label right of the
 * bar's end in space reserved for the longest label. Two labels never share a row, so they cannot overlap whatever
 * the values (the old grouped column chart printed `0.92660.9266` for two equal bars side by side).
 */

/** Colours of the report (the integration test counts the candidate, champion, popularity and fp32 pixels). */
export const PALETTE = {
  candidate: '#1f77b4',
  champion: '#ff7f0e',
  popularity: '#7f7f7f',
  fp32: '#2ca02c',
  int8: '#1f77b4',
  stable: '#ff7f0e',
  canary: '#1f77b4',
  loss: '#d62728',
  good: '#2ca02c',
  bad: '#d62728',
  warn: '#b8860b',
  muted: '#999999',
} as const;

/** Colours of the baselines after popularity, in order of appearance (recent popularity, ALS, EASE...). */
export const BASELINE_COLORS = ['#8c564b', '#9467bd', '#17becf', '#bcbd22', '#e377c2', '#525252'] as const;

/** What a table cell or a chart shows for a missing or unknown value. */
export const NA = 'n/a';

export function escapeHtml(s: unknown): string {
  return String(s).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Number formats

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** `20000` -> `20,000` (rounded to an integer; locale-independent). */
export function formatCount(n: number | null | undefined): string {
  if (!finite(n)) return NA;
  const r = Math.round(n);
  return `${r < 0 ? '-' : ''}${String(Math.abs(r)).replace(/\B(?=(\d{3})+(?!\d))/g, ',')}`;
}

/**
 * Decimals that give the largest of `values` (in absolute value) `significant` significant digits, so one chart or
 * column prints its values with the same decimals: AUCs near 0.7 get 3 (`0.701`), NDCGs near 0.03 get 4 (`0.0297`).
 */
export function decimalsFor(values: ReadonlyArray<number | null | undefined>, significant = 3): number {
  const max = Math.max(0, ...values.filter(finite).map(Math.abs));
  if (max === 0) return 0;
  return Math.min(8, Math.max(0, significant - 1 - Math.floor(Math.log10(max))));
}

/** `v` with `decimals` decimals; never `-0.000`; `n/a` when not a finite number. */
export function formatFixed(v: number | null | undefined, decimals: number): string {
  if (!finite(v)) return NA;
  const s = v.toFixed(decimals);
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}

/**
 * A value on its own: integers grouped (`20,000`), others with up to 3 significant digits, trailing zeros dropped
 * (`0.701`, `0.0266`, `13.9`, `0.02`).
 */
export function formatValue(v: number | null | undefined, significant = 3): string {
  if (!finite(v)) return NA;
  if (Number.isInteger(v) || Math.abs(v) >= 10 ** significant) return formatCount(v);
  const s = formatFixed(v, decimalsFor([v], significant));
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/**
 * A signed difference with `decimals` decimals (`+0.012`, `-0.0021`); one that rounds to zero there but is not zero
 * keeps two significant digits (`-0.000012`, never `-0.0000`); exactly zero is `±0`.
 */
export function formatDelta(d: number | null | undefined, decimals: number): string {
  if (!finite(d)) return NA;
  if (d === 0) return '±0';
  const sign = d > 0 ? '+' : '-';
  let s = Math.abs(d).toFixed(decimals);
  if (Number(s) === 0) s = String(Number(Math.abs(d).toPrecision(2)));
  return `${sign}${s}`;
}

/**
 * A share as a percentage: `0.5` -> `50%`, `0.1234` -> `12.3%`, `0.0004` -> `0.04%`, `0` -> `0%`. With `fixed`, always
 * `digits` decimals (`17.00%` beside `10.29%` in one chart).
 */
export function formatPercent(share: number | null | undefined, digits = 1, fixed = false): string {
  if (!finite(share)) return NA;
  const p = share * 100;
  if (fixed) return `${formatFixed(p, digits)}%`;
  if (p === 0) return '0%';
  if (Math.abs(p) < 10 ** -digits) return `${Number(p.toPrecision(1))}%`;
  return `${p.toFixed(digits).replace(/\.0+$/, '')}%`;
}

/**
 * The relative change of `d` against `ref` as a signed percentage (`+4.1%`, `-12%`, `-0.03%`); `±0%` for no change;
 * `n/a` when `ref` is zero or missing.
 */
export function formatRelative(d: number | null | undefined, ref: number | null | undefined): string {
  if (!finite(d) || !finite(ref) || ref === 0) return NA;
  const r = (d / Math.abs(ref)) * 100;
  if (r === 0) return '±0%';
  const sign = r > 0 ? '+' : '-';
  const a = Math.abs(r);
  const s = a >= 10 ? a.toFixed(0) : a >= 0.1 ? a.toFixed(1) : String(Number(a.toPrecision(1)));
  return `${sign}${s}%`;
}

/** A duration for people: `45 ms`, `0.9 s`, `42 s`, `2 min 3 s`, `1 h 5 min`, `2 d 3 h`. */
export function formatDuration(seconds: number | null | undefined): string {
  if (!finite(seconds) || seconds < 0) return NA;
  if (seconds < 0.001) return seconds === 0 ? '0 s' : '<1 ms';
  if (seconds < 0.1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 9.95) return `${seconds.toFixed(1)} s`;
  const t = Math.round(seconds);
  if (t < 60) return `${t} s`;
  const [d, h, m, s] = [Math.floor(t / 86_400), Math.floor(t / 3600) % 24, Math.floor(t / 60) % 60, t % 60];
  if (t < 3600) return s ? `${m} min ${s} s` : `${m} min`;
  if (t < 86_400) return m ? `${h} h ${m} min` : `${h} h`;
  return h ? `${d} d ${h} h` : `${d} d`;
}

/** Bytes in decimal units: `512 B`, `41.2 kB`, `1.3 MB`. */
export function formatBytes(b: number | null | undefined): string {
  if (!finite(b)) return NA;
  if (Math.abs(b) < 1000) return `${Math.round(b)} B`;
  if (Math.abs(b) < 1e6) return `${(b / 1e3).toFixed(1)} kB`;
  if (Math.abs(b) < 1e9) return `${(b / 1e6).toFixed(1)} MB`;
  return `${(b / 1e9).toFixed(2)} GB`;
}

/** An ISO time as `2026-11-23 12:44:11 UTC`; the input unchanged when it does not parse. */
export function formatTime(iso: string | undefined): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  return Number.isFinite(t) ? `${new Date(t).toISOString().slice(0, 19).replace('T', ' ')} UTC` : iso;
}

/**
 * A generous estimate of a text's width in px (sans-serif; wide fonts such as DejaVu Sans included): charts size
 * their columns with it, so a label has room whatever font the viewer has.
 */
export function textWidth(s: string, fontSize: number): number {
  let em = 0;
  for (const c of s) {
    if ("il.,:;|!'`ijtf()[] ".includes(c)) em += 0.36;
    else if ('mwMW%@'.includes(c)) em += 0.95;
    else if (c >= 'A' && c <= 'Z') em += 0.74;
    else em += 0.64;
  }
  return em * fontSize;
}

// ---------------------------------------------------------------------------------------------------------------
// Charts

/** One bar: a value (null or NaN: unknown, drawn as `n/a` without a bar) and an optional note after the value. */
export interface Bar {
  name: string;
  value: number | null | undefined;
  color: string;
  /** Printed after the value, e.g. the change against the champion (`+4.1%`). */
  note?: string;
  noteColor?: string;
  /** A confidence interval around the value (same units), drawn as a whisker. */
  lo?: number;
  hi?: number;
}

/** Bars under a group label (a segment, an analysis window); `label: ''` for no header. */
export interface BarGroup {
  label: string;
  bars: Bar[];
}

export interface BarChartOptions {
  /** Width of the SVG in px; grows when the names and labels need more. @default 360 */
  width?: number;
  /** Where the value axis starts (AUC: 0.5, chance). @default min(0, smallest value) */
  min?: number;
  /** Where it ends. @default the largest value (0 when all are negative) */
  max?: number;
  /** The value labels. @default fixed decimals for 3 significant digits of the largest value */
  format?: (v: number) => string;
  /** A line under the title (what the axis means, where it starts). */
  caption?: string;
  /** The bars' area never gets narrower than this (px): long labels widen the chart instead. @default 80 */
  minPlotWidth?: number;
}

const FONT = 11;
const ROW = 15;
const BAR_H = 11;

/** Horizontal bars in groups, one row per bar, value labels right of the bars (see the module comment). */
export function barChart(title: string, groups: BarGroup[], opts: BarChartOptions = {}): string {
  const values = groups.flatMap((g) => g.bars.map((b) => b.value)).filter(finite);
  const bounds = groups.flatMap((g) => g.bars.flatMap((b) => [b.lo, b.hi])).filter(finite);
  if (values.length === 0 && groups.every((g) => g.bars.length === 0))
    return `<figure class="chart"><figcaption>${escapeHtml(title)}: no data</figcaption></figure>`;
  const decimals = decimalsFor(values);
  const format = opts.format ?? ((v: number) => formatFixed(v, decimals));
  const lo = opts.min ?? Math.min(0, ...values, ...bounds);
  let hi = opts.max ?? niceCeil(Math.max(0, ...values, ...bounds));
  if (!(hi > lo)) hi = lo + 1;
  const tick = opts.format ?? ((v: number) => formatValue(v));
  const labelOf = (b: Bar) => (finite(b.value) ? format(b.value) : NA);
  const noteOf = (b: Bar) => (b.note ? `  ${b.note}` : '');
  const nameW = Math.min(170, Math.max(...groups.flatMap((g) => g.bars.map((b) => textWidth(b.name, FONT))), 0) + 8);
  const labelW = Math.max(...groups.flatMap((g) => g.bars.map((b) => textWidth(labelOf(b) + noteOf(b), FONT))), 24) + 6;
  const pad = { l: 4, r: 4 };
  const W = Math.max(opts.width ?? 360, Math.ceil(pad.l + nameW + (opts.minPlotWidth ?? 80) + labelW + pad.r));
  const x0 = pad.l + nameW;
  const plotW = W - x0 - labelW - pad.r;
  const sx = (v: number) => x0 + ((Math.min(hi, Math.max(lo, v)) - lo) / (hi - lo)) * plotW;
  const origin = sx(lo <= 0 && hi >= 0 ? 0 : lo);
  let y = 20;
  const parts: string[] = [text(pad.l, 14, title, { size: 13, weight: 'bold' })];
  if (opts.caption) {
    y += 4;
    parts.push(text(pad.l, y + 6, opts.caption, { size: 10, fill: '#555' }));
    y += 10;
  }
  y += 4;
  const top = y;
  for (const g of groups) {
    if (g.label) {
      parts.push(text(pad.l, y + 11, g.label, { weight: 'bold' }));
      y += ROW + 1;
    }
    for (const b of g.bars) {
      parts.push(text(x0 - 6, y + BAR_H - 1, clip(b.name, nameW - 7), { anchor: 'end' }));
      if (finite(b.value)) {
        const end = sx(b.value);
        const [a, z] = end >= origin ? [origin, end] : [end, origin];
        parts.push(
          `<rect x="${a.toFixed(1)}" y="${y}" width="${Math.max(1, z - a).toFixed(1)}" height="${BAR_H}" fill="${b.color}"><title>${escapeHtml(`${b.name}: ${labelOf(b)}`)}</title></rect>`,
        );
        let right = Math.max(origin, end);
        if (finite(b.lo) && finite(b.hi)) {
          const [l, h, m] = [sx(b.lo), sx(b.hi), y + BAR_H / 2];
          parts.push(
            `<path d="M${l.toFixed(1)},${m}H${h.toFixed(1)}M${l.toFixed(1)},${y + 1}V${y + BAR_H - 1}M${h.toFixed(1)},${y + 1}V${y + BAR_H - 1}" stroke="#333" stroke-width="1.5" fill="none"/>`,
          );
          right = Math.max(right, h);
        }
        const lx = right + 4;
        parts.push(text(lx, y + BAR_H - 1, labelOf(b), { note: b.note, noteColor: b.noteColor }));
      } else {
        parts.push(text(origin + 4, y + BAR_H - 1, NA, { fill: PALETTE.muted, note: b.note, noteColor: b.noteColor }));
      }
      y += ROW;
    }
    y += 4;
  }
  const axisY = y;
  parts.push(
    `<line x1="${origin.toFixed(1)}" x2="${origin.toFixed(1)}" y1="${top - 2}" y2="${axisY}" stroke="#999"/>`,
    `<line x1="${x0}" x2="${(x0 + plotW).toFixed(1)}" y1="${axisY}" y2="${axisY}" stroke="#ccc"/>`,
    text(x0, axisY + 12, tick(lo), { size: 10, fill: '#555' }),
    text(x0 + plotW, axisY + 12, tick(hi), { size: 10, fill: '#555', anchor: 'end' }),
  );
  const H = axisY + 16;
  return `<figure class="chart"><svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Verdana, sans-serif" role="img" aria-label="${escapeHtml(title)}">${parts.join('')}</svg></figure>`;
}

/** The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 (times a power of ten) at or above `v`: a round axis end. */
export function niceCeil(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) return 0;
  const p = 10 ** Math.floor(Math.log10(v));
  const m = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].find((x) => x * p >= v * (1 - 1e-12)) ?? 10;
  return Number((m * p).toPrecision(12));
}

function clip(s: string, width: number): string {
  if (textWidth(s, FONT) <= width) return s;
  let out = s;
  while (out.length > 1 && textWidth(`${out}…`, FONT) > width) out = out.slice(0, -1);
  return `${out}…`;
}

function text(
  x: number,
  y: number,
  s: string,
  o: {
    size?: number;
    weight?: string;
    fill?: string;
    anchor?: 'start' | 'middle' | 'end';
    note?: string;
    noteColor?: string;
  } = {},
): string {
  const note = o.note ? `<tspan fill="${o.noteColor ?? '#555'}">${escapeHtml(`  ${o.note}`)}</tspan>` : '';
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-size="${o.size ?? FONT}" text-anchor="${o.anchor ?? 'start'}"${
    o.weight ? ` font-weight="${o.weight}"` : ''
  }${o.fill ? ` fill="${o.fill}"` : ''} xml:space="preserve">${escapeHtml(s)}${note}</text>`;
}

/** A series of a line chart; points with a non-finite y are left out. */
export interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
}

/** A line chart (training curves): y ticks at the bottom, middle and top, x ticks at every distinct x. */
export function lineChart(
  title: string,
  series: Series[],
  opts: { width?: number; height?: number; format?: (v: number) => string; xLabel?: string } = {},
): string {
  const W = opts.width ?? 360;
  const H = opts.height ?? 190;
  const clean = series.map((s) => ({ ...s, points: s.points.filter((p) => finite(p[0]) && finite(p[1])) }));
  const pts = clean.flatMap((s) => s.points);
  if (pts.length === 0) return `<figure class="chart"><figcaption>${escapeHtml(title)}: no data</figcaption></figure>`;
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs) === x0 ? x0 + 1 : Math.max(...xs);
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y1 === y0) [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.01, y1 + Math.abs(y1 || 1) * 0.01];
  const decimals = decimalsFor([y0, y1, y1 - y0]);
  const fmt = opts.format ?? ((v: number) => formatFixed(v, decimals));
  const tickW = Math.max(...[y0, (y0 + y1) / 2, y1].map((v) => textWidth(fmt(v), 10)));
  const multi = clean.length > 1;
  const pad = { l: Math.ceil(tickW) + 10, r: 12, t: 26, b: multi ? 44 : 30 };
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const sy = (v: number) => H - pad.b - ((v - y0) / (y1 - y0)) * (H - pad.t - pad.b);
  const grid = [0, 0.5, 1]
    .map((f) => {
      const v = y0 + f * (y1 - y0);
      return `<line x1="${pad.l}" x2="${W - pad.r}" y1="${sy(v).toFixed(1)}" y2="${sy(v).toFixed(1)}" stroke="#e4e4e4"/>${text(pad.l - 4, sy(v) + 4, fmt(v), { size: 10, anchor: 'end', fill: '#555' })}`;
    })
    .join('');
  const lines = clean
    .map((s) => {
      const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ');
      const dots = s.points
        .map((p) => `<circle cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="3" fill="${s.color}"/>`)
        .join('');
      return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2.5"/>${dots}`;
    })
    .join('');
  // At most ~8 x ticks, evenly picked, so they never run into each other.
  const distinct = [...new Set(xs)].sort((a, b) => a - b);
  const step = Math.max(1, Math.ceil(distinct.length / 8));
  const xticks = distinct
    .filter((_, i) => i % step === 0 || i === distinct.length - 1)
    .map((x) => text(sx(x), H - pad.b + 14, formatValue(x), { size: 10, anchor: 'middle', fill: '#555' }))
    .join('');
  let lx = pad.l;
  const legend = multi
    ? clean
        .map((s) => {
          const out = `<rect x="${lx}" y="${H - 16}" width="10" height="10" fill="${s.color}"/>${text(lx + 14, H - 7, s.name)}`;
          lx += 14 + textWidth(s.name, FONT) + 14;
          return out;
        })
        .join('')
    : '';
  const xLabel = opts.xLabel
    ? text(W - pad.r, H - pad.b + 26, opts.xLabel, { size: 10, anchor: 'end', fill: '#555' })
    : '';
  return `<figure class="chart"><svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Verdana, sans-serif" role="img" aria-label="${escapeHtml(title)}">${text(4, 16, title, { size: 13, weight: 'bold' })}${grid}${lines}${xticks}${xLabel}${legend}</svg></figure>`;
}

// ---------------------------------------------------------------------------------------------------------------
// HTML

/** Markup a table cell holds as is (a badge, a link); everything else is escaped. */
export interface Html {
  html: string;
}

export const html = (s: string): Html => ({ html: s });

/** A table cell: text (escaped), a number (formatted by {@link formatValue}), markup, or nothing. */
export type Cell = string | number | Html | null | undefined;

const cell = (c: Cell): string =>
  c === null || c === undefined
    ? ''
    : typeof c === 'number'
      ? escapeHtml(formatValue(c))
      : typeof c === 'string'
        ? escapeHtml(c)
        : c.html;

/** A table; columns listed in `numeric` are right-aligned. */
export function table(head: string[], rows: Cell[][], opts: { numeric?: number[]; className?: string } = {}): string {
  const num = new Set(opts.numeric ?? []);
  const td = (c: Cell, i: number, tag: 'td' | 'th') => `<${tag}${num.has(i) ? ' class="num"' : ''}>${cell(c)}</${tag}>`;
  return `<table${opts.className ? ` class="${opts.className}"` : ''}><thead><tr>${head
    .map((h, i) => td(h, i, 'th'))
    .join(
      '',
    )}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c, i) => td(c, i, 'td')).join('')}</tr>`).join('')}</tbody></table>`;
}

export type Tone = 'good' | 'bad' | 'warn' | 'info' | 'muted';

/** A short coloured label (`pass`, `FAIL`, `inconclusive`). */
export function badge(label: string, tone: Tone): string {
  return `<span class="badge ${tone}">${escapeHtml(label)}</span>`;
}

/** A section of the page. */
export interface Section {
  title: string;
  body: string;
}

/** The page: a title, an optional banner (markup) above the sections, the sections. */
export function page(title: string, sections: Section[], opts: { banner?: string; subtitle?: string } = {}): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body{font-family:"DejaVu Sans",Verdana,system-ui,sans-serif;margin:20px 24px;color:#222;max-width:1140px;font-size:13px;line-height:1.4}
h1{font-size:20px;margin:0 0 2px} .subtitle{color:#555;margin:0 0 10px}
h2{font-size:16px;border-bottom:1px solid #ddd;padding-bottom:3px;margin:22px 0 8px}
h3{font-size:13px;margin:12px 0 4px}
.charts{display:flex;flex-wrap:wrap;gap:6px 18px;align-items:flex-start} figure.chart{margin:4px 0}
figcaption{color:#777;font-style:italic}
table{border-collapse:collapse;font-size:12px;margin:6px 0} td,th{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f6f6f6} td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.banner{padding:10px 14px;border-left:6px solid;margin:8px 0 4px;font-size:15px}
.banner.good{background:#eef7ee;border-color:#2ca02c} .banner.bad{background:#fcecec;border-color:#d62728}
.banner.warn{background:#fdf6e3;border-color:#b8860b} .banner.info{background:#eaf2fa;border-color:#1f77b4}
.banner.muted{background:#f2f2f2;border-color:#999}
.banner b.big{font-size:18px}
.badge{display:inline-block;padding:0 6px;border-radius:3px;font-size:11px;font-weight:bold;color:#fff}
.badge.good{background:#2ca02c} .badge.bad{background:#d62728} .badge.warn{background:#b8860b}
.badge.info{background:#1f77b4} .badge.muted{background:#999}
.note{color:#555} .small{font-size:11px;color:#666} code{font-size:12px}
.facts{display:grid;grid-template-columns:max-content auto;gap:1px 14px;margin:6px 0} .facts dt{color:#666} .facts dd{margin:0}
.cause{background:#fcecec;border:1px solid #e5b4b4;padding:8px 12px;margin:8px 0;white-space:pre-wrap;font-family:monospace;font-size:12px}
.recs{display:flex;flex-wrap:wrap;gap:10px 18px} .rec{border:1px solid #ddd;padding:6px 10px;width:530px}
.rec table{width:100%} .rec .cat{color:#666;font-size:11px} .hit{color:#2ca02c;font-weight:bold}
details{margin:6px 0} summary{cursor:pointer;color:#1f5f99}
</style></head><body><h1>${escapeHtml(title)}</h1>${opts.subtitle ? `<p class="subtitle">${escapeHtml(opts.subtitle)}</p>` : ''}
${opts.banner ?? ''}
${sections.map((s) => `<section><h2>${escapeHtml(s.title)}</h2>${s.body}</section>`).join('\n')}
</body></html>
`;
}
