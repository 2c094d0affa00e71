/**
 * Where a slot's bundle is on this host: its recorded `bundlePath` when that folder is still there, else the
 * bundle with the slot's artifact id under one of the replica's bundle roots (`<root>/bundle/<id>` or
 * `<root>/<id>`), so a desired state keeps working after `RECFLOW_HOME` moved. Node-only.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { SlotState } from './types';

const isBundle = (dir: string) =>
  stat(join(dir, 'bundle.json')).then(
    (s) => s.isFile(),
    () => false,
  );

/** The artifact id a bundle folder records in its `artifact.json` (the artifact store's), or undefined. */
export async function bundleIdOf(dir: string): Promise<string | undefined> {
  try {
    const meta = JSON.parse(await readFile(join(dir, 'artifact.json'), 'utf8')) as { kind?: string; id?: string };
    return meta.kind === 'bundle' && typeof meta.id === 'string' && meta.id === basename(dir) ? meta.id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The folder to load `slot` from: `slot.bundlePath` if it holds a bundle, else the first `<root>/bundle/<id>` or
 * `<root>/<id>` holding the bundle with `slot.bundleId`, else `slot.bundlePath` (whose load then reports it missing).
 */
export async function locateBundle(
  slot: Pick<SlotState, 'bundlePath' | 'bundleId'>,
  roots?: string[],
): Promise<string> {
  if (await isBundle(slot.bundlePath)) return slot.bundlePath;
  const id = slot.bundleId;
  if (!id || !/^[A-Za-z0-9._-]+$/.test(id) || id === '.' || id === '..') return slot.bundlePath;
  for (const root of roots ?? [])
    for (const dir of [join(root, 'bundle', id), join(root, id)])
      if ((await isBundle(dir)) && (await bundleIdOf(dir)) === id) return dir;
  return slot.bundlePath;
}
