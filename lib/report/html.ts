/**
 * The run report: one self-contained HTML page per lifecycle run (inline SVG, no scripts, no network), so it opens
 * from the artifact store, a CI artifact or an e-mail alike. Sections: outcome, training curves, metrics against the
 * champion and the popularity baseline, the quantization effect, gate decisions, the review, the canary steps.
 */

export interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
}

export interface BarGroup {
  label: string;
  bars: Array<{ name: string; value: number; color: string }>;
}

export const PALETTE = {
  candidate: '#1f77b4',
  champion: '#ff7f0e',
  popularity: '#7f7f7f',
  fp32: '#2ca02c',
  int8: '#1f77b4',
  stable: '#ff7f0e',
  canary: '#1f77b4',
  loss: '#d62728',
} as const;

export function escapeHtml(s: unknown): string {
  return String(s).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

const fmt = (v: number) =>
  Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(4);

function legend(items: Array<{ name: string; color: string }>, x: number, y: number): string {
  return items
    .map(
      (it, i) =>
        `<rect x="${x + i * 130}" y="${y}" width="12" height="12" fill="${it.color}"/><text x="${x + i * 130 + 16}" y="${y + 11}" font-size="12">${escapeHtml(it.name)}</text>`,
    )
    .join('');
}

/** A line chart of one or more series (training curves). */
export function lineChart(title: string, series: Series[], opts: { width?: number; height?: number } = {}): string {
  const W = opts.width ?? 520;
  const H = opts.height ?? 260;
  const pad = { l: 56, r: 12, t: 28, b: 44 };
  const pts = series.flatMap((s) => s.points);
  if (pts.length === 0) return `<figure><figcaption>${escapeHtml(title)}: no data</figcaption></figure>`;
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs) === Math.min(...xs) ? Math.min(...xs) + 1 : Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y1 === y0) [y0, y1] = [y0 - 1e-3, y1 + 1e-3];
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const sy = (y: number) => H - pad.b - ((y - y0) / (y1 - y0)) * (H - pad.t - pad.b);
  const grid = [0, 0.5, 1]
    .map((f) => {
      const v = y0 + f * (y1 - y0);
      return `<line x1="${pad.l}" x2="${W - pad.r}" y1="${sy(v)}" y2="${sy(v)}" stroke="#ddd"/><text x="${pad.l - 4}" y="${sy(v) + 4}" font-size="11" text-anchor="end">${fmt(v)}</text>`;
    })
    .join('');
  const lines = series
    .map((s) => {
      const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ');
      const dots = s.points
        .map((p) => `<circle cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="3.5" fill="${s.color}"/>`)
        .join('');
      return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="3"/>${dots}`;
    })
    .join('');
  const xticks = [...new Set(xs)]
    .map((x) => `<text x="${sx(x)}" y="${H - pad.b + 16}" font-size="11" text-anchor="middle">${fmt(x)}</text>`)
    .join('');
  return `<figure><svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(title)}">
<text x="${pad.l}" y="18" font-size="14" font-weight="bold">${escapeHtml(title)}</text>${grid}${lines}${xticks}${legend(series, pad.l, H - 18)}</svg></figure>`;
}

/** Grouped bars (metrics per model, CTR per variant per step). */
export function barChart(title: string, groups: BarGroup[], opts: { width?: number; height?: number } = {}): string {
  const W = opts.width ?? 520;
  const H = opts.height ?? 260;
  const pad = { l: 56, r: 12, t: 28, b: 44 };
  const values = groups.flatMap((g) => g.bars.map((b) => b.value)).filter(Number.isFinite);
  if (values.length === 0) return `<figure><figcaption>${escapeHtml(title)}: no data</figcaption></figure>`;
  const max = Math.max(...values, 1e-9) * 1.1;
  const gw = (W - pad.l - pad.r) / groups.length;
  const sy = (v: number) => H - pad.b - (v / max) * (H - pad.t - pad.b);
  const bars = groups
    .map((g, gi) => {
      const bw = (gw * 0.8) / Math.max(1, g.bars.length);
      const x0 = pad.l + gi * gw + gw * 0.1;
      const rects = g.bars
        .map((b, bi) => {
          const v = Number.isFinite(b.value) ? b.value : 0;
          const x = x0 + bi * bw;
          return `<rect x="${x.toFixed(1)}" y="${sy(v).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(H - pad.b - sy(v)).toFixed(1)}" fill="${b.color}"><title>${escapeHtml(b.name)}: ${fmt(v)}</title></rect><text x="${(x + bw / 2).toFixed(1)}" y="${(sy(v) - 3).toFixed(1)}" font-size="10" text-anchor="middle">${fmt(v)}</text>`;
        })
        .join('');
      return `${rects}<text x="${(pad.l + gi * gw + gw / 2).toFixed(1)}" y="${H - pad.b + 16}" font-size="11" text-anchor="middle">${escapeHtml(g.label)}</text>`;
    })
    .join('');
  const names = new Map<string, string>();
  for (const g of groups) for (const b of g.bars) names.set(b.name, b.color);
  return `<figure><svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(title)}">
<text x="${pad.l}" y="18" font-size="14" font-weight="bold">${escapeHtml(title)}</text><line x1="${pad.l}" x2="${W - pad.r}" y1="${H - pad.b}" y2="${H - pad.b}" stroke="#999"/>${bars}${legend(
    [...names].map(([name, color]) => ({ name, color })),
    pad.l,
    H - 18,
  )}</svg></figure>`;
}

export function table(head: string[], rows: Array<Array<string | number>>): string {
  return `<table><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(typeof c === 'number' ? fmt(c) : c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

export function page(title: string, sections: Array<{ title: string; body: string }>): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1120px}
h1{font-size:22px} h2{font-size:17px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
figure{display:inline-block;margin:8px 16px 8px 0} table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left} .pass{color:#2ca02c} .fail{color:#d62728}
.outcome{font-size:18px;padding:8px 12px;background:#f4f4f4;display:inline-block}
</style></head><body><h1>${escapeHtml(title)}</h1>
${sections.map((s) => `<section><h2>${escapeHtml(s.title)}</h2>${s.body}</section>`).join('\n')}
</body></html>
`;
}
