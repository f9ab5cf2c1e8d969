import { createServer, type Server } from 'node:net';
import { SynodClient, SynodError } from '@synod/client';
import type { Transport } from '@synod/transport';
import pg from 'pg';
import { BackendError } from 'pg-gateway';
import { fromNodeSocket } from 'pg-gateway/node';
import { SqlError } from './errors.js';
import { route } from './guard.js';

export interface SqlFrontEndOptions {
  /** Loopback port to listen on (0: a free one). */
  readonly port: number;
  readonly group: string;
  /** This node: strong reads wait until it has applied what a majority accepted. */
  readonly nodeId: string;
  /** This node's NATS connection (writes go to the group's leader through it). */
  readonly transport: Transport;
  /** This node's database: reads and local statements run there. */
  readonly connectionString: string;
  readonly replicated: readonly string[];
}

export type Consistency = 'strong' | 'optimistic' | 'linearizable';
const CONSISTENCIES: readonly Consistency[] = ['strong', 'optimistic', 'linearizable'];

const encoder = new TextEncoder();

/** A backend message: type byte, length, body. */
function message(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setInt32(1, 4 + body.length);
  out.set(body, 5);
  return out;
}

const cstring = (text: string): Uint8Array => encoder.encode(`${text}\0`);

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const commandComplete = (tag: string): Uint8Array => message('C', cstring(tag));

/** The NUL-terminated string at `offset` of a frontend message. */
function cstringAt(data: Uint8Array, offset: number): string {
  const end = data.indexOf(0, offset);
  return new TextDecoder().decode(data.subarray(offset, end < 0 ? data.length : end));
}

/** A message handled with nothing to send: pg-gateway takes a non-empty iterable as "handled". */
const consumed = (): Uint8Array[] => [new Uint8Array(0)];
const readyForQuery = (status: 'I' | 'T' | 'E'): Uint8Array => message('Z', encoder.encode(status));

function rowDescription(fields: readonly pg.FieldDef[]): Uint8Array {
  const parts: Uint8Array[] = [new Uint8Array([0, 0])];
  new DataView(parts[0]!.buffer).setInt16(0, fields.length);
  for (const field of fields) {
    const meta = new Uint8Array(18);
    const view = new DataView(meta.buffer);
    view.setInt32(0, field.tableID);
    view.setInt16(4, field.columnID);
    view.setInt32(6, field.dataTypeID);
    view.setInt16(10, field.dataTypeSize);
    view.setInt32(12, field.dataTypeModifier);
    view.setInt16(16, 0); // text format
    parts.push(cstring(field.name), meta);
  }
  return message('T', concat(parts));
}

function dataRow(values: readonly (string | null)[]): Uint8Array {
  const parts: Uint8Array[] = [new Uint8Array(2)];
  new DataView(parts[0]!.buffer).setInt16(0, values.length);
  for (const value of values) {
    const length = new Uint8Array(4);
    if (value === null) {
      new DataView(length.buffer).setInt32(0, -1);
      parts.push(length);
    } else {
      const bytes = encoder.encode(value);
      new DataView(length.buffer).setInt32(0, bytes.length);
      parts.push(length, bytes);
    }
  }
  return message('D', concat(parts));
}

/** PostgreSQL's command tag for a result: INSERT has the (always 0) oid before the count. */
function tag(command: string, rowCount: number | null): string {
  if (command === 'INSERT') return `INSERT 0 ${rowCount ?? 0}`;
  return ['SELECT', 'UPDATE', 'DELETE', 'MERGE', 'FETCH', 'MOVE', 'COPY'].includes(command)
    ? `${command} ${rowCount ?? 0}`
    : command;
}

function errorResponse(code: string, text: string, position?: number): Uint8Array {
  return BackendError.create({
    severity: 'ERROR',
    code,
    message: text,
    ...(position === undefined ? {} : { position: String(position) }),
  }).flush();
}

/** Results as PostgreSQL sends them in text format; pg's own parsing of values is switched off. */
const rawTypes = { getTypeParser: () => (value: string) => value };

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
 * Not yet: the extended query protocol (Parse/Bind/Execute, what drivers use for
 * parameters), RETURNING rows from replicated writes, COPY.
 */
export class SqlFrontEnd {
  readonly #o: SqlFrontEndOptions;
  readonly #server: Server;
  readonly #sessions = new Set<pg.Client>();

  private constructor(options: SqlFrontEndOptions, server: Server) {
    this.#o = options;
    this.#server = server;
  }

