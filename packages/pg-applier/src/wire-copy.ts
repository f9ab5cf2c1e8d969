// COPY over the SQL front end's connections (wire.ts): FROM STDIN collects the client's rows,
// TO STDOUT streams this node's rows to the client. The front end decides where the rows go.
import type { SynodClient } from '@synod/client';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { copyIn } from './applier.js';
import type { CopyInfo } from './classify.js';
import { SqlError } from './errors.js';
import { errorMessage } from './wire-errors.js';
import {
  commandComplete,
  concat,
  consumed,
  message,
  Reader,
  readyForQuery,
} from './wire-messages.js';
import { type TransactionState, transactionStatus } from './wire-transaction.js';

/** What of a client's session COPY uses (wire-session.ts's Session has it). */
export interface CopySession {
  /** `replicate`: the group whose log the rows go through (undefined: this node's table). */
  copyIn: { readonly rows: CopyIn; readonly replicate: string | undefined } | undefined;
  readonly client: (group: string) => Pick<SynodClient, 'write'>;
  readonly transaction: TransactionState;
}

/** CopyInResponse / CopyOutResponse: the overall format and one format code per column. */
function copyResponse(type: 'G' | 'H', binary: boolean, columns: number): Uint8Array {
  const body = new Uint8Array(3 + 2 * columns);
  const view = new DataView(body.buffer);
  view.setInt8(0, binary ? 1 : 0);
  view.setInt16(1, columns);
  for (let i = 0; i < columns; i++) view.setInt16(3 + 2 * i, binary ? 1 : 0);
  return message(type, body);
}

/**
 * How many columns a COPY moves: its column list, else its table's columns as this node's
 * database has them; 0 for COPY (query) TO STDOUT, whose columns are known only once it runs
 * (clients take the count from the rows; psql and libpq do not use it).
 */
export async function copyColumns(db: pg.Client, copy: CopyInfo): Promise<number> {
  if (copy.columns !== undefined) return copy.columns.length;
  if (copy.table === undefined) return 0;
  const [schema, name] = copy.table.includes('.')
    ? copy.table.split('.', 2)
    : [undefined, copy.table];
  const result = await db.query<{ columns: number }>(
    `SELECT count(*)::int AS columns FROM pg_attribute
      WHERE attrelid = to_regclass(CASE WHEN $1::text IS NULL THEN quote_ident($2)
                                        ELSE quote_ident($1) || '.' || quote_ident($2) END)
        AND attnum > 0 AND NOT attisdropped`,
    [schema ?? null, name],
  );
  return result.rows[0]?.columns ?? 0;
}

/**
 * A COPY ... FROM STDIN in progress on one connection: the client's CopyData, kept until its
 * CopyDone (a replicated COPY larger than a log entry is refused when it is sent).
 */
export class CopyIn {
  readonly sql: string;
  readonly #chunks: Uint8Array[] = [];

  constructor(sql: string) {
    this.sql = sql;
  }

  /** What tells the client to send its rows. */
  static response(copy: CopyInfo, columns: number): Uint8Array {
    return copyResponse('G', copy.binary, columns);
  }

  /** A CopyData message's rows. */
  add(data: Uint8Array): void {
    // pg-gateway may reuse the buffer a message arrived in: keep a copy.
    this.#chunks.push(data.slice(5));
  }

  /** Every row received, as one buffer. */
  rows(): Uint8Array {
    return concat(this.#chunks);
  }

  /** The rows as text: replicated COPY is text or csv, and must be valid UTF-8. */
  text(): string {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.rows());
    } catch {
      throw new SqlError('22021', 'COPY data is not valid UTF-8');
    }
  }

  /** CopyFail: the client gave up; PostgreSQL reports it as query_canceled. */
  static failure(data: Uint8Array): SqlError {
    return new SqlError('57014', `COPY from stdin failed: ${new Reader(data, 5).cstring()}`);
  }
}

/**
 * Runs COPY ... TO STDOUT on this node's database and yields what the client gets:
 * CopyOutResponse, the rows in CopyData messages as PostgreSQL sends them, CopyDone and
 * the command tag. Rows stream through; they are not gathered first.
 */
export async function* copyOut(
  db: pg.Client,
  sql: string,
  copy: CopyInfo,
): AsyncGenerator<Uint8Array> {
  const columns = await copyColumns(db, copy);
  const stream = db.query(copyTo(sql));
  let started = false;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    if (!started) {
      started = true;
      yield copyResponse('H', copy.binary, columns);
    }
    yield message('d', chunk);
  }
  if (!started) yield copyResponse('H', copy.binary, columns);
  yield concat([message('c', new Uint8Array()), commandComplete(`COPY ${stream.rowCount}`)]);
}

/** COPY ... TO STDOUT: the rows stream to the client, then ReadyForQuery (or the error). */
export async function* copyOutMessages(
  sql: string,
  copy: CopyInfo,
  db: pg.Client,
  session: CopySession,
): AsyncGenerator<Uint8Array> {
  try {
    yield* copyOut(db, sql, copy);
  } catch (error) {
    yield errorMessage(error);
  }
  yield readyForQuery(transactionStatus(session));
}

/**
 * COPY ... FROM STDIN: CopyData until CopyDone, then the rows go through the log (a
 * replicated table: one log entry, so the COPY is all or nothing on every replica) or into
 * this node's database. CopyFail, or any other message, ends the COPY with an error.
 */
export async function copyInMessage(
  type: string,
  data: Uint8Array,
  db: pg.Client,
  session: CopySession,
): Promise<Uint8Array | Uint8Array[]> {
  const { rows, replicate } = session.copyIn!;
  if (type === 'd') {
    rows.add(data);
    return consumed();
  }
  // The backend ignores Flush and Sync while it receives COPY data.
  if (type === 'H' || type === 'S') return consumed();
  session.copyIn = undefined;
  const done = readyForQuery(transactionStatus(session));
  try {
    if (type === 'f') throw CopyIn.failure(data);
    if (type !== 'c')
      throw new SqlError(
        '08P01',
        `unexpected message ${JSON.stringify(type)} during COPY from stdin`,
      );
    let count: number;
    if (replicate !== undefined) {
      const answer = await session
        .client(replicate)
        .write({ op: 'sql', sql: rows.sql, copy: rows.text() });
      count = (answer.result as { rowCount: number }).rowCount;
    } else count = await copyIn(db, rows.sql, rows.rows());
    return concat([commandComplete(`COPY ${count}`), done]);
  } catch (error) {
    return concat([errorMessage(error), done]);
  }
}
