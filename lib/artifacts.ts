import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { ErrorType, RecflowError } from './errors';
import { writeJsonAtomic } from './fs-atomic';

/** Kinds of artifact; each has a folder in the store. */
export type ArtifactKind = 'dataset' | 'checkpoint' | 'bundle' | 'evaluation' | 'report' | 'shop';

/**
 * A reference to an immutable artifact: what activities pass around instead of data (Temporal payloads stay
 * small). `id` is the hash of the inputs that made it (so the same inputs reuse it); `contentHash` the sha256 of
 * its files.
 */
export interface ArtifactRef {
  kind: ArtifactKind;
  id: string;
  /** Absolute path of the artifact's folder. */
  path: string;
  contentHash: string;
}

const ID_RE = /^[a-z0-9][a-z0-9._-]{0,127}$/;

/** Validate an artifact id: lowercase letters, digits, `.`, `_`, `-`; no path separators, no `..`. */
export function assertSafeId(id: string, what = 'id'): void {
  if (!ID_RE.test(id) || id.includes('..')) {
    throw new RecflowError(ErrorType.InvalidInput, `invalid ${what} '${id}': use [a-z0-9._-], at most 128 characters`);
  }
}

/** sha256 of a JSON-able value with sorted keys: the input key of an idempotent step. */
export function hashInputs(value: unknown): string {
  return createHash('sha256').update(stableStringify(value)).digest('hex');
}

/** JSON with object keys sorted, so equal values give equal strings. */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
}

async function hashFile(path: string, hash: ReturnType<typeof createHash>): Promise<void> {
  await new Promise<void>((res, rej) => {
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', res)
      .on('error', rej);
  });
}

/** sha256 over a folder's files (relative names and contents, in sorted order). */
export async function hashDir(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (d: string): Promise<void> => {
    const entries = (await readdir(d, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        hash.update(relative(dir, p).split(sep).join('/'));
        hash.update('\0');
        await hashFile(p, hash);
      }
    }
  };
  await walk(dir);
  return hash.digest('hex');
}

/**
 * The local artifact store: `<root>/<kind>/<id>/`, each folder written whole in a temp folder and renamed into
 * place, so a crash never leaves half an artifact under a real id. `artifact.json` in each folder records the
 * content hash; {@link ArtifactStore.get} checks it is there.
 */
export class ArtifactStore {
  readonly root: string;
  constructor(root: string) {
    this.root = resolve(root);
  }

  /** Folder of an artifact (whether or not it exists). */
  pathOf(kind: ArtifactKind, id: string): string {
    assertSafeId(id, `${kind} id`);
    return join(this.root, kind, id);
  }

  /** The artifact if it exists and is complete. */
  async find(kind: ArtifactKind, id: string): Promise<ArtifactRef | undefined> {
    const path = this.pathOf(kind, id);
    const meta = join(path, 'artifact.json');
    if (!existsSync(meta)) return undefined;
    const { contentHash } = JSON.parse(await readFile(meta, 'utf8')) as { contentHash: string };
    return { kind, id, path, contentHash };
  }

  /**
   * The artifact, or a non-retryable `ArtifactMissing` error naming it.
   * @throws {RecflowError}
   */
  async get(kind: ArtifactKind, id: string): Promise<ArtifactRef> {
    const ref = await this.find(kind, id);
    if (!ref) throw new RecflowError(ErrorType.ArtifactMissing, `${kind} artifact '${id}' not found in ${this.root}`);
    return ref;
  }

  /**
   * Get or make an artifact: when `<kind>/<id>` exists it is returned as is (idempotent steps); otherwise `build`
   * fills a fresh temp folder, which is hashed and renamed into place. Concurrent builders of the same id: the
   * first rename wins, the others discard their copy.
   */
  async put(
    kind: ArtifactKind,
    id: string,
    build: (dir: string) => Promise<void>,
  ): Promise<ArtifactRef & { reused: boolean }> {
    const existing = await this.find(kind, id);
    if (existing) return { ...existing, reused: true };
    const final = this.pathOf(kind, id);
    const tmp = join(this.root, '.tmp', `${kind}-${id}-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmp, { recursive: true });
    try {
      await build(tmp);
      const contentHash = await hashDir(tmp);
      await writeJsonAtomic(join(tmp, 'artifact.json'), { kind, id, contentHash, createdAt: new Date().toISOString() });
      await mkdir(join(this.root, kind), { recursive: true });
      try {
        await rename(tmp, final);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await this.find(kind, id))) {
          await rm(tmp, { recursive: true, force: true });
          return { ...(await this.get(kind, id)), reused: true };
        }
        throw err;
      }
      return { kind, id, path: final, contentHash, reused: false };
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  /** Size in bytes of an artifact's files. */
  async sizeOf(ref: ArtifactRef): Promise<number> {
    let total = 0;
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else total += (await stat(p)).size;
      }
    };
    await walk(ref.path);
    return total;
  }
}
