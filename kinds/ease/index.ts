/** EASE^R as a model kind (Steck 2019; ./fit.ts, ./export.ts): item-item, refused above `maxItems` items. */
import { fittedKind } from '../fitted';
import { easeGraphs } from './export';
import { fitEase } from './fit';
import { DEFAULT_EASE_CONFIG, readEaseCheckpoint, writeEaseCheckpoint, type EaseConfig, type EaseModel } from './spec';

export const easeKind = fittedKind<EaseConfig, EaseModel>({
  name: 'ease',
  trainerVersion: 'ease-1',
  defaults: DEFAULT_EASE_CONFIG,
  fit: fitEase,
  write: writeEaseCheckpoint,
  read: readEaseCheckpoint,
  graphs: easeGraphs,
});