  get port(): number {
    const address = this.#server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  static async start(options: SqlFrontEndOptions): Promise<SqlFrontEnd> {
    const server = createServer();
    const frontEnd = new SqlFrontEnd(options, server);
    server.on('connection', (socket) => void frontEnd.#serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, '127.0.0.1', () => resolve());
    });
    return frontEnd;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const session of this.#sessions) await session.end().catch(() => undefined);
  }

  async #serve(socket: import('node:net').Socket): Promise<void> {
    const db = new pg.Client({ connectionString: this.#o.connectionString, types: rawTypes });
    db.on('error', () => undefined);
    this.#sessions.add(db);
    socket.on('close', () => {
      this.#sessions.delete(db);
      void db.end().catch(() => undefined);
    });
    socket.on('error', () => undefined);
    const session = {
      consistency: 'strong' as Consistency,
      client: new SynodClient({ transport: this.#o.transport, group: this.#o.group }),
      inTransaction: false,
      /** After a refused extended-protocol message: ignore the rest until Sync. */
      skipUntilSync: false,
    };
    try {
      await db.connect();
    } catch {
      socket.destroy();
      return;
    }
    await fromNodeSocket(socket, {
      serverVersion: '15.0 (synod)',
      auth: { method: 'trust' },
      onMessage: (data, state) => {
        if (!state.isAuthenticated) return undefined;
        const type = String.fromCharCode(data[0]!);
        if (type === 'Q') return this.#query(cstringAt(data, 5), db, session);
        if (type === 'X') return undefined; // Terminate: pg-gateway closes the connection
        if (type === 'S') {
          session.skipUntilSync = false;
          return readyForQuery(session.inTransaction ? 'T' : 'I');
        }
        if (session.skipUntilSync) return consumed();
        // Parse, Bind, Describe, Execute, Close, Flush: the extended protocol.
        session.skipUntilSync = true;
        return errorResponse(
          '0A000',
          'synod: the extended query protocol (prepared statements, parameters) is not supported yet; use simple queries (psql does)',
        );
      },
    });
  }

  async #query(
    sql: string,
    db: pg.Client,
    session: { consistency: Consistency; client: SynodClient; inTransaction: boolean },
  ): Promise<Uint8Array> {
    const status = (): 'I' | 'T' => (session.inTransaction ? 'T' : 'I');
    let where: ReturnType<typeof route>;
    try {
      where = route(sql, { replicated: this.#o.replicated });
    } catch (error) {
      if (!(error instanceof SqlError)) throw error;
      const position = (error as { position?: number }).position;
      return concat([
        errorResponse(error.sqlState, error.message, position),
        readyForQuery(status()),
      ]);
    }
    try {
      if (where.kind === 'empty')
        return concat([message('I', new Uint8Array()), readyForQuery(status())]);
      if (where.kind === 'session') {
        const set =
          /^\s*set\s+(session\s+)?synod\.consistency_model\s*(to|=)\s*'?(\w+)'?\s*;?\s*$/i.exec(
            sql,
          );
        if (set !== null) {
          const wanted = set[3]!.toLowerCase() as Consistency;
          if (!CONSISTENCIES.includes(wanted))
            return concat([
              errorResponse(
                '22023',
                `synod.consistency_model must be one of ${CONSISTENCIES.join(', ')}`,
              ),
              readyForQuery(status()),
            ]);
          session.consistency = wanted;
          return concat([commandComplete('SET'), readyForQuery(status())]);
        }
        if (/^\s*show\s+synod\.consistency_model\s*;?\s*$/i.test(sql))
          return concat([
            rowDescription([
              {
                name: 'synod.consistency_model',
                tableID: 0,
                columnID: 0,
                dataTypeID: 25,
                dataTypeSize: -1,
                dataTypeModifier: -1,
                format: 'text',
              },
            ]),
            dataRow([session.consistency]),
            commandComplete('SHOW'),
            readyForQuery(status()),
          ]);
      }
      if (where.kind === 'replicate') {
        if (session.inTransaction)
          return concat([
            errorResponse(
              '0A000',
              'a write of a replicated table cannot run inside a transaction block: each one is its own log entry',
            ),
            readyForQuery('E'),
          ]);
        const answer = await session.client.write({ op: 'sql', sql, params: [] });
        const result = answer.result as { command: string; rowCount: number };
        return concat([
          commandComplete(tag(result.command, result.rowCount)),
          readyForQuery(status()),
        ]);
      }
      if (where.kind === 'read' && where.replicated && session.consistency !== 'optimistic')
        await this.#barrier(session.consistency);
      const results = await db.query({ text: sql, rowMode: 'array' } as pg.QueryArrayConfig);
      if (where.kind === 'transaction') session.inTransaction = /^\s*(begin|start)/i.test(sql);
      const out: Uint8Array[] = [];
      for (const result of (Array.isArray(results)
        ? results
        : [results]) as pg.QueryArrayResult[]) {
        if (result.fields.length > 0) {
          out.push(rowDescription(result.fields));
          for (const row of result.rows) out.push(dataRow(row as (string | null)[]));
        }
        out.push(commandComplete(tag(result.command, result.rowCount)));
      }
      out.push(readyForQuery(status()));
      return concat(out);
    } catch (error) {
      return concat([this.#error(error), readyForQuery(session.inTransaction ? 'E' : 'I')]);
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

  #error(error: unknown): Uint8Array {
    if (error instanceof pg.DatabaseError)
      return errorResponse(
        error.code ?? 'XX000',
        error.message,
        error.position === undefined ? undefined : Number(error.position),
      );
    if (error instanceof SynodError) {
      // The node's message for a failed SQL write starts with "ERROR <SQLSTATE>: ".
      const sql = /ERROR ([0-9A-Z]{5}): (.*)$/s.exec(error.message);
      if (sql !== null) return errorResponse(sql[1]!, sql[2]!);
      // No quorum, no leader: the group cannot take the write now (SQLSTATE 57P03 cannot_connect_now).
      return errorResponse('57P03', error.message);
    }
    return errorResponse('XX000', error instanceof Error ? error.message : String(error));
  }
}
