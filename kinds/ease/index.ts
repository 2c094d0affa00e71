/** EASE^R as a model kind (Steck 2019; ./fit.ts, ./export.ts): item-item, refused above `maxItems` items. */
import { fittedKind } from '../fitted';
import { EASE_EXPORTER_VERSION, exportEaseBundle } from './export';
import { fitEase } from './fit';
import { DEFAULT_EASE_CONFIG, readEaseCheckpoint, writeEaseCheckpoint, type EaseConfig } from './spec';

export const easeKind = fittedKind<EaseConfig, Awaited<ReturnType<typeof fitEase>>>({
  name: 'ease',
  trainerVersion: 'ease-1',
  exporterVersion: EASE_EXPORTER_VERSION,
  defaults: DEFAULT_EASE_CONFIG,
  fit: (ds, config, onProgress) => fitEase(ds, config, onProgress),
  write: writeEaseCheckpoint,
  read: readEaseCheckpoint,
  exportBundle: (dir, m, input) =>
    exportEaseBundle(dir, m, { modelName: input.modelName, checkpointId: input.checkpointId, vocab: input.ds.vocab }),
});
