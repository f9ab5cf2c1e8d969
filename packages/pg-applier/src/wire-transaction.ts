import type { SynodClient } from '@synod/client';
import { SynodError } from '@synod/client';
import pg from 'pg';
import { backendPid } from './backend-pid.js';
import { isCatalogTable, type StatementInfo } from './classify.js';
import { SqlError } from './errors.js';
import type { Route } from './guard.js';
import { TEXT_VALUES } from './sql-outcomes.js';
import { DETERMINISTIC_SESSION } from './state-digest.js';
import { withTotalOrder } from './total-order.js';
import {
  errorDigest,
  resultDigest,
  type TxnStatement,
  txnStatementProblem,
} from './transaction-entry.js';
import type { FrontEndGroup, FrontEndGroups } from './wire-groups.js';
import { tag } from './wire-messages.js';
import type { Result } from './wire-result.js';

/**
 * A client's transaction block, as the SQL front end keeps it (README: "Transactions"):
 * - `pending`: BEGIN was answered, nothing ran yet: the first statement that uses a table
 *   decides what the block is (SAVEPOINTs and SET TRANSACTION wait in `pre` until then);
 * - `local`: it uses this node's own tables: it runs on the session's database connection,
 *   as on a plain PostgreSQL, and may read replicated tables but not write them;
 * - `replicated`: it uses replicated tables: it runs on a tentative connection and commits
 *   through the log as one entry (ReplicatedTransaction), and may not use local tables.
 * `failed`: PostgreSQL's aborted state (25P02 until ROLLBACK or ROLLBACK TO SAVEPOINT).
 */
export type TransactionState =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'pending';
      readonly begin: string;
      /** Savepoints and SET TRANSACTION, as classified, to run once the kind is known. */
      readonly pre: { readonly sql: string; readonly info: StatementInfo | undefined }[];
      failed: boolean;
    }
  | { readonly kind: 'local'; failed: boolean }
  | { readonly kind: 'replicated'; readonly tx: ReplicatedTransaction };

/** ReadyForQuery's transaction status: idle, in a block, or in a failed block. */
export function transactionStatus(session: {
  readonly transaction: TransactionState;
}): 'I' | 'T' | 'E' {
  const t = session.transaction;
  if (t.kind === 'none') return 'I';
  const failed = t.kind === 'replicated' ? t.tx.failed : t.failed;
  return failed ? 'E' : 'T';
}

/** An error reached the client: a transaction block it was in is now in the aborted state. */
export function transactionFailed(session: { readonly transaction: TransactionState }): void {
  const t = session.transaction;
  if (t.kind === 'replicated') t.tx.failed = true;
  else if (t.kind !== 'none') t.failed = true;
}

const aborted = (): SqlError =>
  new SqlError(
    '25P02',
    'current transaction is aborted, commands ignored until end of transaction block',
  );

/**
 * A transaction on replicated tables while the client builds it: each statement runs on a
 * tentative connection (as the apply role, REPEATABLE READ, under the settings every replica
 * applies with) so the client sees its results, and is recorded with the digest of what it
 * gave. COMMIT sends the record as one `txn` log entry, which every replica re-runs at its
 * slot and keeps only if every result is the same (transaction-entry.ts); the tentative
 * transaction itself is always rolled back. The log's writes win over it: if it holds rows
 * the applier needs, the node ends it, and the client gets 40001.
 */
export class ReplicatedTransaction {
  readonly #db: pg.Client;
  /**
   * The group of the first replicated table it used: it commits through this group's log
   * (alone, or as the coordinating group of a transaction across groups).
   */
  readonly group: string;
  /** Every statement, in order. */
  readonly statements: TxnStatement[] = [];
  /**
   * Each group's part (a node of several groups): the statements of its tables, with every
   * savepoint statement (each part is re-run alone, at its own slot) and the statements of no
   * group's table in the first group's part.
   */
  readonly parts = new Map<string, TxnStatement[]>();
  /** Savepoint statements so far: a group's part begins with them. */
  readonly #controls: TxnStatement[] = [];
  failed = false;
  /** Whether any statement wrote: a transaction that only read commits nothing. */
  wrote = false;

