/** ALS for implicit feedback as a model kind (Hu, Koren, Volinsky 2008; ./fit.ts, ./export.ts). */
import { fittedKind } from '../fitted';
import { ALS_EXPORTER_VERSION, exportAlsBundle } from './export';
import { fitAls } from './fit';
import { DEFAULT_ALS_CONFIG, readAlsCheckpoint, writeAlsCheckpoint, type AlsConfig } from './spec';

export const alsKind = fittedKind<AlsConfig, Awaited<ReturnType<typeof fitAls>>>({
  name: 'als',
  trainerVersion: 'als-1',
  exporterVersion: ALS_EXPORTER_VERSION,
  defaults: DEFAULT_ALS_CONFIG,
  fit: (ds, config, onProgress) => fitAls(ds, config, onProgress),
  write: writeAlsCheckpoint,
  read: readAlsCheckpoint,
  exportBundle: (dir, m, input) =>
    exportAlsBundle(dir, m, { modelName: input.modelName, checkpointId: input.checkpointId, vocab: input.ds.vocab }),
});
