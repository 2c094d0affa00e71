/** ALS for implicit feedback as a model kind (Hu, Koren, Volinsky 2008; ./fit.ts, ./export.ts). */
import { fittedKind } from '../fitted';
import { alsGraphs } from './export';
import { fitAls } from './fit';
import { DEFAULT_ALS_CONFIG, readAlsCheckpoint, writeAlsCheckpoint, type AlsConfig, type AlsModel } from './spec';

export const alsKind = fittedKind<AlsConfig, AlsModel>({
  name: 'als',
  trainerVersion: 'als-1',
  defaults: DEFAULT_ALS_CONFIG,
  fit: fitAls,
  write: writeAlsCheckpoint,
  read: readAlsCheckpoint,
  graphs: alsGraphs,
});
