import type { ClientWrite, Command } from '@synod/protocol';
import type { SqlWrite } from './applier.js';
import { beginWrite, decidedWrite, stepOf } from './global-txn.js';
import { replicateStatement, tableKey } from './replicated-tables.js';
import {
  entryContent,
  type Problem,
  problemOf,
  type SqlCommand,
  sqlCommand,
  stageWrite,
  txnWrite,
  writeProblem,
} from './sql-commands.js';
import { userCommand, userStatement } from './sql-users.js';
import { digestStatement } from './state-digest.js';
import { txnStatementProblem } from './transaction-entry.js';

/** What turning a batch's writes into statements reads and records. */
export interface LoggedWriteContext {
  readonly group: string;
  /** The role replicated tables are readable by. */
  readonly readers: string;
  /** The tables replicated as of this write's slot: a replicate entry adds its table. */
  readonly replicated: Set<string>;
  /** Tables a replicate entry in this batch hands to the apply role before it runs. */
  readonly handOvers: string[];
}

/**
 * The statement one logged write runs on every replica, checked again here with the tables
 * replicated as of its slot: an entry that is not a write of replicated tables (forged, or
 * admitted by a node that should not have) runs nowhere, and every replica gives it the same
 * refusal.
 */
export function loggedWrite(
  write: ClientWrite,
  slot: number,
  context: LoggedWriteContext,
): SqlWrite {
  const { group, replicated } = context;
  const who = { clientId: write.clientId, seq: write.seq };
  const op = write.command.op;
  // Transactions across groups (global-txn.ts): numbered, prepared, decided.
  if (op === 'txn' && write.command.ops !== undefined)
    return { ...beginWrite(write.command, group), ...who };
  if (op === 'txn_decided') return { ...decidedWrite(write.command, group), ...who };
  if (op === 'txn_prepare' || op === 'txn_outcome')
    return { ...stepWrite(write.command, context), ...who };
  if (op === 'txn') return { ...txnWrite(write.command, replicated), ...who };
  if (write.command.op === 'stage') return { ...stageWrite(write.command, group, slot), ...who };
  // The state at this slot, as every replica has it: compared among the nodes.
  if (write.command.op === 'verify')
    return { sql: digestStatement(group, [...replicated].sort()), ...who };
  const parsed = statementOf(write.command, context);
  if ('sqlState' in parsed) return { sql: '', ...who, refused: parsed };
  if (write.command.op === 'replicate') {
    const table = tableKey(String(write.command.table));
    replicated.add(table);
    context.handOvers.push(table);
  } else if (write.command.op !== 'sqluser') {
    const problem = writeProblem(parsed, replicated);
    if (problem !== undefined) {
      const { sqlState, message } = problem;
      return { sql: parsed.sql, ...who, refused: { sqlState, message } };
    }
  }
  return {
    sql: parsed.sql,
    params: parsed.params,
    ...(parsed.copy === undefined ? {} : { copy: parsed.copy }),
    ...who,
  };
}

/** The statement of a user, replicate or plain SQL write. */
function statementOf(command: Command, context: LoggedWriteContext): SqlCommand | Problem {
  if (command.op === 'sqluser') {
    try {
      return { sql: userStatement(context.group, userCommand(command)), params: [] };
    } catch (error) {
      return problemOf(error);
    }
  }
  if (command.op !== 'replicate') {
    const parsed = sqlCommand(command);
    return typeof parsed === 'string' ? { sqlState: '22023', message: parsed } : parsed;
  }
  const { table, definition, rows, staged } = command;
  if (
    typeof table !== 'string' ||
    !Array.isArray(definition) ||
    !definition.every((d) => typeof d === 'string')
  )
    return { sqlState: '22023', message: 'malformed replicate entry' };
  try {
    // Entries from before rows travelled with the definition carry none: nothing replaced.
    const content =
      rows === undefined && staged === undefined ? {} : { content: entryContent(command) };
    return {
      sql: replicateStatement(context.group, table, definition as string[], {
        readers: context.readers,
        ...content,
      }),
      params: [],
    };
  } catch (error) {
    return problemOf(error);
  }
}

/** A `txn_prepare` or `txn_outcome`, run alone in its slot; statements checked as of it. */
function stepWrite(command: Command, context: LoggedWriteContext): SqlWrite {
  const step = stepOf(command, context.group);
  if ('refused' in step) return { sql: '', refused: { sqlState: '22023', message: step.refused } };
  if (step.kind === 'prepare')
    for (const [i, statement] of step.statements.entries()) {
      const problem = txnStatementProblem(statement.sql, context.replicated);
      if (problem !== undefined)
        return { sql: '', step, invalid: `statement ${i + 1}: ${problem.message}` };
    }
  return { sql: '', step };
}
