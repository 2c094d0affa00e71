/**
 * A cross-process lock on a directory: a lock file created with O_EXCL (`wx`) holding `{pid, host, at}`.
 * A lock is stale when its process is gone (same host) or it is older than `staleMs` (any host); stale locks are
 * broken by one process at a time (a second O_EXCL file guards the recovery), so two waiters never both break it.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { open, readFile, rm, stat } from 'node:fs/promises';

export interface LockOptions {
  /** Give up after this long. @default 30000 */
  timeoutMs?: number;
  /** A lock older than this is stale whatever its owner. @default 60000 */
  staleMs?: number;
}

interface LockInfo {
  pid: number;
  host: string;
  at: number;
  token: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function tryCreate(path: string, info: LockInfo): Promise<boolean> {
  try {
    const fh = await open(path, 'wx');
    try {
      await fh.writeFile(JSON.stringify(info));
    } finally {
      await fh.close();
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

async function readInfo(path: string): Promise<LockInfo | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LockInfo;
  } catch {
    return undefined; // gone, or being written: not stale yet
  }
}

function isStale(info: LockInfo | undefined, staleMs: number): boolean {
  if (!info) return false;
  if (Date.now() - info.at > staleMs) return true;
  return info.host === hostname() && !alive(info.pid);
}

/** Break a stale lock, guarded so only one process does it. */
async function breakStale(path: string, seen: LockInfo, staleMs: number): Promise<void> {
  const guard = `${path}.recover`;
  const me: LockInfo = { pid: process.pid, host: hostname(), at: Date.now(), token: randomBytes(8).toString('hex') };
  if (!(await tryCreate(guard, me))) {
    const g = await readInfo(guard);
    if (isStale(g, Math.min(staleMs, 10_000))) await rm(guard, { force: true });
    return;
  }
  try {
    const now = await readInfo(path);
    if (now && now.token === seen.token) await rm(path, { force: true });
  } finally {
    await rm(guard, { force: true });
  }
}

/** Run `fn` holding the lock file `path`. @throws {Error} (retryable) when the lock cannot be had in time. */
export async function withLock<T>(path: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const staleMs = opts.staleMs ?? 60_000;
  const info: LockInfo = { pid: process.pid, host: hostname(), at: Date.now(), token: randomBytes(8).toString('hex') };
  const deadline = Date.now() + timeoutMs;
  let wait = 5;
  for (;;) {
    info.at = Date.now();
    if (await tryCreate(path, info)) break;
    const held = await readInfo(path);
    if (held && isStale(held, staleMs)) {
      await breakStale(path, held, staleMs);
      continue;
    }
    if (Date.now() > deadline) {
      // A plain Error: retryable (the holder will finish).
      throw new Error(
        `registry lock ${path} held by pid ${held?.pid ?? '?'} on ${held?.host ?? '?'} for over ${timeoutMs} ms`,
      );
    }
    await new Promise((r) => setTimeout(r, wait + Math.random() * wait));
    wait = Math.min(wait * 2, 100);
  }
  try {
    return await fn();
  } finally {
    const now = await readInfo(path);
    if (now?.token === info.token) await rm(path, { force: true });
  }
}

/** Age of a lock file in ms, or undefined when there is none (for tools). */
export async function lockAge(path: string): Promise<number | undefined> {
  return stat(path).then(
    (s) => Date.now() - s.mtimeMs,
    () => undefined,
  );
}
