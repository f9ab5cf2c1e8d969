import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { SynodClient, SynodError } from '@synod/client';
import type { Transport } from '@synod/transport';
import pg from 'pg';
import {
  closeSignal,
  createScramSha256Data,
  type MessageResponse,
  type PostgresConnectionOptions,
  type ScramSha256Data,
} from 'pg-gateway';
import { fromNodeSocket } from 'pg-gateway/node';
import { classify, type StatementInfo, statementTexts } from './classify.js';
import { DeterminismError, SqlError } from './errors.js';
import { type Route, route } from './guard.js';
import { resolveNames } from './qualify.js';
import { TEXT_VALUES } from './sql-outcomes.js';
import { describeStatement, type StatementDescription } from './statement-describe.js';
import { CopyIn, copyColumns, copyInMessage, copyOutMessages } from './wire-copy.js';
import { errorMessage } from './wire-errors.js';
import { type ExtendedHost, extendedMessage } from './wire-extended.js';
import {
  commandComplete,
  concat,
  consumed,
  dataRow,
  encoder,
  message,
  Reader,
  readyForQuery,
  rowDescription,
  tag,
} from './wire-messages.js';
import { CONSISTENCIES, type Consistency, type Result, type Session } from './wire-session.js';
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
import { transactionFailed, transactionStatement, transactionStatus } from './wire-transaction.js';

export type { Consistency } from './wire-session.js';

export interface SqlFrontEndOptions {
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
  readonly group: string;
  /** This node: strong reads wait until it has applied what a majority accepted. */
  readonly nodeId: string;
  /** This node's NATS connection (writes go to the group's leader through it). */
  readonly transport: Transport;
  /** This node's database: reads and local statements run there. */
  readonly connectionString: string;
  /** The replicated tables; a live set (the SQL machine's) follows tables replicated later. */
  readonly replicated: Iterable<string>;
  /**
   * Hands writes to this node in-process (NodeRuntime.write) instead of over NATS: the same
   * path, without two trips through nats-server per write. Over NATS when not given.
   */
  readonly local?: (write: Uint8Array) => Promise<Uint8Array>;
  /**
   * Where a client's transaction on replicated tables runs before it commits through the log
   * (the apply role: SqlMachine.transactionConnectionString). Without it, such a transaction
   * is refused.
   */
  readonly transactionConnectionString?: string;
}

/**
 * pg_paxos's `paxos_replicate_table(group, table)` in this node's group:
 * `SELECT synod.replicate_table('points')` gives the table's name once it is replicated.
 * The guard has already parsed the statement as a read; this takes only that exact form.
 */
function replicateTableCall(sql: string): string | undefined {
  return /^\s*select\s+synod\.replicate_table\s*\(\s*'([^']*)'\s*\)\s*;?\s*$/i.exec(sql)?.[1];
}

/**
 * The front end's own session statements: `SET synod.consistency_model TO x` (the value as
 * written, lower case) or `SHOW synod.consistency_model`.
 */
function consistencyStatement(sql: string): { set: string } | { show: true } | undefined {
  const set = /^\s*set\s+(session\s+)?synod\.consistency_model\s*(to|=)\s*'?(\w+)'?\s*;?\s*$/i.exec(
    sql,
  );
  if (set !== null) return { set: set[3]!.toLowerCase() };
  return /^\s*show\s+synod\.consistency_model\s*;?\s*$/i.test(sql) ? { show: true } : undefined;
}

/**
 * Whether `host` is the machine's own loopback address, where a front end with no user
 * defined trusts its logins: 127.0.0.1, ::1 or localhost. Any other address, 127.0.0.2 as
 * much as a network interface, is one somebody chose with --sql-listen: passwords there.
 */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '127.0.0.1';
}

/** A Buffer's bytes as the ArrayBuffer pg-gateway takes. */
const arrayBuffer = (bytes: Uint8Array): ArrayBuffer =>
  bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;

/** One statement's result, as the simple query protocol sends it. */
function writeResult(result: Result, out: Uint8Array[]): void {
  if (result.empty) {
    out.push(message('I', new Uint8Array()));
    return;
  }
  if (result.fields.length > 0) {
    out.push(rowDescription(result.fields));
    for (const row of result.rows) out.push(dataRow(row));
  }
  out.push(commandComplete(result.tag));
}

/** PostgreSQL's own catalogs (psql's \d reads them): never replicated, never waited for. */
function isCatalog(table: string): boolean {
  return /^(pg_catalog\.|information_schema\.|pg_)/i.test(table);
}

