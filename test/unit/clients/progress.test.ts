import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bar, progressLine } from '../../../clients/progress';

describe('recflow status: the step in flight', () => {
  it('training: the epoch in flight (1-based) of the planned epochs, the batch bar, the backend', () => {
    // What trainModel heartbeats during the first epoch (activities/training.ts: epoch in flight, 0-based).
    const line = progressLine({
      activity: 'trainModel',
      state: 'started',
      attempt: 1,
      details: { kind: 'two-tower', epoch: 0, epochs: 5, batch: 3, batches: 15, checkpointId: '', backend: 'wasm' },
    });
    assert.equal(line, 'trainModel: epoch 1/5 [####................] 3/15 batches on wasm');
  });

  it('training: work after the epochs (the search student) by its phase, not as an epoch past the last', () => {
    const line = progressLine({
      activity: 'trainModel',
      state: 'started',
      attempt: 1,
      details: { kind: 'search', epoch: 1, epochs: 1, batch: 20, batches: 80, phase: 'distilling the student' },
    });
    assert.equal(line, 'trainModel: distilling the student [#####...............] 20/80 batches');
  });

  it('why a step waits: no worker has picked it up (training names the GPU queue and its fallback)', () => {
    const at = new Date('2026-12-01T10:00:05Z');
    assert.equal(
      progressLine({ activity: 'trainModel', state: 'scheduled', attempt: 1, scheduledAt: at }),
      'trainModel: waiting for a training worker (GPU queue first, then the CPU fallback) to pick it up since 10:00:05',
    );
    assert.equal(
      progressLine({ activity: 'exportModel', state: 'scheduled', attempt: 2, lastFailure: 'worker lost' }),
      'exportModel: waiting for a worker to pick it up (attempt 2, last: worker lost)',
    );
  });

  it('data rows, shop events and the canary window', () => {
    assert.equal(
      progressLine({
        activity: 'prepareDataset',
        state: 'started',
        attempt: 1,
        details: { step: 'validate', rows: 100000 },
      }),
      'prepareDataset: validate 100000 rows',
    );
    assert.equal(
      progressLine({
        activity: 'generateShop',
        state: 'started',
        attempt: 1,
        details: { step: 'generate', events: 5, total: 10 },
      }),
      `generateShop: generate ${bar(5, 10)} events`,
    );
    assert.equal(
      progressLine({ activity: 'analyzeCanary', state: 'started', attempt: 1, details: { waitingMs: 4200 } }),
      'analyzeCanary: window closes in 5 s',
    );
    assert.equal(progressLine({ activity: 'evaluateModel', state: 'started', attempt: 1 }), 'evaluateModel: running');
  });
});
