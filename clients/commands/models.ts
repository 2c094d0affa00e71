import type { Command } from 'commander';
import { loadConfig } from '../../lib/config';
import { FileModelRegistry, parseModelRef, type ModelVersion } from '../../lib/registry';

/** Render rows as an aligned text table. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

const num = (x: number | undefined) => (x === undefined ? '-' : Number(x.toPrecision(4)).toString());

function metric(v: ModelVersion, key: string): number | undefined {
  return v.lineage.metrics?.[`int8.${key}`] ?? v.lineage.metrics?.[`fp32.${key}`];
}

/** Flatten a version into `key: value` strings for show and diff. */
export function flatten(v: ModelVersion): Record<string, string> {
  const out: Record<string, string> = {
    ref: `${v.model}@v${v.version}`,
    status: v.status,
    aliases: v.aliases.join(',') || '-',
    'bundle.id': v.bundle.id,
    'bundle.contentHash': v.bundle.contentHash,
    createdAt: v.createdAt,
    approver: v.approver ?? '-',
  };
  const l = v.lineage;
  const simple = [
    'datasetId',
    'datasetHash',
    'checkpointId',
    'codeVersion',
    'trainingBackend',
    'gpu',
    'evaluationId',
    'workflowId',
    'runId',
  ] as const;
  for (const k of simple) {
    const x = l[k];
    if (x !== undefined) out[`lineage.${k}`] = String(x);
  }
  if (l.config) out['lineage.config'] = JSON.stringify(l.config);
  if (l.blessing) {
    out['blessing.blessed'] = String(l.blessing.blessed);
    for (const g of l.blessing.gates) out[`blessing.${g.name}`] = `${g.passed ? 'PASS' : 'FAIL'} ${g.reason}`;
  }
  for (const [k, x] of Object.entries(l.metrics ?? {}).sort()) out[`metrics.${k}`] = num(x);
  return out;
}

/** `recflow models list|show|diff`: read the model registry. */
export function registerModelsCommands(program: Command): void {
  const models = program.command('models').description('inspect the model registry (versions, aliases, lineage)');
  const registry = () => new FileModelRegistry(loadConfig().registryDir);

  models
    .command('list [model]')
    .description('list models, or the versions of one model')
    .option('--json', 'machine-readable output')
    .action(async (model: string | undefined, opts: { json?: boolean }) => {
      const reg = registry();
      if (!model) {
        const all = await reg.listModels();
        if (opts.json) return console.log(JSON.stringify(all, null, 2));
        if (!all.length) return console.log(`no models in ${reg.root}`);
        console.log(
          table(
            ['MODEL', 'VERSIONS', 'LATEST', 'ALIASES', 'PRODUCTION'],
            all.map((m) => [
              m.model,
              String(m.versions),
              `v${m.latest}`,
              Object.entries(m.aliases)
                .map(([a, v]) => `${a}=v${v}`)
                .join(',') || '-',
              m.production.map((v) => `v${v}`).join(',') || '-',
            ]),
          ),
        );
        return;
      }
      const versions = await reg.listVersions(parseModelRef(model).model);
      if (opts.json) return console.log(JSON.stringify(versions, null, 2));
      console.log(
        table(
          ['VERSION', 'STATUS', 'ALIASES', 'DATASET', 'BACKEND', 'AUC', 'NDCG@10', 'BLESSED', 'CREATED'],
          versions.map((v) => [
            `v${v.version}`,
            v.status,
            v.aliases.join(',') || '-',
            v.lineage.datasetId,
            v.lineage.trainingBackend ?? '-',
            num(metric(v, 'auc')),
            num(metric(v, 'ndcg@10')),
            v.lineage.blessing ? String(v.lineage.blessing.blessed) : '-',
            v.createdAt,
          ]),
        ),
      );
    });

  models
    .command('show <ref>')
    .description('show one version: model, model@vN or model@alias')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, opts: { json?: boolean }) => {
      const v = await registry().get(ref);
      if (opts.json) return console.log(JSON.stringify(v, null, 2));
      console.log(
        table(
          ['FIELD', 'VALUE'],
          Object.entries(flatten(v)).map(([k, x]) => [k, x]),
        ),
      );
    });

  models
    .command('diff <a> <b>')
    .description('compare two versions: lineage and metrics (b - a)')
    .option('--json', 'machine-readable output')
    .option('--all', 'include fields that are equal')
    .action(async (a: string, b: string, opts: { json?: boolean; all?: boolean }) => {
      const reg = registry();
      const [va, vb] = [await reg.get(a), await reg.get(b)];
      const fa = flatten(va);
      const fb = flatten(vb);
      const keys = [...new Set([...Object.keys(fa), ...Object.keys(fb)])].sort();
      const rows = keys
        .filter((k) => opts.all || fa[k] !== fb[k])
        .map((k) => {
          const ma = va.lineage.metrics?.[k.replace(/^metrics\./, '')];
          const mb = vb.lineage.metrics?.[k.replace(/^metrics\./, '')];
          const delta = k.startsWith('metrics.') && ma !== undefined && mb !== undefined ? mb - ma : undefined;
          return { field: k, a: fa[k] ?? '-', b: fb[k] ?? '-', ...(delta !== undefined ? { delta } : {}) };
        });
      if (opts.json) return console.log(JSON.stringify({ a: fa.ref, b: fb.ref, fields: rows }, null, 2));
      console.log(
        table(
          ['FIELD', fa.ref ?? a, fb.ref ?? b, 'DELTA'],
          rows.map((r) => [r.field, r.a, r.b, r.delta === undefined ? '' : (r.delta >= 0 ? '+' : '') + num(r.delta)]),
        ),
      );
    });
}
