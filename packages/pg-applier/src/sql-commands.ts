// What the SQL machine's commands carry, checked: the same checks where a node admits a write
// and where every replica applies its entry, and how an applied write's outcome is told.
import type { Command, PlainData } from '@synod/protocol';
import { SqlError } from './errors.js';
import { route } from './guard.js';
import type { TableContent } from './replicated-tables.js';
import type { SqlWrite, WriteOutcome } from './sql-outcomes.js';
import { MAX_STAGE_BYTES, stageCommand, stagedRows, stageStatement } from './staged-rows.js';
import { txnCommand, txnStatementProblem } from './transaction-entry.js';

/** What a write or read command of the SQL machine carries. */
export interface SqlCommand {
  readonly sql: string;
  readonly params: readonly unknown[];
  /** COPY ... FROM STDIN's rows (text or csv). */
  readonly copy?: string;
}

export function sqlCommand(command: Command): SqlCommand | string {
  const sql = command.sql;
  if (typeof sql !== 'string' || sql.trim() === '') return `${command.op} needs a string "sql"`;
  const params = command.params ?? [];
  if (!Array.isArray(params)) return '"params" must be an array';
  const copy = command.copy;
  if (copy !== undefined && typeof copy !== 'string') return '"copy" must be a string';
  return copy === undefined ? { sql, params } : { sql, params, copy };
}

/** Why something was refused, as a client and every replica are told it. */
export interface Problem {
  readonly sqlState: string;
  readonly message: string;
}

/** An error as a Problem: a SqlError keeps its SQLSTATE; anything else is `fallback`'s. */
export function problemOf(error: unknown, fallback = '22023'): Problem {
  return error instanceof SqlError
    ? { sqlState: error.sqlState, message: error.message }
    : { sqlState: fallback, message: error instanceof Error ? error.message : String(error) };
}

/** A refused admission: its message and its SQLSTATE, typed (the client gets both). */
export function refusedBy(error: unknown): { refused: string; sqlState: string } {
  const problem = problemOf(error);
  return { refused: problem.message, sqlState: problem.sqlState };
}

/** Row values as plain data: dates as ISO text, big numbers as text, bytes as bytes. */
export function plain(value: unknown): PlainData {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value as PlainData;
}

export function outcomeResult(
  outcome: WriteOutcome,
):
  | { readonly ok: true; readonly result: PlainData }
  | { readonly ok: false; readonly message: string; readonly sqlState: string } {
  return outcome.ok
    ? {
        ok: true,
        result: {
          command: outcome.command,
          rowCount: outcome.rowCount,
          rows: plain(outcome.rows),
          ...(outcome.fields === undefined ? {} : { fields: plain(outcome.fields) }),
        },
      }
    : { ok: false, message: outcome.message, sqlState: outcome.sqlState };
}

/** The most row data (JSON) a replicate entry carries inline, and a stage write in one part. */
export const MAX_REPLICATED_ROWS_BYTES = MAX_STAGE_BYTES;

/** A replicate entry's rows: inline, or the stage that holds them (a forwarded write, or the log's). */
export function entryContent(command: Command): TableContent {
  if (command.staged === undefined) return tableRows(command.columns, command.rows);
  const { columns } = tableRows(command.columns, '[]');
  return { columns, staged: stagedRows(command.staged) };
}

/** Checks the rows a replicate entry carries (a forwarded write, or one from the log). */
function tableRows(columns: unknown, rows: unknown): { columns: string[]; rows: string } {
  if (!Array.isArray(columns) || !columns.every((c) => typeof c === 'string'))
    throw new SqlError('22023', 'a replicate entry\'s "columns" must be a list of column names');
  if (typeof rows !== 'string' || rows.length > MAX_REPLICATED_ROWS_BYTES)
    throw new SqlError('22023', 'a replicate entry\'s "rows" must be JSON text of its rows');
  let parsed: unknown;
  try {
    parsed = JSON.parse(rows);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed))
    throw new SqlError('22023', 'a replicate entry\'s "rows" must be a JSON array');
  return { columns: columns as string[], rows };
}

/**
 * Why `command` is no write of the `replicated` tables, if it is not: its SQLSTATE and message
 * (the outcome every replica gives an entry that should not be in the log, and what the node
 * that takes such a write answers). The same check at both places: a node admits
 * a write, and every replica checks its entry again before it applies it.
 */
export function writeProblem(
  command: SqlCommand,
  replicated: Iterable<string>,
): Problem | undefined {
  let where: ReturnType<typeof route>;
  try {
    where = route(command.sql, { replicated });
  } catch (error) {
    return problemOf(error, '42601');
  }
  const plain = (sqlState: string, message: string): Problem => ({ sqlState, message });
  if (where.kind !== 'replicate')
    return plain(
      '42501',
      `not a write of a replicated table (${[...replicated].join(', ') || 'none yet'}); send it as a read ({"op":"query"}) to run it on one node`,
    );
  if ((where.copy !== undefined) !== (command.copy !== undefined))
    return plain(
      '22023',
      where.copy === undefined
        ? '"copy" carries the rows of a COPY ... FROM STDIN, and this is not one'
        : 'COPY ... FROM STDIN needs its rows, in "copy"',
    );
  return undefined;
}

/**
 * A `txn` entry as a replica applies it: its statements, each checked again with the tables
 * replicated as of its slot, as a sql write is; refused alike everywhere otherwise.
 */
export function txnWrite(
  command: Command,
  replicated: Iterable<string>,
): Pick<SqlWrite, 'sql' | 'txn' | 'refused'> {
  try {
    const { statements } = txnCommand(command);
    for (const [i, statement] of statements.entries()) {
      const problem = txnStatementProblem(statement.sql, replicated);
      if (problem !== undefined)
        return {
          sql: '',
          refused: {
            sqlState: problem.sqlState,
            message: `statement ${i + 1}: ${problem.message}`,
          },
        };
    }
    return { sql: '', txn: statements };
  } catch (error) {
    return { sql: '', refused: problemOf(error) };
  }
}

/** A `stage` entry (staged-rows.ts) as a replica applies it at `slot`. */
export function stageWrite(
  command: Command,
  group: string,
  slot: number,
): Pick<SqlWrite, 'sql' | 'refused'> {
  try {
    return { sql: stageStatement(group, slot, stageCommand(command, MAX_REPLICATED_ROWS_BYTES)) };
  } catch (error) {
    return { sql: '', refused: problemOf(error) };
  }
}
