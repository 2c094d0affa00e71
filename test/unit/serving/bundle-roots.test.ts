import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { RecflowError } from '../../../lib/errors';
import { assertBundleInRoots } from '../../../serving/model-slot';
import { tempHome } from '../../helpers/temporal';

describe('bundle roots: a replica loads bundles only from where it is told', () => {
  const home = tempHome();
  const root = join(home, 'artifacts');
  const inside = join(root, 'bundle', 'b1');
  const outside = join(home, 'elsewhere');
  mkdirSync(inside, { recursive: true });
  mkdirSync(outside, { recursive: true });
  symlinkSync(outside, join(root, 'bundle', 'sneaky'));

  const refused = (re: RegExp) => (err: unknown) =>
    err instanceof RecflowError && err.type === 'InvalidInput' && re.test(err.message);

  it('accepts a bundle inside a root, and anything without roots', async () => {
    await assertBundleInRoots(inside, [root]);
    await assertBundleInRoots(outside, undefined);
    await assertBundleInRoots(outside, [root, outside]);
  });

  it('refuses a path outside, through .. or through a symlink, naming the path and the roots', async () => {
    await assert.rejects(assertBundleInRoots(outside, [root]), refused(/elsewhere is outside the bundle roots/));
    await assert.rejects(assertBundleInRoots(join(inside, '..', '..', '..', 'elsewhere'), [root]), refused(/outside/));
    await assert.rejects(assertBundleInRoots(join(root, 'bundle', 'sneaky'), [root]), refused(/sneaky is outside/));
    await assert.rejects(assertBundleInRoots('/etc', [root]), refused(/\/etc is outside/));
    await assert.rejects(assertBundleInRoots(root, [inside]), refused(/outside/));
  });

  it('a missing bundle is ArtifactMissing', async () => {
    await assert.rejects(
      assertBundleInRoots(join(root, 'bundle', 'nope'), [root]),
      (err: unknown) => err instanceof RecflowError && err.type === 'ArtifactMissing',
    );
  });
});
