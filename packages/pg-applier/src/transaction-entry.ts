import { createHash } from 'node:crypto';
import type { Command } from '@synod/protocol';
import { classify, isCatalogTable, SIDE_EFFECT_FUNCTION } from './classify.js';
import { SqlError } from './errors.js';
import { tableKey } from './replicated-tables.js';

/**
 * A transaction on replicated tables is one log entry (`{"op":"txn","statements":[...]}`):
 * the statements the client ran, in order, each with the digest of the result the client was
 * given. The front end ran them on its own node's database to answer the client
 * (wire-transaction.ts); every replica runs them again at the entry's slot, inside one
 * savepoint, and compares: all equal, it keeps them (COMMIT); any different (another write
 * got in between), it rolls them back, and the outcome is 40001 serialization_failure. Every
 * replica has the same state at the slot, so every replica decides alike.
 */
export type TxnStatement = {
  readonly sql: string;
  /** Parameters in PostgreSQL's text format (null: SQL NULL). */
  readonly params: readonly (string | null)[];
  /** resultDigest() of what the client was given, or errorDigest() of its error. */
  readonly expect: string;
};

/** One statement's result as the comparison sees it: values in PostgreSQL's text format. */
export interface ComparedResult {
  readonly command: string | null;
  readonly rowCount: number | null;
  readonly rows: readonly (readonly unknown[])[];
}

/**
 * Equal for equal results. Rows are compared as a multiset (sorted), not in the order they
 * came: replicas hold the same rows in different physical orders, and a SELECT without a
 * total ORDER BY may return them in any.
 */
export function resultDigest(result: ComparedResult): string {
  const rows = result.rows.map((row) => JSON.stringify(row)).sort();
  return createHash('sha256')
    .update(JSON.stringify([result.command, result.rowCount ?? 0, rows]))
    .digest('base64url');
}

/** What a statement that failed is compared by: its SQLSTATE. */
export const errorDigest = (sqlState: string): string => `error:${sqlState}`;

/** The most statements one transaction entry carries. */
export const MAX_TXN_STATEMENTS = 10_000;

/** Checks a `txn` write (from a client, a forwarding node, or the log). */
export function txnCommand(command: Command): { op: 'txn'; statements: TxnStatement[] } {
  const list = command.statements;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_TXN_STATEMENTS)
    throw new SqlError(
      '22023',
      `a txn write's "statements" is a list of 1 to ${MAX_TXN_STATEMENTS} {"sql","params","expect"}`,
    );
  const statements = list.map((item, i): TxnStatement => {
    const s = item as Partial<Record<'sql' | 'params' | 'expect', unknown>> | null;
    const params = s?.params ?? [];
    if (
      typeof s !== 'object' ||
      s === null ||
      typeof s.sql !== 'string' ||
      typeof s.expect !== 'string' ||
      !Array.isArray(params) ||
      !params.every((p) => p === null || typeof p === 'string')
    )
      throw new SqlError(
        '22023',
        `statement ${i + 1} of a txn write is not {"sql":text,"params":[text or null],"expect":digest}`,
      );
    return { sql: s.sql, params: params as (string | null)[], expect: s.expect };
  });
  return { op: 'txn', statements };
}

/**
 * Why a statement may not be part of a transaction on replicated tables, or undefined: it may.
 * The front end checks each statement before it runs it, and every replica checks the
 * entry's statements again before it runs them (a forged entry is refused alike everywhere).
 * Allowed: reads and writes of replicated tables (and of PostgreSQL's catalogs, or of no
 * table), locking reads among them, and savepoints. Not: other tables (they are this node's
 * alone), volatile functions (each replica would compute another value, and the comparison
 * would always fail), DDL, SET, COPY, nested transaction control.
 */
export function txnStatementProblem(
  sql: string,
  replicated: Iterable<string>,
): { sqlState: string; message: string } | undefined {
  const statements = classify(sql);
  if (statements.length !== 1)
    return { sqlState: '0A000', message: 'a transaction statement is one statement' };
  const s = statements[0]!;
  if (s.kind === 'transaction') {
    const kind = s.transaction?.kind;
    if (kind !== 'savepoint' && kind !== 'release' && kind !== 'rollback_to')
      return {
        sqlState: '25001',
        message: `${kind ?? 'this'} is not allowed inside a transaction on replicated tables`,
      };
    if (s.transaction?.savepoint?.toLowerCase().startsWith('synod_') === true)
      return { sqlState: '42939', message: 'savepoint names starting with synod_ are reserved' };
    return undefined;
  }
  if (s.kind !== 'read' && s.kind !== 'write')
    return {
      sqlState: '0A000',
      message: `${s.node.replace(/Stmt$/, '')} cannot run inside a transaction on replicated tables: it is this node's alone, or not replicated`,
    };
  if (s.copy !== undefined)
    return {
      sqlState: '0A000',
      message: 'COPY cannot run inside a transaction on replicated tables',
    };
  const mine = new Set([...replicated].map(tableKey));
  const others = s.tables.filter((t) => !mine.has(tableKey(t)) && !isCatalogTable(t));
  if (others.length > 0)
    return {
      sqlState: '0A000',
      message: `a transaction on replicated tables cannot use ${others.map((t) => `"${t}"`).join(', ')}, which is not replicated: that table is this node's alone; use it in a transaction of its own`,
    };
  const acting = s.functions.filter((f) => SIDE_EFFECT_FUNCTION.test(f));
  if (acting.length > 0)
    return {
      sqlState: '0A000',
      message: `${acting.map((f) => `${f}()`).join(', ')} cannot run inside a transaction on replicated tables: it acts on the session or the server, not on rows`,
    };
  if (s.volatile.length > 0)
    return {
      sqlState: '0A000',
      message: `${s.volatile.map((f) => `${f}()`).join(', ')} in a transaction on replicated tables would give each replica another value; compute it in the client and send it as a literal or parameter`,
    };
  return undefined;
}
