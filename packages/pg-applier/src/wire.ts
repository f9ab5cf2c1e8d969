import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { SynodClient } from '@synod/client';
import pg from 'pg';
import {
  closeSignal,
  createScramSha256Data,
  type MessageResponse,
  type PostgresConnectionOptions,
  type ScramSha256Data,
} from 'pg-gateway';
import { fromNodeSocket } from 'pg-gateway/node';
import { backendPid } from './backend-pid.js';
import { classify, statementTexts } from './classify.js';
import { TEXT_VALUES } from './sql-outcomes.js';
import { CopyIn, copyColumns, copyInMessage, copyOutMessages } from './wire-copy.js';
import { errorMessage } from './wire-errors.js';
import { extendedMessage } from './wire-extended.js';
import { concat, consumed, Reader, readyForQuery } from './wire-messages.js';
import { type RunnerOptions, StatementRunner } from './wire-runner.js';
import type { Result, Session } from './wire-session.js';
import {
  applyStartupSettings,
  backendKeyData,
  type CancelKey,
  cancelBackend,
  cancelRequest,
  changedSettings,
  newCancelKey,
  parameterStatus,
  reportedValues,
} from './wire-startup.js';
import { arrayBuffer, isLoopback, writeResult } from './wire-statements.js';
import { transactionFailed, transactionStatus } from './wire-transaction.js';

export type { Consistency } from './wire-session.js';
export { isLoopback } from './wire-statements.js';

/** Where the front end listens, who may log in, and the node it fronts (RunnerOptions). */
export interface SqlFrontEndOptions extends RunnerOptions {
  /** Port to listen on (0: a free one). */
  readonly port: number;
  /**
   * Address to listen on: 127.0.0.1 unless asked. Anywhere but loopback, every login needs a
   * user and its password (SCRAM-SHA-256): with no user defined, nobody gets in.
   */
  readonly host?: string;
  /**
   * Who may log in, with SCRAM-SHA-256 (sql-users.ts: kept in the group's log). With none
   * defined, loopback logins are trusted, as a local PostgreSQL's `trust`.
   */
  readonly users?: { readonly size: number; lookup(name: string): ScramSha256Data | undefined };
  /** TLS for clients that ask for it (psql's sslmode=require, verify-full): PEM. */
  readonly tls?: { readonly cert: Uint8Array; readonly key: Uint8Array };
  /** This node's database: reads and local statements run there. */
  readonly connectionString: string;
}

/**
 * The PostgreSQL wire protocol in front of a node (issue 5): psql and drivers connect to
 * 127.0.0.1:port unchanged. Each statement of a simple query goes where the determinism
 * guard routes it:
 * - a write of a replicated table goes through the group's log (to the leader, like any
 *   client write, with this session's clientId and seq); the client gets PostgreSQL's
 *   command tag, or its error with the SQLSTATE;
 * - a read of a replicated table first waits for the session's consistency model
 *   (`SET synod.consistency_model TO 'optimistic' | 'strong' | 'linearizable'`, strong by
 *   default), then runs on this node's database;
 * - anything else runs on this node's database as it would on a plain PostgreSQL.
 * Each client session has its own connection to the database.
 *
 * Both query protocols: simple (psql) and extended (drivers' parameterized queries, text or
 * binary values: wire-extended.ts). A replicated write returns its RETURNING rows. COPY FROM
 * STDIN and TO STDOUT in the simple protocol (psql's \copy): a COPY into a replicated table
 * is one log entry.
 */
export class SqlFrontEnd {
  readonly #o: SqlFrontEndOptions;
  readonly #server: Server;
  readonly #sessions = new Set<pg.Client>();
  /** Each session's database connection and state, by its cancel key's process id. */
  readonly #byCancelKey = new Map<number, { readonly db: pg.Client; readonly session: Session }>();
  readonly #runner: StatementRunner;

  /** What an unknown user's login is checked against: it fails as a wrong password does. */
  readonly #decoy: ScramSha256Data;

  private constructor(options: SqlFrontEndOptions, server: Server, decoy: ScramSha256Data) {
    this.#o = options;
    this.#runner = new StatementRunner(options);
    this.#server = server;
    this.#decoy = decoy;
  }