  private constructor(db: pg.Client, group: string) {
    this.#db = db;
    this.group = group;
  }

  /**
   * Opens the tentative transaction on a connection of its own: `kept`, the session's from
   * its last transaction (a login as the apply role costs a SCRAM exchange), or a new one.
   */
  static async begin(
    connectionString: string,
    group: string,
    kept?: pg.Client,
  ): Promise<ReplicatedTransaction> {
    let db = kept;
    if (db === undefined) {
      db = new pg.Client({
        connectionString,
        application_name: 'synod-txn',
        options: DETERMINISTIC_SESSION,
        types: TEXT_VALUES,
      });
      db.on('error', () => undefined);
      await db.connect();
    }
    try {
      await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    } catch (error) {
      await db.end().catch(() => undefined);
      if (kept !== undefined) return ReplicatedTransaction.begin(connectionString, group);
      throw error;
    }
    return new ReplicatedTransaction(db, group);
  }

  /**
   * Runs one statement the client sent, if a transaction on replicated tables may hold it,
   * and records it. `savepoint`: SAVEPOINT, RELEASE or ROLLBACK TO.
   */
  async run(
    sql: string,
    params: readonly (string | null)[],
    replicated: Iterable<string>,
    info: StatementInfo | undefined,
    group = this.group,
  ): Promise<Result[]> {
    const rollbackTo = info?.transaction?.kind === 'rollback_to';
    if (this.failed && !rollbackTo) throw aborted();
    const problem = txnStatementProblem(sql, replicated);
    if (problem !== undefined) {
      this.failed = true;
      throw new SqlError(problem.sqlState, problem.message);
    }
    let result: pg.QueryArrayResult;
    try {
      result = await this.#db.query({
        text: withTotalOrder(sql),
        values: [...params],
        rowMode: 'array',
      } as pg.QueryArrayConfig);
    } catch (error) {
      this.failed = true;
      // 57P01: the node ended this tentative session, which held rows the log's writes needed.
      if (!(error instanceof pg.DatabaseError) || error.code === '57P01')
        throw new SqlError(
          '40001',
          "could not serialize access: the log's writes needed rows this transaction held, and it was ended; retry the transaction",
        );
      // A deadlock with another client's tentative transaction here is this node's alone: not
      // recorded (the replicas would not meet it), and told as the conflict it is.
      if (error.code === '40P01')
        throw new SqlError(
          '40001',
          'could not serialize access: deadlock with another transaction on this node; retry the transaction',
        );
      this.#record({ sql, params, expect: errorDigest(error.code ?? 'XX000') }, info, group);
      throw error;
    }
    this.failed = false;
    if (info?.kind === 'write' && info.writes.length > 0) this.wrote = true;
    this.#record({ sql, params, expect: resultDigest(result) }, info, group);
    return [
      {
        fields: result.fields,
        rows: result.rows as (string | null)[][],
        tag: tag(result.command, result.rowCount),
      },
    ];
  }

  #record(statement: TxnStatement, info: StatementInfo | undefined, group: string): void {
    this.statements.push(statement);
    const part = (name: string): TxnStatement[] => {
      const list = this.parts.get(name) ?? [...this.#controls];
      this.parts.set(name, list);
      return list;
    };
    part(this.group);
    if (info?.kind === 'transaction') {
      this.#controls.push(statement);
      for (const list of this.parts.values()) list.push(statement);
    } else part(group).push(statement);
  }

  /** The tentative connection's backend (a CancelRequest cancels what it runs). */
  get backendPid(): number | undefined {
    return backendPid(this.#db);
  }

  /** Ends the tentative transaction: nothing of it stays on this node's database by itself. */
  async end(): Promise<pg.Client | undefined> {
    try {
      await this.#db.query('ROLLBACK');
      return this.#db;
    } catch {
      await this.#db.end().catch(() => undefined);
      return undefined;
    }
  }
}

