/**
 * The fleet secret: what signs feedback tokens (so any replica can verify a token another replica issued) and
 * derives the fleet's stats-reader token (so the rollout activities read `/v1/admin/stats` without the admin token).
 * `RECFLOW_FEEDBACK_SECRET` when set (then every replica and worker must have the same value), else a random secret
 * created once in the fleet folder all replicas share, mode 0600. Node-only.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorType, RecflowError } from '../errors';

/** File name of the secret inside `<registryDir>/fleets/<fleet>/`. */
export const FLEET_SECRET_FILE = 'feedback.secret';

/**
 * The fleet's secret: `configured` (e.g. `RECFLOW_FEEDBACK_SECRET`) when given, else the secret file of `fleetDir`,
 * created on first use (temp file + link, so concurrent replicas agree on one secret).
 * @throws {RecflowError} `InvalidData` when the file exists but is too short to be a secret.
 */
export async function loadFleetSecret(fleetDir: string, configured?: string): Promise<Buffer> {
  if (configured) return Buffer.from(configured, 'utf8');
  const file = join(fleetDir, FLEET_SECRET_FILE);
  const read = async () => {
    const s = (await readFile(file, 'utf8')).trim();
    if (s.length < 32)
      throw new RecflowError(ErrorType.InvalidData, `${file}: ${s.length} characters, not a secret: delete it`);
    return Buffer.from(s, 'utf8');
  };
  try {
    return await read();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(fleetDir, { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await rm(tmp, { force: true });
  }
  return read();
}

/** A key derived from the secret for one purpose (hex). */
export function deriveKey(secret: Buffer, purpose: string): string {
  return createHmac('sha256', secret).update(`recflow:${purpose}:v1`).digest('hex');
}

/** The bearer token that may read (GET) a fleet replica's admin API: stats, fleet, faults. */
export function statsReaderToken(secret: Buffer): string {
  return deriveKey(secret, 'admin-read');
}
