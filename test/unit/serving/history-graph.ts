/**
 * A bundle whose recommend graph reads a `history [B, L]` input (the contract of the sequential kinds): it ranks
 * first the item after the most recent history item (`next(i) = i + 1`, wrapping to 1; padding 0 gives item 1),
 * so a test can tell which history serving fed it. Built with lib/onnx/builder.ts over a two-tower test bundle.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BundleManifest } from '../../../lib/bundle';
import { DType, GraphBuilder, attr, encodeModel } from '../../../lib/onnx/builder';
import { makeBundle, type TestBundle } from './helpers';

/** The item the history graph ranks first after `last` (an item index). */
export function nextItem(last: number, items: number): number {
  return (last % (items - 1)) + 1;
}

/** Build the history-reading recommend graph over `items` items (index 0 included). */
export function historyRecommendGraph(items: number, historyWidth: number | string = 'len'): Uint8Array {
  const g = new GraphBuilder('test_history_recommend');
  const user = g.input('user', DType.int64, ['batch']);
  const k = g.input('k', DType.int64, [1]);
  const exclude = g.input('exclude', DType.int64, ['batch', 'excluded']);
  const history = g.input('history', DType.int64, ['batch', historyWidth]);
  const table = new Float32Array(items * items);
  for (let j = 0; j < items; j++) table[j * items + nextItem(j, items)] = 1;
  const last = g.op1('Slice', [
    history,
    g.int64('starts', [-1]),
    g.int64('ends', [Number.MAX_SAFE_INTEGER]),
    g.int64('axes', [1]),
  ]);
  const lastFlat = g.op1('Squeeze', [last, g.int64('sq_axes', [1])]);
  const rows = g.op1('Gather', [g.init('next_table', [items, items], table), lastFlat], { axis: attr.int(0) });
  const zeros = g.op1('Mul', [user, g.int64('zero', [0], [])]);
  const zcol = g.op1('Unsqueeze', [zeros, g.int64('axis_1', [1])]);
  const idx = g.op1('Concat', [zcol, exclude], { axis: attr.int(1) });
  const minusInf = g.op1('ConstantOfShape', [g.op1('Shape', [idx])], {
    value: attr.tensor({ dims: [1], dataType: DType.float, floatData: [-Infinity] }),
  });
  const masked = g.op1('ScatterElements', [rows, idx, minusInf], { axis: attr.int(1) });
  const kk = g.op1('Min', [k, g.int64('max_k', [items - 1])]);
  const [vals] = g.op('TopK', [masked, kk], ['top_logits', 'items'], {
    axis: attr.int(-1),
    largest: attr.int(1),
    sorted: attr.int(1),
  }) as [string, string];
  g.op1('Sigmoid', [vals], {}, 'scores');
  g.output('scores', DType.float, ['batch', 'k']);
  g.output('items', DType.int64, ['batch', 'k']);
  return encodeModel(g.model({ 'recflow.test': 'history-graph' }));
}

/** A test bundle (two-tower score graph, stored histories) whose fp32 recommend graph reads `history`. */
export async function makeHistoryBundle(root: string, name: string, historyWidth?: number): Promise<TestBundle> {
  const b = await makeBundle(root, name, 7);
  const manifestPath = join(b.dir, 'bundle.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as BundleManifest;
  const graph = historyRecommendGraph(b.model.sizes.items, historyWidth);
  await writeFile(join(b.dir, manifest.files.fp32.recommend), graph);
  manifest.sizes.fp32.recommend = graph.byteLength;
  await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return b;
}
