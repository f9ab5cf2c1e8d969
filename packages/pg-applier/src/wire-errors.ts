import { SynodError } from '@synod/client';
import pg from 'pg';
import { SqlError } from './errors.js';
import { errorResponse } from './wire-messages.js';

/**
 * Why a session may not write a replicated table (or synod's bookkeeping) along some path,
 * and what to do instead: PostgreSQL's own 42501 comes with it.
 */
const WRITE_AROUND_THE_LOG =
  "a replicated table is written through the group's log only, by a plain INSERT, UPDATE, DELETE, MERGE, TRUNCATE or COPY statement of this session; a function, procedure, DO block, trigger, rule or view cannot write it, and synod.* is the node's own";

/**
 * What the SQL front end tells a client that failed, as PostgreSQL's ErrorResponse: our own
 * SQL errors and PostgreSQL's keep their SQLSTATE; a failed replicated write carries its
 * SQLSTATE in the node's message; no quorum or no leader is 57P03 (cannot_connect_now).
 */
export function errorMessage(error: unknown): Uint8Array {
  if (error instanceof SqlError)
    return errorResponse(error.sqlState, error.message, (error as { position?: number }).position);
  if (error instanceof pg.DatabaseError)
    return errorResponse(
      error.code ?? 'XX000',
      error.message,
      error.position === undefined ? undefined : Number(error.position),
      error.code === '42501' && /permission denied for (table|schema)/.test(error.message)
        ? WRITE_AROUND_THE_LOG
        : error.hint,
    );
  if (error instanceof SynodError) {
    // A failed SQL write or read: the node says its SQLSTATE, and PostgreSQL's message.
    if (error.sqlState !== undefined) return errorResponse(error.sqlState, error.reason);
    // A write larger than a log entry may carry (54000 program_limit_exceeded).
    if (error.limitBytes !== undefined)
      return errorResponse('54000', `${error.reason}; split it (a large COPY into several)`);
    // No quorum, no leader: the group cannot take the write now (SQLSTATE 57P03 cannot_connect_now).
    return errorResponse('57P03', error.message);
  }
  return errorResponse('XX000', error instanceof Error ? error.message : String(error));
}