  /** The address it listens on. */
  get #listenHost(): string {
    return this.#o.host ?? '127.0.0.1';
  }

  /** Where it listens, as HOST:PORT. */
  get address(): string {
    return `${this.#listenHost}:${this.port}`;
  }

  get port(): number {
    const address = this.#server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  static async start(options: SqlFrontEndOptions): Promise<SqlFrontEnd> {
    const server = createServer();
    const decoy = await createScramSha256Data(randomBytes(32).toString('base64'), 4096);
    const frontEnd = new SqlFrontEnd(options, server, decoy);
    server.on('connection', (socket) => void frontEnd.#serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, frontEnd.#listenHost, () => resolve());
    });
    return frontEnd;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const session of this.#sessions) await session.end().catch(() => undefined);
  }

  /** Trust on loopback while no user is defined; SCRAM-SHA-256 otherwise. */
  #auth(): NonNullable<PostgresConnectionOptions['auth']> {
    const users = this.#o.users;
    if (isLoopback(this.#listenHost) && (users?.size ?? 0) === 0) return { method: 'trust' };
    return {
      method: 'scram-sha-256',
      getScramSha256Data: ({ username }) => users?.lookup(username) ?? this.#decoy,
    };
  }

  async #serve(socket: import('node:net').Socket): Promise<void> {
    const db = new pg.Client({ connectionString: this.#o.connectionString, types: TEXT_VALUES });
    db.on('error', () => undefined);
    this.#sessions.add(db);
    socket.on('close', () => {
      this.#sessions.delete(db);
      this.#byCancelKey.delete(session.cancelKey.processId);
      void db.end().catch(() => undefined);
      const t = session.transaction;
      if (t.kind === 'replicated') void t.tx.end().then((db) => db?.end());
      void session.tentative?.end().catch(() => undefined);
    });
    socket.on('error', () => undefined);
    // The database session opens once the client has logged in: a stranger who connects and
    // never authenticates holds a socket, not a PostgreSQL backend.
    let connected: Promise<boolean> | undefined;
    const ready = (): Promise<boolean> => {
      connected ??= db.connect().then(
        () => true,
        () => {
          socket.destroy();
          return false;
        },
      );
      return connected;
    };
    const clients = new Map<string, SynodClient>();
    const session: Session = {
      consistency: 'strong',
      path: { publicOnly: undefined },
      client: (group) => {
        let client = clients.get(group);
        if (client === undefined) {
          const local = this.#runner.groups.named(group)?.local;
          client = new SynodClient({
            transport: this.#o.transport,
            group,
            ...(local === undefined ? {} : { local }),
          });
          clients.set(group, client);
        }
        return client;
      },
      user: '',
      settings: new Map(),
      settingsStale: false,
      cancelKey: newCancelKey(),
      tentative: undefined,
      transaction: { kind: 'none' },
      skipUntilSync: false,
      copyIn: undefined,
      prepared: new Map(),
      portals: new Map(),
    };
    this.#byCancelKey.set(session.cancelKey.processId, { db, session });
    const connection = await fromNodeSocket(socket, {
      auth: this.#auth(),
      ...(this.#o.tls === undefined
        ? {}
        : { tls: { cert: arrayBuffer(this.#o.tls.cert), key: arrayBuffer(this.#o.tls.key) } }),
      onAuthenticated: async (state) => {
        if (!(await ready())) return;
        session.user = state.clientParams?.user ?? '';
        try {
          await applyStartupSettings(db, state.clientParams ?? {});
        } catch {
          socket.destroy(); // PostgreSQL refuses a login with a setting it cannot take
          return;
        }
        session.settings = await reportedValues(db, session.user).catch(() => new Map());
      },
      onMessage: async (data, state) => {
        if (!state.hasStarted) {
          const key = cancelRequest(data);
          if (key === undefined) return undefined;
          await this.#cancel(key).catch(() => undefined);
          // The connection ends with nothing sent back, as PostgreSQL ends a cancel's.
          return [closeSignal] as unknown as Uint8Array[];
        }
        if (!state.isAuthenticated) return undefined;
        if (!(await ready())) return undefined;
        return this.#message(data, db, session);
      },
    });
    // pg-gateway reports server_version alone after authentication; a PostgreSQL server
    // reports every GUC_REPORT setting and its BackendKeyData before the first ReadyForQuery.
    const authenticated = connection.completeAuthentication.bind(connection);
    connection.completeAuthentication = async function* () {
      for await (const out of authenticated()) {
        if (out[0] === 0x5a /* Z: ReadyForQuery */) {
          for (const [name, value] of session.settings) yield parameterStatus(name, value);
          yield backendKeyData(session.cancelKey);
        }
        yield out;
      }
    };
  }

  /** A CancelRequest: what the session with that key runs now is cancelled. */
  async #cancel(key: CancelKey): Promise<void> {
    const found = this.#byCancelKey.get(key.processId);
    if (found === undefined || found.session.cancelKey.secret !== key.secret) return;
    const pid = backendPid(found.db);
    if (pid !== undefined) await cancelBackend(this.#o.connectionString, pid);
    const t = found.session.transaction;
    const tentative = t.kind === 'replicated' ? t.tx.backendPid : undefined;
    if (tentative !== undefined && this.#o.transactionConnectionString !== undefined)
      await cancelBackend(this.#o.transactionConnectionString, tentative);
  }

  /**
   * ReadyForQuery, after a ParameterStatus for each reported setting a statement changed
   * (as PostgreSQL reports them: when they change, before ReadyForQuery).
   */
  async #ready(db: pg.Client, session: Session): Promise<Uint8Array> {
    const out: Uint8Array[] = [];
    if (session.settingsStale) {
      session.settingsStale = false;
      const now = await reportedValues(db, session.user).catch(() => undefined);
      if (now !== undefined) out.push(...changedSettings(session.settings, now));
    }
    out.push(readyForQuery(transactionStatus(session)));
    return concat(out);
  }

  /** One message of a logged-in client. */
  #message(
    data: Uint8Array,
    db: pg.Client,
    session: Session,
  ): MessageResponse | Promise<MessageResponse> {
    {
      const type = String.fromCharCode(data[0]!);
      if (session.copyIn !== undefined) return copyInMessage(type, data, db, session);
      if (type === 'Q') return this.#query(new Reader(data, 5).cstring(), db, session);
      if (type === 'X') return undefined; // Terminate: pg-gateway closes the connection
      if (type === 'S') {
        session.skipUntilSync = false;
        return this.#ready(db, session);
      }
      if (session.skipUntilSync) return consumed();
      // Parse, Bind, Describe, Execute, Close, Flush: the extended protocol.
      return extendedMessage(type, data, db, session, this.#runner).then(
        (bytes) => (bytes.length === 0 ? consumed() : bytes),
        (error: unknown) => {
          session.skipUntilSync = true;
          transactionFailed(session);
          return errorMessage(error);
        },
      );
    }
  }

  /** The simple query protocol: one Query message, every result, then ReadyForQuery. */
  async #query(
    sql: string,
    db: pg.Client,
    session: Session,
  ): Promise<Uint8Array | AsyncIterable<Uint8Array>> {
    const out: Uint8Array[] = [];
    try {
      const results = await this.#simpleQuery(sql, db, session, out);
      const copy = results[0]?.copy;
      if (copy?.info.direction === 'in') {
        const response = CopyIn.response(copy.info, await copyColumns(db, copy.info));
        session.copyIn = { rows: new CopyIn(copy.sql), replicate: copy.replicate };
        return response;
      }
      if (copy?.info.direction === 'out') return copyOutMessages(copy.sql, copy.info, db, session);
      for (const result of results) writeResult(result, out);
      out.push(await this.#ready(db, session));
      return concat(out);
    } catch (error) {
      transactionFailed(session);
      return concat([...out, errorMessage(error), await this.#ready(db, session)]);
    }
  }

  /**
   * A Query message's statements. Several that start, end or run inside a transaction block
   * run one by one, as PostgreSQL runs them (psql -c "BEGIN; ...; COMMIT"): each one's results
   * go to `out` as it completes, so an error leaves those before it answered.
   */
  async #simpleQuery(
    sql: string,
    db: pg.Client,
    session: Session,
    out: Uint8Array[],
  ): Promise<Result[]> {
    const statements = classify(sql);
    if (
      statements.length < 2 ||
      (session.transaction.kind === 'none' && !statements.some((s) => s.kind === 'transaction'))
    )
      return this.#runner.execute(sql, [], db, session, true);
    for (const text of statementTexts(sql))
      for (const result of await this.#runner.execute(text, [], db, session, true))
        writeResult(result, out);
    return [];
  }
}
