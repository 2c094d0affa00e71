import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Context, log } from '@temporalio/activity';
import { kindOf } from '../kinds';
import { hashInputs, type ArtifactRef } from '../lib/artifacts';
import type { BundleManifest, PrecisionChoice } from '../lib/bundle';
import { choosePrecision } from '../lib/onnx/precision';
import { loadDataset } from '../lib/data/dataset';
import { LEGACY_KIND, type KindName } from '../lib/kinds';
import { loadBundle } from '../lib/onnx/bundle-io';
import type { ActivityDeps } from './deps';

export interface ExportModelInput {
  /** Model kind of the checkpoint. @default 'two-tower' */
  kind?: KindName;
  checkpointId: string;
  datasetId: string;
  /** @default 'two-tower' */
  modelName?: string;
}

export interface CompareBundlesInput {
  bundleId: string;
  otherBundleId: string;
}
export interface CompareBundlesResult {
  /** Same graphs, vocabularies and fallbacks byte for byte (the manifest's timestamps aside). */
  identical: boolean;
  reason: string;
}

export interface ExportModelResult {
  bundle: ArtifactRef;
  /** True when a bundle for the same inputs already existed. */
  reused: boolean;
  sizes: BundleManifest['sizes'];
  /** The precision to serve (measured at export), when the kind serves recommendations. */
  servingPrecision?: PrecisionChoice;
}

/** Export activities: checkpoint + dataset to a `bundle` artifact (the kind's ONNX graphs, fp32 and int8). */
export function createExportActivities(deps: ActivityDeps) {
  return {
    /**
     * Export a checkpoint to a bundle (lib/bundle.ts) with its kind's exporter. Idempotent: the bundle id is the
     * hash of `{kind, checkpointId, datasetId, exporterVersion, modelName}`; an existing bundle is returned as is.
     */
    async exportModel(input: ExportModelInput): Promise<ExportModelResult> {
      const kindName = input.kind ?? LEGACY_KIND;
      const kind = kindOf(kindName);
      const modelName = input.modelName ?? kindName;
      const id = hashInputs({
        ...(kindName !== 'two-tower' ? { kind: kindName } : {}),
        checkpointId: input.checkpointId,
        datasetId: input.datasetId,
        exporterVersion: kind.exporterVersion,
        modelName,
      });
      const checkpointRef = await deps.store.get('checkpoint', input.checkpointId);
      const datasetRef = await deps.store.get('dataset', input.datasetId);
      const ref = await deps.store.put('bundle', id, async (dir) => {
        const ds = await loadDataset(datasetRef.path);
        Context.current().heartbeat({ step: 'export', kind: kindName, checkpointId: input.checkpointId });
        const manifest = await kind.exportBundle({
          dir,
          checkpointDir: checkpointRef.path,
          checkpointId: input.checkpointId,
          ds,
          modelName,
          datasetId: input.datasetId,
        });
        if (!manifest.servingPrecision) {
          // int8 where it pays: both precisions timed at the serving batch sizes, the choice kept in the manifest.
          // (A kind that measures its own variants, as search does, records its choice itself.)
          const servingPrecision = await choosePrecision(dir);
          await writeFile(join(dir, 'bundle.json'), `${JSON.stringify({ ...manifest, servingPrecision }, null, 2)}\n`);
          log.info('serving precision', { ...servingPrecision });
        }
        log.info('exported bundle', {
          kind: kindName,
          bundleId: id,
          checkpointId: input.checkpointId,
          sizes: manifest.sizes,
        });
      });
      const bundle = await loadBundle(ref.path);
      const { reused, ...artifact } = ref;
      return {
        bundle: artifact,
        reused,
        sizes: bundle.manifest.sizes,
        servingPrecision: bundle.manifest.servingPrecision,
      };
    },

    /**
     * Whether two bundles serve the same thing: every file but the manifest (whose timestamps differ) compared by
     * sha256. A candidate equal to the champion is not registered again (`unchanged`).
     */
    async compareBundles(input: CompareBundlesInput): Promise<CompareBundlesResult> {
      if (input.bundleId === input.otherBundleId) return { identical: true, reason: 'same bundle artifact' };
      const [a, b] = await Promise.all([
        deps.store.get('bundle', input.bundleId).then((r) => contentDigest(r.path)),
        deps.store.get('bundle', input.otherBundleId).then((r) => contentDigest(r.path)),
      ]);
      const files = new Set([...a.keys(), ...b.keys()]);
      const differ = [...files].filter((f) => a.get(f) !== b.get(f)).sort();
      return differ.length
        ? { identical: false, reason: `different ${differ.slice(0, 5).join(', ')}${differ.length > 5 ? '...' : ''}` }
        : { identical: true, reason: `all ${files.size} files equal` };
    },
  };
}

/** sha256 of every file of a bundle folder but `bundle.json` and `artifact.json`, by relative path. */
async function contentDigest(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && e.name !== 'bundle.json' && e.name !== 'artifact.json')
        out.set(
          relative(dir, p),
          createHash('sha256')
            .update(await readFile(p))
            .digest('hex'),
        );
    }
  };
  await walk(dir);
  return out;
}
