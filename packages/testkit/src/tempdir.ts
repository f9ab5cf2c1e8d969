import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OsUser } from './postgres-user.js';

export const TEMP_PREFIX = 'synod-';

/** A fresh directory under os.tmpdir() named synod-XXXXXX, owned by `owner` when given. */
export async function makeTempDir(owner?: OsUser): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), TEMP_PREFIX));
  if (owner !== undefined) await chown(dir, owner.uid, owner.gid);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}
