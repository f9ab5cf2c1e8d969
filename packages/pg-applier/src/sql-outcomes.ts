// What the applier is given and what it gives back: log entries' writes and their outcomes,
// values in PostgreSQL's text format.
import type { PlainData } from '@synod/protocol';
import type { QueryResult } from 'pg';
import type { TxnStatement } from './transaction-entry.js';

/** One client write of a log entry: a statement, its parameters, and who sent it. */
export interface SqlWrite {
  readonly sql: string;
  readonly params?: readonly unknown[];
  /** For COPY ... FROM STDIN: the rows, in the statement's format (text or csv). */
  readonly copy?: string;
  /** With clientId and seq, a retried write (same pair) is applied once: see PgApplier.apply. */
  readonly clientId?: string;
  readonly seq?: number;
  /**
   * Refused where it was checked again before applying (a log entry that is not a write of a
   * replicated table): nothing runs, and this is its outcome on every replica.
   */
  readonly refused?: { readonly sqlState: string; readonly message: string };
  /**
   * A transaction (transaction-entry.ts): its statements run in one savepoint and are kept
   * only if each gives the result the client was given; `sql` is unused.
   */
  readonly txn?: readonly TxnStatement[];
  /**
   * A step of a transaction across groups (global-txn.ts), run alone in its slot; `invalid`:
   * why its statements cannot run here (the vote is then aborted).
   */
  readonly step?: GlobalStep;
  readonly invalid?: string;
}

/**
 * A step of a transaction across groups (global-txn.ts) that runs alone, outside the applier's
 * batch: a group's prepare (its part's statements) or its outcome.
 */
export type GlobalStep =
  | {
      readonly kind: 'prepare';
      readonly txid: string;
      readonly meta: PlainData;
      readonly statements: readonly TxnStatement[];
    }
  | {
      readonly kind: 'finish';
      readonly txid: string;
      readonly outcome: 'committed' | 'aborted';
    };

/**
 * The outcome a write already has, when its client's session says it was applied: its first
 * outcome for the same seq, a 22023 for an older one; undefined for a write not applied yet.
 */
export function rememberedOutcome(
  write: Pick<SqlWrite, 'clientId' | 'seq'>,
  sessions: ReadonlyMap<string, { readonly seq: number; readonly outcome: WriteOutcome }>,
): WriteOutcome | undefined {
  const { clientId, seq } = write;
  if (clientId === undefined || seq === undefined) return undefined;
  const last = sessions.get(clientId);
  if (last === undefined || seq > last.seq) return undefined;
  return seq === last.seq
    ? last.outcome
    : {
        ok: false,
        sqlState: '22023',
        message: `seq ${seq} of ${clientId} is older than its last write (${last.seq})`,
      };
}

/** A committed log slot's writes (a batch), in the order they are to be applied. */
export interface SqlEntry {
  readonly slot: number;
  readonly writes: readonly SqlWrite[];
}

/**
 * What a write did: its command tag, row count and returned rows, or PostgreSQL's error.
 * The same on every replica: replicas start equal and apply the same statements in order.
 */
export type WriteOutcome =
  | {
      readonly ok: true;
      readonly command: string;
      readonly rowCount: number;
      /** Rows a write returned (RETURNING), every value in PostgreSQL's text format. */
      readonly rows: readonly Record<string, string | null>[];
      /** The returned columns, with their types, when there are any. */
      readonly fields?: readonly ResultField[];
    }
  | { readonly ok: false; readonly sqlState: string; readonly message: string };

/** A returned column as PostgreSQL describes it (what a RowDescription carries). */
export interface ResultField {
  readonly name: string;
  readonly tableID: number;
  readonly columnID: number;
  readonly dataTypeID: number;
  readonly dataTypeSize: number;
  readonly dataTypeModifier: number;
}

/**
 * pg's parsing of values switched off: values stay in PostgreSQL's text format. Writes'
 * returned values are kept so (text keeps every type exact in the outcome kept for retries),
 * and the wire front end hands results on so.
 */
export const TEXT_VALUES = { getTypeParser: () => (value: string) => value };

export function succeeded(result: QueryResult): WriteOutcome {
  const fields = result.fields.map((f) => ({
    name: f.name,
    tableID: f.tableID,
    columnID: f.columnID,
    dataTypeID: f.dataTypeID,
    dataTypeSize: f.dataTypeSize,
    dataTypeModifier: f.dataTypeModifier,
  }));
  return {
    ok: true,
    command: result.command,
    rowCount: result.rowCount ?? 0,
    rows: result.rows as Record<string, string | null>[],
    ...(fields.length === 0 ? {} : { fields }),
  };
}
