// Child process of registry.test.ts: registers `count` versions of `model` in `root` as fast as it can.
import { FileModelRegistry } from '../../../lib/registry';

async function main(): Promise<void> {
  const [root, model, tag, count] = process.argv.slice(2) as [string, string, string, string];
  const reg = new FileModelRegistry(root, { timeoutMs: 60_000 });
  const got: number[] = [];
  for (let i = 0; i < Number(count); i++) {
    const { version } = await reg.register({
      model,
      bundle: { id: `bundle-${tag}-${i}`, contentHash: `${tag}-${i}` },
      lineage: { datasetId: 'ds', datasetHash: 'h', checkpointId: `ck-${tag}-${i}` },
      workflowId: `wf-${tag}`,
    });
    got.push(version.version);
  }
  process.stdout.write(JSON.stringify(got));
}
main().catch((err) => {
  process.stderr.write(String(err));
  process.exit(1);
});
