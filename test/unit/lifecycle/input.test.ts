import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkLifecycleInput } from '../../../lib/lifecycle/input';

describe('checkLifecycleInput: kind', () => {
  it('takes kind auto as written (the CLI and the demo send it), and defaults to it', () => {
    const given = checkLifecycleInput({ requestedBy: 'alice', kind: 'auto' });
    assert.ok(given.ok, JSON.stringify(given));
    assert.equal(given.value.kind, 'auto');
    const omitted = checkLifecycleInput({ requestedBy: 'alice' });
    assert.ok(omitted.ok, JSON.stringify(omitted));
    assert.equal(omitted.value.kind, 'auto');
  });

  it('takes every model kind and refuses anything else, listing the choices', () => {
    for (const kind of ['two-tower', 'als', 'ease', 'sequential', 'search']) {
      const r = checkLifecycleInput({ requestedBy: 'alice', kind });
      assert.ok(r.ok, `${kind}: ${JSON.stringify(r)}`);
      assert.equal(r.value.kind, kind);
    }
    const bad = checkLifecycleInput({ requestedBy: 'alice', kind: 'Auto' });
    assert.equal(bad.ok, false);
    assert.ok(
      !bad.ok && bad.errors.some((e) => /kind: "Auto" is not a model kind \(auto, two-tower/.test(e)),
      JSON.stringify(bad),
    );
  });
});