/** What of a client's session its transaction block uses (wire-session.ts's Session has it). */
export interface TransactionSession {
  transaction: TransactionState;
  tentative: pg.Client | undefined;
  readonly client: (group: string) => Pick<SynodClient, 'write'>;
}

export interface TransactionContext {
  readonly sql: string;
  readonly params: readonly (string | null)[];
  /** The statement, classified (one: a query of several is run one statement at a time). */
  readonly info: StatementInfo | undefined;
  readonly where: Route;
  readonly db: pg.Client;
  readonly session: TransactionSession;
  /** The groups this node serves: each statement of a transaction keeps to one's tables. */
  readonly groups: FrontEndGroups;
  /** The apply role's connection string (SqlMachine.transactionConnectionString). */
  readonly connectionString: string | undefined;
  /** Waits for the session's consistency model in these groups before a transaction reads. */
  readonly barrier: (groups: readonly FrontEndGroup[]) => Promise<void>;
}

const done = (command: string): Result[] => [{ fields: [], rows: [], tag: command }];

/** Whether a statement uses tables of this node's own (not replicated, not the catalogs). */
function usesLocalTables(where: Route): boolean {
  if (where.kind === 'local') return true;
  if (where.kind !== 'read' || where.replicated) return false;
  return where.tables.some((t) => !isCatalogTable(t));
}

const touchesReplicated = (where: Route): boolean =>
  where.kind === 'replicate' || (where.kind === 'read' && where.replicated);

/**
 * A statement seen while the session is in a transaction block, or one that starts or ends
 * one: its results, or undefined when it runs as outside a block (on the session's own
 * connection, which is then in the block itself, for a local transaction).
 */
export async function transactionStatement(c: TransactionContext): Promise<Result[] | undefined> {
  const { session, info, where } = c;
  const t = session.transaction;
  const control = info?.kind === 'transaction' ? info.transaction?.kind : undefined;
  if (control === 'begin') {
    if (t.kind !== 'none') return done('BEGIN'); // PostgreSQL warns and goes on
    session.transaction = { kind: 'pending', begin: c.sql, pre: [], failed: false };
    return done('BEGIN');
  }
  if (control === 'commit' || control === 'rollback') return end(c, control);
  if (t.kind === 'none') return undefined;
  if (t.kind === 'pending') {
    if (t.failed && control !== 'rollback_to') throw aborted();
    if (control === 'rollback_to') t.failed = false;
    if (control !== undefined || (info?.kind === 'session' && info.setting === 'transaction')) {
      t.pre.push({ sql: c.sql, info });
      return done(
        control === 'savepoint'
          ? 'SAVEPOINT'
          : control === 'release'
            ? 'RELEASE'
            : control === 'rollback_to'
              ? 'ROLLBACK'
              : 'SET',
      );
    }
    if (info?.kind === 'session' && info.setting?.startsWith('synod.') === true) return undefined;
    if (where.kind === 'replicate' && c.connectionString === undefined)
      throw new SqlError(
        '0A000',
        'this front end has no connection for transactions on replicated tables: write them outside a transaction block',
      );
    if (touchesReplicated(where) && c.connectionString !== undefined) {
      const group = statementGroup(c) ?? c.groups.default.group;
      // Every group's: a later statement may use another group's tables (its snapshot is
      // taken now, at the first statement).
      await c.barrier(c.groups.all);
      const kept = session.tentative;
      session.tentative = undefined;
      const tx = await ReplicatedTransaction.begin(c.connectionString, group, kept);
      session.transaction = { kind: 'replicated', tx };
      // SET TRANSACTION is dropped: every transaction on replicated tables is serializable.
      for (const { sql, info: pre } of t.pre)
        if (pre?.kind !== 'session') await tx.run(sql, [], c.groups.replicated, pre);
      return tx.run(c.sql, c.params, c.groups.replicated, info, group);
    }
    if (usesLocalTables(where) || info?.kind === 'session') {
      session.transaction = { kind: 'local', failed: false };
      await c.db.query(t.begin);
      for (const { sql } of t.pre) await c.db.query(sql);
    }
    return undefined;
  }
  if (t.kind === 'local') {
    if (where.kind === 'replicate') {
      // PostgreSQL's own aborted state, with this error, on the block's connection.
      const message =
        "a write of a replicated table cannot join a transaction that used this node's own tables: commit or roll back first, and write it in a transaction of its own";
      await c.db
        .query(
          `DO $synod$ BEGIN RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = ${pg.escapeLiteral(message)}; END $synod$`,
        )
        .catch(() => undefined);
      t.failed = true;
      throw new SqlError('0A000', message);
    }
    return undefined;
  }
  // A transaction on replicated tables.
  if (info?.kind === 'session') {
    if (info.setting === 'transaction') return done('SET'); // every such transaction is serializable
    if (info.setting === 'synod.consistency_model') return undefined;
  }
  let group: string | undefined;
  try {
    group = statementGroup(c);
  } catch (error) {
    t.tx.failed = true;
    throw error;
  }
  return t.tx.run(c.sql, c.params, c.groups.replicated, info, group ?? t.tx.group);
}

