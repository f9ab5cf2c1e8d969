import { randomUUID } from 'node:crypto';
import { link, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataDirError } from './data-dir-errors.js';

/** The lock file in a data directory. */
export const LOCK_FILE = 'synod.lock';

/**
 * Who holds a lock, as the lock file says (one JSON object). `startTicks` is the process's
 * start time in clock ticks since boot (/proc/<pid>/stat, field 22) and `bootId` the
 * kernel's boot id: with the pid they name one process, even after the pid is reused (a
 * node killed with SIGKILL and restarted in a container often gets its old pid back).
 * Both are null where /proc is missing; then only the pid is checked.
 */
export interface LockOwner {
  readonly pid: number;
  readonly hostname: string;
  readonly bootId: string | null;
  readonly startTicks: string | null;
  readonly startedAt: string;
  /** Tells this holder's file from a later one with the same pid. */
  readonly token: string;
}

export interface DataDirLock {
  readonly path: string;
  readonly owner: LockOwner;
  /** The holder this lock was taken over from (it was gone), if any: worth a log line. */
  readonly tookOverFrom: LockOwner | undefined;
  /** Deletes the lock file if it is still ours. Idempotent. */
  release(): Promise<void>;
}

/**
 * Takes the data directory's lock: one process per directory. Node has no flock, so the lock
 * is a file created with O_EXCL that names its process. A lock whose process is gone (killed
 * with SIGKILL: its pid is free, or now belongs to a process that started at another time,
 * or the machine rebooted) is stale and taken over. Throws DataDirError IN_USE when a live
 * process holds it, this one included (a second runtime on the same directory), or one on
 * another host (a shared filesystem), whose liveness cannot be checked from here.
 */
export async function lockDataDir(dir: string): Promise<DataDirLock> {
  const path = join(dir, LOCK_FILE);
  const me = await thisProcess();
  let tookOverFrom: LockOwner | undefined;
  // Each pass either takes the lock, refuses, or removed a stale file (or waited for one
  // being written): a few passes are plenty unless something keeps re-creating the file.
  for (let pass = 0; pass < 50; pass++) {
    if (await create(path, me)) return new Lock(path, me, tookOverFrom);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if (isErrno(error, 'ENOENT')) continue; // its holder just released it
      throw error;
    }
    const holder = parseOwner(text);
    if (holder === undefined) {
      // Created and not yet written (its creator is writing it now), or left half-written
      // by a crash: wait for a young one, take over an old one.
      const age = await stat(path).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age < 1_000) {
        await sleep(50);
        continue;
      }
    } else {
      const alive = await isAlive(holder, me);
      if (alive) throw inUse(dir, path, holder, holder.hostname !== me.hostname);
      tookOverFrom = holder;
    }
    if (!(await removeIfUnchanged(path, text, me.token))) continue;
  }
  throw new DataDirError(
    'IN_USE',
    `could not take the lock ${path}: it keeps being re-created; is another synod process starting on data directory ${dir}?`,
  );
}

class Lock implements DataDirLock {
  #released = false;
  constructor(
    readonly path: string,
    readonly owner: LockOwner,
    readonly tookOverFrom: LockOwner | undefined,
  ) {}

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    const text = await readFile(this.path, 'utf8').catch(() => '');
    // Someone who judged this process dead took the lock over: it is theirs now.
    if (parseOwner(text)?.token === this.owner.token) await rm(this.path, { force: true });
  }
}

function inUse(dir: string, path: string, holder: LockOwner, elsewhere: boolean): DataDirError {
  const who = `pid ${holder.pid} on ${holder.hostname}, since ${holder.startedAt}`;
  return new DataDirError(
    'IN_USE',
    elsewhere
      ? `data directory ${dir} is locked by a synod process on another host (${who}): stop it first; if that process is gone, delete ${path}`
      : `data directory ${dir} is in use by another synod node (${who}; lock file ${path}): stop that node first, or give this one its own --data directory`,
  );
}

/** Creates the lock file with O_EXCL; false when it exists. */
async function create(path: string, me: LockOwner): Promise<boolean> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'wx');
  } catch (error) {
    if (isErrno(error, 'EEXIST')) return false;
    throw error;
  }
  try {
    await handle.writeFile(`${JSON.stringify(me)}\n`);
  } finally {
    await handle.close();
  }
  return true;
}

/**
 * Removes a stale lock file, but only the one judged stale: it is renamed aside (atomic) and
 * checked. Had a racing process taken the lock in between, what was moved is its live lock:
 * it is linked back (link fails rather than overwrite a newer file). Says whether a stale
 * file was removed.
 */
async function removeIfUnchanged(path: string, judged: string, token: string): Promise<boolean> {
  const aside = `${path}.stale-${token}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
  const moved = await readFile(aside, 'utf8').catch(() => judged);
  if (moved !== judged) await link(aside, path).catch(() => undefined);
  await rm(aside, { force: true });
  return moved === judged;
}

async function isAlive(holder: LockOwner, me: LockOwner): Promise<boolean> {
  if (holder.hostname !== me.hostname) return true; // cannot tell: assume it runs
  if (holder.bootId !== null && me.bootId !== null && holder.bootId !== me.bootId) return false;
  if (holder.pid === me.pid) return holder.startTicks === me.startTicks;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: the pid exists but belongs to another user; it may still be a reused pid.
    if (!isErrno(error, 'EPERM')) return false;
  }
  if (holder.startTicks === null) return true;
  const now = await startTicksOf(holder.pid);
  return now === null || now === holder.startTicks;
}

let cachedSelf: Promise<Omit<LockOwner, 'token'>> | undefined;

async function thisProcess(): Promise<LockOwner> {
  cachedSelf ??= (async () => ({
    pid: process.pid,
    hostname: hostname(),
    bootId: await readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
      (text) => text.trim(),
      () => null,
    ),
    startTicks: await startTicksOf(process.pid),
    startedAt: new Date(Date.now() - process.uptime() * 1000).toISOString(),
  }))();
  return { ...(await cachedSelf), token: randomUUID() };
}

/** Field 22 of /proc/<pid>/stat, counted after the command name (which may hold spaces). */
async function startTicksOf(pid: number): Promise<string | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

function parseOwner(text: string): LockOwner | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null) return undefined;
  const o = doc as Record<string, unknown>;
  const nullableString = (v: unknown): v is string | null => v === null || typeof v === 'string';
  if (
    !Number.isSafeInteger(o.pid) ||
    (o.pid as number) <= 0 ||
    typeof o.hostname !== 'string' ||
    !nullableString(o.bootId) ||
    !nullableString(o.startTicks) ||
    typeof o.startedAt !== 'string' ||
    typeof o.token !== 'string'
  )
    return undefined;
  return o as unknown as LockOwner;
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