const textField = (name: string): pg.FieldDef => ({
  name,
  tableID: 0,
  columnID: 0,
  dataTypeID: 25,
  dataTypeSize: -1,
  dataTypeModifier: -1,
  format: 'text',
});

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
  readonly #host: ExtendedHost = {
    execute: (sql, params, db, session) => this.#execute(sql, params, db, session),
    describe: (sql, declared, db, session) => this.#describe(sql, declared, db, session),
  };

  /** What an unknown user's login is checked against: it fails as a wrong password does. */
  readonly #decoy: ScramSha256Data;

  private constructor(options: SqlFrontEndOptions, server: Server, decoy: ScramSha256Data) {
    this.#o = options;
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
    const session: Session = {
      consistency: 'strong',
      path: { publicOnly: undefined },
      client: new SynodClient({
        transport: this.#o.transport,
        group: this.#o.group,
        ...(this.#o.local === undefined ? {} : { local: this.#o.local }),
      }),
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
    const pid = (found.db as unknown as { processID?: unknown }).processID;
    if (typeof pid === 'number') await cancelBackend(this.#o.connectionString, pid);
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
      return extendedMessage(type, data, db, session, this.#host).then(
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
      return this.#execute(sql, [], db, session, true);
    for (const text of statementTexts(sql))
      for (const result of await this.#execute(text, [], db, session, true))
        writeResult(result, out);
    return [];
  }

  /**
   * Runs one query string (several statements in the simple protocol, one with parameters in
   * the extended one) where the determinism guard routes it. Throws what the client is to be
   * told as an error (SqlError, pg's DatabaseError, SynodError). A COPY over the connection
   * (simple protocol only) comes back as a `copy` result, run by the caller.
   */
  async #execute(
    sql: string,
    params: readonly (string | null)[],
    db: pg.Client,
    session: Session,
    simple = false,
  ): Promise<Result[]> {
    // Names as this session resolves them (its search_path), the way every replica will too.
    const statements = classify(sql);
    const resolved = await resolveNames(sql, statements, db, session.path);
    const inBlock = session.transaction.kind !== 'none';
    let where = this.#route(resolved, resolved === sql ? statements : undefined, inBlock);
    sql = resolved;
    // This node may be behind the log and not know yet that a table is replicated: a write
    // it would run alone here first catches up (strong or linearizable), then is routed again,
    // so it cannot go around the log of a table replicated a moment ago.
    // So may a read of a table it does not know as replicated: under strong or linearizable
    // it catches up first too (reads of the system catalogs, or of no table, need not).
    const unknownRead =
      where.kind === 'read' && !where.replicated && where.tables.some((t) => !isCatalog(t));
    if ((where.kind === 'local' || unknownRead) && session.consistency !== 'optimistic') {
      await this.#barrier(session.consistency);
      where = this.#route(sql, undefined, inBlock);
    }
    if (where.kind === 'empty') return [{ empty: true, fields: [], rows: [], tag: '' }];
    const inTransaction = await transactionStatement({
      sql,
      params,
      info: statements.length === 1 ? classify(sql)[0] : undefined,
      where,
      db,
      session,
      replicated: this.#o.replicated,
      connectionString: this.#o.transactionConnectionString,
      barrier: () =>
        session.consistency === 'optimistic'
          ? Promise.resolve()
          : this.#barrier(session.consistency),
    });
    if (inTransaction !== undefined) return inTransaction;
    const own = where.kind === 'session' ? consistencyStatement(sql) : undefined;
    if (own !== undefined) {
      if ('set' in own) {
        const wanted = own.set as Consistency;
        if (!CONSISTENCIES.includes(wanted))
          throw new SqlError(
            '22023',
            `synod.consistency_model must be one of ${CONSISTENCIES.join(', ')}`,
          );
        session.consistency = wanted;
        return [{ fields: [], rows: [], tag: 'SET' }];
      }
      return [
        {
          fields: [textField('synod.consistency_model')],
          rows: [[session.consistency]],
          tag: 'SHOW',
        },
      ];
    }
    if ('copy' in where && where.copy !== undefined) {
      if (!simple)
        throw new SqlError(
          '0A000',
          'COPY FROM STDIN or TO STDOUT works in the simple query protocol only',
        );
      if (where.kind === 'read' && where.replicated && session.consistency !== 'optimistic')
        await this.#barrier(session.consistency);
      return [
        {
          fields: [],
          rows: [],
          tag: '',
          copy: { info: where.copy, replicate: where.kind === 'replicate', sql },
        },
      ];
    }
    const table = where.kind === 'read' ? replicateTableCall(sql) : undefined;
    if (table !== undefined) {
      if (session.transaction.kind !== 'none')
        throw new SqlError(
          '0A000',
          'synod.replicate_table() cannot run inside a transaction block',
        );
      // Through this node, whose database has the table: it reads the definition here.
      // A table with many rows stages them through the log before the write is answered.
      const via = new SynodClient({
        transport: this.#o.transport,
        group: this.#o.group,
        via: this.#o.nodeId,
        timeoutMs: 120_000,
        ...(this.#o.local === undefined ? {} : { local: this.#o.local }),
      });
      const answer = await via.replicateTable(table);
      const replicated = String((answer.result as { replicated: string }).replicated);
      return [{ fields: [textField('replicate_table')], rows: [[replicated]], tag: 'SELECT 1' }];
    }
    if (where.kind === 'replicate') {
      const answer = await session.client.write({ op: 'sql', sql, params: [...params] });
      const result = answer.result as {
        command: string;
        rowCount: number;
        rows?: Record<string, string | null>[];
        fields?: Omit<pg.FieldDef, 'format'>[];
      };
      // RETURNING: the applier keeps returned values as text, ready for DataRow.
      const fields = (result.fields ?? []).map((f): pg.FieldDef => ({ ...f, format: 'text' }));
      const rows = (result.rows ?? []).map((row) => fields.map((f) => row[f.name] ?? null));
      return [{ fields, rows, tag: tag(result.command, result.rowCount) }];
    }
    if (where.kind === 'read' && where.replicated && session.consistency !== 'optimistic')
      await this.#barrier(session.consistency);
    const results = await db.query({
      text: sql,
      values: [...params],
      rowMode: 'array',
    } as pg.QueryArrayConfig);
    // SET, RESET, or the end of a block (SET LOCAL): reported settings may have changed.
    if (where.kind === 'session' || where.kind === 'transaction') session.settingsStale = true;
    return ((Array.isArray(results) ? results : [results]) as pg.QueryArrayResult[]).map(
      (result) => ({
        fields: result.fields,
        rows: result.rows as (string | null)[][],
        tag: tag(result.command, result.rowCount),
      }),
    );
  }

  /**
   * The guard's route; inside a transaction block, a locking read of replicated tables
   * (SELECT ... FOR UPDATE) is a read: the transaction is re-run at its slot, where the locks
   * are the applier's.
   */
  #route(sql: string, statements: StatementInfo[] | undefined, inBlock: boolean): Route {
    try {
      return route(sql, {
        replicated: this.#o.replicated,
        ...(statements === undefined ? {} : { statements }),
      });
    } catch (error) {
      if (!inBlock || !(error instanceof DeterminismError) || error.rule !== 'LOCKING_READ')
        throw error;
      const s = (statements ?? classify(sql))[0]!;
      return { kind: 'read', replicated: true, tables: s.tables };
    }
  }

  /**
   * A prepared statement's parameter and result types, as this node's database sees them.
   * The front end's own statements (SET/SHOW synod.consistency_model,
   * synod.replicate_table()) are described here. A table this node does not have yet (it is
   * behind the log) is waited for as a read of it would be.
   */
  async #describe(
    sql: string,
    declared: readonly number[],
    db: pg.Client,
    session: Session,
  ): Promise<StatementDescription> {
    if (replicateTableCall(sql) !== undefined)
      return { params: declared, fields: [textField('replicate_table')] };
    const own = consistencyStatement(sql);
    if (own !== undefined)
      return {
        params: declared,
        fields: 'show' in own ? [textField('synod.consistency_model')] : undefined,
      };
    // A statement the determinism guard refuses fails here, as PostgreSQL fails at Parse.
    this.#route(sql, undefined, session.transaction.kind !== 'none');
    try {
      return await describeStatement(db, sql, declared);
    } catch (error) {
      if (
        !(error instanceof pg.DatabaseError) ||
        error.code !== '42P01' ||
        session.consistency === 'optimistic'
      )
        throw error;
      await this.#barrier(session.consistency);
      return describeStatement(db, sql, declared);
    }
  }

  /** Waits until this node serves reads at the session's consistency (strong or linearizable). */
  async #barrier(consistency: Consistency): Promise<void> {
    const reply = await this.#o.transport.request(
      `synod.${this.#o.group}.node.${this.#o.nodeId}.read`,
      encoder.encode(JSON.stringify({ command: { op: 'query', sql: 'SELECT 1' }, consistency })),
      { timeoutMs: 10_000 },
    );
    const answer = JSON.parse(new TextDecoder().decode(reply.data)) as {
      ok: boolean;
      error?: { code: string; message: string };
    };
    if (!answer.ok) throw new SynodError('NO_QUORUM', answer.error?.message ?? 'no answer');
  }
}