/**
 * The group whose replicated tables a statement uses (undefined: none); 0A000 when it uses
 * several groups' (each group re-runs its part at its own slot, where another group's tables
 * are at no fixed point). A transaction may use several groups, one per statement.
 */
function statementGroup(c: TransactionContext): string | undefined {
  return c.groups.single('tables' in c.where ? c.where.tables : [], 'a statement')?.group;
}

/** COMMIT or ROLLBACK: the block ends, whatever happens. */
async function end(
  c: TransactionContext,
  control: 'commit' | 'rollback',
): Promise<Result[] | undefined> {
  const session = c.session;
  const t = session.transaction;
  session.transaction = { kind: 'none' };
  if (t.kind === 'none') return undefined; // PostgreSQL warns: no transaction in progress
  if (t.kind === 'local') return undefined; // runs on the block's connection
  if (t.kind === 'pending') return done(control === 'commit' && !t.failed ? 'COMMIT' : 'ROLLBACK');
  const tx = t.tx;
  // Ended first: its row locks would hold up its own entry's apply on this node.
  session.tentative = await tx.end();
  if (control === 'rollback' || tx.failed) return done('ROLLBACK');
  if (!tx.wrote) return done('COMMIT');
  try {
    if (tx.parts.size <= 1)
      await session.client(tx.group).write({ op: 'txn', statements: tx.statements });
    else await commitAcrossGroups(session, tx);
  } catch (error) {
    if (error instanceof SynodError && error.limitBytes !== undefined)
      throw new SqlError(
        '54000',
        `the transaction is more than one log entry carries (${error.reason}): nothing of it was applied; split it into smaller transactions`,
      );
    throw error;
  }
  return done('COMMIT');
}

/**
 * A transaction that used several groups' tables: through Paxos Commit, coordinated by its
 * first group (the node's commit node): each group prepares its part at its slot, and it
 * commits in all of them or in none. Aborted (a part gave other results at its slot, or a
 * group could not take part in time): 40001, as a transaction of one group that lost a race.
 */
async function commitAcrossGroups(session: TransactionSession, tx: ReplicatedTransaction) {
  const ops = [...tx.parts].map(([group, statements]) => ({ group, op: 'sql', statements }));
  const answer = await session.client(tx.group).write({ op: 'txn', ops });
  const result = answer.result as { txid?: string; committed?: boolean } | null;
  if (result?.committed !== true)
    throw new SqlError(
      '40001',
      `could not serialize access: transaction ${result?.txid ?? ''} across groups ${[...tx.parts.keys()].join(', ')} was aborted: a group's part gave other results at its slot than it gave the client, or the group could not take part in time; nothing of it was applied; retry the transaction`,
    );
}
