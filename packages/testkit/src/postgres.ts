import { rmSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { findPostgresTools, type PostgresTools } from './binaries.js';
import { ServerStartError } from './errors.js';
import { freePort, LOOPBACK } from './ports.js';
import { type OsUser, postgresRunAs } from './postgres-user.js';
import { waitUntilReady } from './ready.js';
import { type TrackedResource, track, untrack } from './registry.js';
import { run } from './run.js';
import { SupervisedProcess } from './supervised-process.js';
import { makeTempDir, removeTempDir } from './tempdir.js';
import { delay } from './wait.js';

export interface PostgresOptions {
  /** For initdb and again for the server to accept connections. Default 30 000 ms. */
  readonly startTimeoutMs?: number;
}

export interface Postgres {
  /** `postgres://USER@127.0.0.1:PORT/DB` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  /** The postmaster pid; undefined for an external DATABASE_URL server. */
  readonly pid?: number | undefined;
  /** Fast shutdown, then SIGKILL if needed, and the temp dir is removed. No-op for DATABASE_URL. */
  stop(): Promise<void>;
  /** Signals the postmaster (default SIGKILL) and resolves once it has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Shuts down (if running) and starts again on the same port and data directory. */
  restart(): Promise<void>;
}

const SUPERUSER = 'postgres';
const DATABASE = 'postgres';
const STOP_GRACE_MS = 10_000;
// After a SIGKILLed postmaster its backends take a moment to notice and exit; until then a new
// postmaster refuses the data directory. Those are worth a retry, any other early exit is not.
const TRANSIENT_START_FAILURE =
  /pre-existing shared memory block|lock file "postmaster\.pid" already exists/;

/** A server we do not own: the one DATABASE_URL points at. */
class ExternalPostgres implements Postgres {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  readonly pid: number | undefined = undefined;

  constructor(databaseUrl: string) {
    const parsed = new URL(databaseUrl);
    this.url = databaseUrl;
    this.host = parsed.hostname;
    this.port = parsed.port === '' ? 5432 : Number(parsed.port);
    // The defaults libpq would use for a URL without them.
    this.user = decodeURIComponent(parsed.username) || process.env.PGUSER || userInfo().username;
    this.database = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || this.user;
  }

  async stop(): Promise<void> {}

  async kill(): Promise<void> {
    throw new Error(
      'startPostgres: DATABASE_URL is set, so the server is not ours to kill; unset it to get a throwaway one',
    );
  }

  async restart(): Promise<void> {
    throw new Error(
      'startPostgres: DATABASE_URL is set, so the server is not ours to restart; unset it to get a throwaway one',
    );
  }
}

class LocalPostgres implements Postgres, TrackedResource {
  readonly host = LOOPBACK;
  readonly user = SUPERUSER;
  readonly database = DATABASE;
  readonly port: number;
  readonly url: string;
  private proc: SupervisedProcess | undefined;

  constructor(
    private readonly tools: PostgresTools,
    private readonly dir: string,
    port: number,
    private readonly runAs: OsUser | undefined,
    private readonly startTimeoutMs: number,
  ) {
    this.port = port;
    this.url = `postgres://${SUPERUSER}@${LOOPBACK}:${port}/${DATABASE}`;
    track(this);
  }

  get pid(): number | undefined {
    return this.proc?.running === true ? this.proc.pid : undefined;
  }

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  /** The temp dir holding the data directory and the unix socket; gone after stop(). */
  get tempDir(): string {
    return this.dir;
  }

  async initdb(): Promise<void> {
    const result = await run(
      this.tools.initdb,
      [
        '-D',
        this.dataDir,
        '-U',
        SUPERUSER,
        '--auth=trust',
        '--encoding=UTF8',
        '--no-locale',
        '--no-sync',
      ],
      { ...this.processOptions(), timeoutMs: this.startTimeoutMs },
    );
    if (result.code !== 0) {
      throw new ServerStartError(
        'initdb',
        `exited with ${result.signal ?? `code ${result.code}`}`,
        result.output,
      );
    }
  }

  async start(): Promise<void> {
    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      try {
        await this.startOnce(Math.max(1_000, deadline - Date.now()));
        return;
      } catch (error) {
        const transient =
          error instanceof ServerStartError && TRANSIENT_START_FAILURE.test(error.logTail);
        if (!transient || Date.now() >= deadline) throw error;
        await delay(200);
      }
    }
  }

  async stop(): Promise<void> {
    await this.shutdown();
    untrack(this);
    await removeTempDir(this.dir);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.proc?.kill(signal);
  }

  async restart(): Promise<void> {
    await this.shutdown();
    await this.start();
  }

  destroySync(): void {
    this.proc?.destroySync();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async shutdown(): Promise<void> {
    // SIGINT is postgres's "fast" shutdown: roll back sessions, checkpoint, exit.
    await this.proc?.stop('SIGINT', STOP_GRACE_MS);
  }

  private async startOnce(timeoutMs: number): Promise<void> {
    // Run postgres itself rather than pg_ctl: pg_ctl daemonizes it, so the watchdog would guard
    // pg_ctl instead of the postmaster, and `pid` would not be the postmaster's.
    const proc = await SupervisedProcess.spawn({
      name: 'postgres',
      command: this.tools.postgres,
      args: [
        ...['-D', this.dataDir, '-p', String(this.port)],
        ...Object.entries(this.settings()).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
      ],
      ...this.processOptions(),
    });
    this.proc = proc;
    await waitUntilReady(proc, {
      timeoutMs,
      intervalMs: 100,
      what: `pg_isready -h ${LOOPBACK} -p ${this.port}`,
      probe: () => this.isReady(),
    });
  }

  private settings(): Record<string, string> {
    return {
      listen_addresses: LOOPBACK,
      // Inside our temp dir: never /var/run/postgresql, which belongs to the machine's own server.
      unix_socket_directories: this.dir,
      // Throwaway data: durability only costs test time.
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      // Room for synod's transactions across groups (PREPARE TRANSACTION); PostgreSQL's default is 0.
      max_prepared_transactions: '64',
    };
  }

  private async isReady(): Promise<boolean> {
    const result = await run(
      this.tools.pgIsready,
      ['-q', '-h', LOOPBACK, '-p', String(this.port), '-U', SUPERUSER, '-d', DATABASE, '-t', '2'],
      { timeoutMs: 5_000 },
    );
    return result.code === 0;
  }

  private processOptions(): { cwd: string; uid?: number; gid?: number } {
    // cwd inside our temp dir: as the postgres user, initdb fails if it cannot read the caller's cwd.
    return this.runAs === undefined
      ? { cwd: this.dir }
      : { cwd: this.dir, uid: this.runAs.uid, gid: this.runAs.gid };
  }
}

/**
 * A PostgreSQL server for tests. With DATABASE_URL set, a handle to that server (nothing is
 * started). Otherwise initdb into a fresh synod-* temp dir and a postgres listening only on
 * 127.0.0.1 at a free port, as the OS user "postgres" when running as root.
 */
export async function startPostgres(options: PostgresOptions = {}): Promise<Postgres> {
  const external = process.env.DATABASE_URL;
  if (external !== undefined && external !== '') return new ExternalPostgres(external);
  const tools = findPostgresTools();
  const runAs = await postgresRunAs();
  const dir = await makeTempDir(runAs);
  const server = new LocalPostgres(
    tools,
    dir,
    await freePort(),
    runAs,
    options.startTimeoutMs ?? 30_000,
  );
  try {
    await server.initdb();
    await server.start();
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}
