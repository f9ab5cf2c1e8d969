// What a node checks before a write of the SQL machine enters the log (and what it computes
// there once, for every replica: a table's definition and rows).
import { randomBytes } from 'node:crypto';
import type { Admission, Command } from '@synod/protocol';
import { SqlError } from './errors.js';
import {
  assertDefinition,
  assertTableName,
  readRowsInParts,
  tableDefinition,
  tableKey,
} from './replicated-tables.js';
import { asAdmin } from './roles.js';
import {
  entryContent,
  MAX_REPLICATED_ROWS_BYTES,
  refusedBy,
  sqlCommand,
  writeProblem,
} from './sql-commands.js';
import { userCommand } from './sql-users.js';
import { stageCommand } from './staged-rows.js';
import { txnCommand, txnStatementProblem } from './transaction-entry.js';

export type { Admission } from '@synod/protocol';

export interface AdmissionContext {
  /** The replicated tables as this node has applied them. */
  readonly replicated: Iterable<string>;
  /** This node's database as its superuser: definitions and rows are read there. */
  readonly adminUrl: string;
  /** Puts a write of the node's own in the log (SqlMachine.logWrite). */
  readonly logWrite:
    | ((command: Command, clientId: string, seq: number) => Promise<void>)
    | undefined;
  /** Another group on this database that replicates the table, if one does. */
  readonly replicatedElsewhere?: (table: string) => string | undefined;
}

/**
 * A write of the SQL machine, checked where a node takes it: undefined lets it in as it is,
 * `refused` says why not, `command` lets in the command every replica needs.
 */
export function admitCommand(
  command: Command,
  context: AdmissionContext,
): Admission | undefined | Promise<Admission> {
  if (command.op === 'paxos') return undefined; // seed 001's registers need no table
  if (command.op === 'replicate') return admitReplicate(command, context);
  if (command.op === 'verify') return { command: { op: 'verify' } };
  try {
    if (command.op === 'txn') {
      const txn = txnCommand(command);
      for (const [i, statement] of txn.statements.entries()) {
        const problem = txnStatementProblem(statement.sql, context.replicated);
        if (problem !== undefined)
          throw new SqlError(problem.sqlState, `statement ${i + 1}: ${problem.message}`);
      }
      return { command: txn };
    }
    if (command.op === 'stage')
      return { command: stageCommand(command, MAX_REPLICATED_ROWS_BYTES) };
    if (command.op === 'sqluser') return { command: userCommand(command) };
  } catch (error) {
    return refusedBy(error);
  }
  if (command.op !== 'sql')
    return {
      refused: `unknown write operation ${JSON.stringify(command.op)}; the sql machine takes "sql", "txn", "replicate", "stage", "sqluser" and "verify"`,
    };
  const parsed = sqlCommand(command);
  if (typeof parsed === 'string') return { refused: parsed };
  const problem = writeProblem(parsed, context.replicated);
  return problem === undefined
    ? undefined
    : { refused: problem.message, sqlState: problem.sqlState };
}

/**
 * `{"op":"replicate","table":T}` enters the log with T's definition, read once from the
 * database of the node that takes the write, so a replica without T creates it alike, and
 * with its rows (in parts first when they are more than one entry carries: staged-rows.ts).
 * The leader that node forwards it to checks the definition instead (it may lack T itself).
 */
async function admitReplicate(command: Command, context: AdmissionContext): Promise<Admission> {
  const { table, definition } = command;
  try {
    assertTableName(table);
    const owner = context.replicatedElsewhere?.(table);
    if (owner !== undefined)
      throw new SqlError(
        '0A000',
        `"${tableKey(table)}" is replicated by group ${owner} already: a table belongs to one group`,
      );
    if (definition !== undefined) {
      assertDefinition(table, definition);
      const content = entryContent(command);
      return { command: { op: 'replicate', table: tableKey(table), definition, ...content } };
    }
    // As the admin: the table may be one a client cannot see (made by hand through --pg, in
    // a schema of its own). Fixed catalog queries and one SELECT of a checked name.
    const read = await asAdmin(context.adminUrl, async (admin) => ({
      definition: await tableDefinition(admin, table),
      ...(await readRowsInParts(admin, table, MAX_REPLICATED_ROWS_BYTES)),
    }));
    const key = tableKey(table);
    const replicate = { op: 'replicate', table: key, definition: read.definition };
    if (read.parts.length === 1)
      return { command: { ...replicate, columns: read.columns, rows: read.parts[0]! } };
    const logWrite = context.logWrite;
    if (logWrite === undefined)
      throw new SqlError('54000', `the rows of "${key}" are more than one log entry carries`);
    const id = randomBytes(12).toString('base64url');
    for (const [part, rows] of read.parts.entries())
      await logWrite({ op: 'stage', id, part, rows }, `stage-${id}`, part + 1);
    const staged = { id, parts: read.parts.length };
    return { command: { ...replicate, columns: read.columns, staged } };
  } catch (error) {
    return refusedBy(error);
  }
}
