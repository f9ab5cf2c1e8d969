import { run } from './run.js';

/** The account that initdb and postgres run as when the harness itself runs as root. */
export interface OsUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

export const POSTGRES_OS_USER = 'postgres';

let cached: Promise<OsUser | undefined> | undefined;

async function lookupId(name: string, flag: '-u' | '-g'): Promise<number | undefined> {
  const result = await run('id', [flag, name], { timeoutMs: 5_000 });
  const id = Number.parseInt(result.output.trim(), 10);
  return result.code === 0 && Number.isInteger(id) ? id : undefined;
}

async function lookupUser(name: string): Promise<OsUser | undefined> {
  const uid = await lookupId(name, '-u');
  const gid = await lookupId(name, '-g');
  return uid === undefined || gid === undefined ? undefined : { name, uid, gid };
}

async function resolvePostgresUser(): Promise<OsUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const existing = await lookupUser(POSTGRES_OS_USER);
  if (existing !== undefined) return existing;
  // Debian creates this account with the postgresql package; a bare image with only the binaries
  // copied in may lack it.
  const created = await run('useradd', ['--system', '--no-create-home', POSTGRES_OS_USER], {
    timeoutMs: 10_000,
  });
  const user = await lookupUser(POSTGRES_OS_USER);
  if (user === undefined) {
    throw new Error(
      `running as root, and initdb/postgres refuse to run as root, but there is no "${POSTGRES_OS_USER}" ` +
        `user and useradd failed: ${created.output.trim()}`,
    );
  }
  return user;
}

/**
 * initdb and postgres refuse to start as root ("cannot be run as root"), and CI and agent sessions
 * run as root; then they run as the OS user "postgres" instead. Undefined when not root: they run
 * as the current user.
 */
export function postgresRunAs(): Promise<OsUser | undefined> {
  cached ??= resolvePostgresUser().catch((error: unknown) => {
    cached = undefined;
    throw error;
  });
  return cached;
}
