import type { Command, PlainData } from '@synod/protocol';
import { isNameList, isValidName } from '@synod/protocol';
import pg from 'pg';
import { SqlError } from './errors.js';
import { problemOf } from './sql-commands.js';
import type { GlobalStep, SqlWrite } from './sql-outcomes.js';
import { type TxnStatement, txnCommand, txnStatementProblem } from './transaction-entry.js';

/**
 * Transactions across groups on the SQL machine (Paxos Commit, with @synod/node's CommitNode
 * as coordinator and RMs). Four log entries:
 *
 * - `{"op":"txn","ops":[{"group":"north","op":"sql","statements":[...]}, ...]}` in the
 *   coordinating group's log (a client's, from the SQL front end): numbers the transaction
 *   (`synod.txn_numbers`), txid `<group>.<number>`. The leader adds the commit acceptors and
 *   the protocol. Each group's part is a transaction entry's statements (transaction-entry.ts).
 * - `txn_prepare` (an RM's, in each group's log, alone in its slot): the group's vote. Its
 *   statements run again at the slot and are compared with what the client was given; all
 *   equal, the PostgreSQL transaction is prepared (`PREPARE TRANSACTION`, gid `gidOf`) and the
 *   vote is `prepared`, else it is rolled back and the vote is `aborted`. Asked again, the
 *   first vote (`synod.txn_votes`): every leader of the group proposes the same vote at
 *   ballot 0.
 * - `txn_outcome` (alone in its slot): `COMMIT PREPARED` or `ROLLBACK PREPARED`.
 * - `txn_decided` (two-phase commit's coordinator, in the coordinating group's log): the first
 *   outcome logged wins.
 *
 * A prepared transaction holds its rows' locks until its outcome, which comes later in the
 * same log: a later write that needs them would wait for ever, so the node cancels it
 * (sql-machine.ts) and it fails alike on every replica (55P03). At most MAX_OPEN_PREPARED
 * transactions are prepared in one group at once; beyond, the vote is `aborted`.
 */

/** How many transactions across groups one group holds prepared at once. */
export const MAX_OPEN_PREPARED = 8;

/**
 * How many decided votes a group remembers (as the kv machine does). Older ones are forgotten,
 * and each coordinating group's highest forgotten number is kept (`synod.txn_floors`): a
 * prepare at or below it that the group has no vote for gets none (`vote: null`), so a late
 * request can never cast a second, different vote; the coordinator decides that instance by
 * phase 1.
 */
export const MAX_DECIDED_VOTES = 10_000;

/** PostgreSQL's max_prepared_transactions this node's embedded server gets: 8 per group, 32 groups. */
export const EMBEDDED_MAX_PREPARED = 256;

const MAX_GROUPS = 64;
const MAX_ACCEPTORS = 16;
const TXID = /^[A-Za-z0-9_-]{1,64}\.[1-9][0-9]{0,15}$/;

/** A transaction's id: `<coordinating group>.<number>`. */
export const isTxid = (value: unknown): value is string =>
  typeof value === 'string' && TXID.test(value);

/** A transaction's outcome. */
export const isOutcome = (value: unknown): value is 'committed' | 'aborted' =>
  value === 'committed' || value === 'aborted';

/** The gid of `txid`'s prepared transaction in `group` (PostgreSQL allows 200 bytes). */
export const gidOf = (group: string, txid: string): string => `synod:${group}:${txid}`;

/** One group's part of a `txn` across groups: its transaction statements. */
export function groupPart(ops: PlainData | undefined, group: string): TxnStatement[] {
  return partsOf(ops).get(group) ?? [];
}

/**
 * A `txn` write's `ops` by group, each group's statements in order (its `sql` ops'
 * statements, one after another). Throws SqlError 22023 for a malformed one.
 */
export function partsOf(ops: PlainData | undefined): Map<string, TxnStatement[]> {
  if (!Array.isArray(ops) || ops.length === 0)
    throw new SqlError(
      '22023',
      'a txn across groups needs "ops": one {"group","op":"sql","statements"} per group',
    );
  const byGroup = new Map<string, TxnStatement[]>();
  for (const [i, op] of (ops as PlainData[]).entries()) {
    const o = op as Record<string, PlainData> | null;
    if (o === null || typeof o !== 'object' || Array.isArray(o) || !isValidName(o.group))
      throw new SqlError(
        '22023',
        `txn ops[${i}] needs a "group": letters, digits, '-' and '_', at most 64`,
      );
    if (o.op !== 'sql')
      throw new SqlError(
        '22023',
        `txn ops[${i}]: a SQL group's part of a transaction is {"op":"sql","statements":[...]}`,
      );
    const { statements } = txnCommand({ op: 'txn', statements: o.statements ?? null });
    byGroup.set(o.group, [...(byGroup.get(o.group) ?? []), ...statements]);
  }
  if (byGroup.size > MAX_GROUPS)
    throw new SqlError(
      '22023',
      `a transaction writes to ${byGroup.size} groups; at most ${MAX_GROUPS}`,
    );
  return byGroup;
}

/**
 * Checks every part of a client's `txn` across groups: its shape, and each statement against
 * its group's replicated tables where this node serves that group too (`replicatedOf`
 * undefined: not here; its RM checks it at its slot).
 */
export function globalTxnProblem(
  command: Command,
  replicatedOf: (group: string) => Iterable<string> | undefined,
): { sqlState: string; message: string } | undefined {
  try {
    for (const [group, statements] of partsOf(command.ops)) {
      const replicated = replicatedOf(group);
      if (replicated === undefined) continue;
      for (const [i, s] of statements.entries()) {
        const problem = txnStatementProblem(s.sql, replicated);
        if (problem !== undefined)
          return { ...problem, message: `${group}, statement ${i + 1}: ${problem.message}` };
      }
    }
    return undefined;
  } catch (error) {
    return problemOf(error);
  }
}

/** The `txn` entry that numbers a transaction in its coordinating group's log, as SQL. */
export function beginWrite(command: Command, group: string): Pick<SqlWrite, 'sql' | 'refused'> {
  try {
    const parts = partsOf(command.ops);
    const { acceptors, protocol } = command;
    if (!isNameList(acceptors, MAX_ACCEPTORS))
      throw new SqlError('22023', 'txn needs the commit acceptors, which the leader adds');
    if (typeof protocol !== 'string' || !isValidName(protocol))
      throw new SqlError('22023', 'txn needs its commit protocol, which the leader adds');
    // What the coordinator needs, as first logged: a retry gets this row again (its session).
    const begun = JSON.stringify({
      groups: [...parts.keys()].sort(),
      acceptors: [...(acceptors as string[])],
      protocol,
      ops: command.ops,
    });
    const g = pg.escapeLiteral(group);
    return {
      sql: `INSERT INTO synod.txn_numbers (group_name, numbered) VALUES (${g}, 1)
              ON CONFLICT (group_name) DO UPDATE SET numbered = synod.txn_numbers.numbered + 1
            RETURNING numbered::text AS txn, ${pg.escapeLiteral(begun)}::text AS begun`,
    };
  } catch (error) {
    return { sql: '', refused: problemOf(error) };
  }
}

/** `txn_decided`: two-phase commit's outcome, the first one logged for the transaction. */
export function decidedWrite(command: Command, group: string): Pick<SqlWrite, 'sql' | 'refused'> {
  const { txid, outcome } = command;
  if (!isTxid(txid) || !isOutcome(outcome))
    return { sql: '', refused: { sqlState: '22023', message: 'malformed txn_decided entry' } };
  const g = pg.escapeLiteral(group);
  const t = pg.escapeLiteral(txid);
  return {
    sql: `WITH logged AS (
            INSERT INTO synod.txn_decided (group_name, txid, outcome) VALUES (${g}, ${t}, ${pg.escapeLiteral(outcome)})
            ON CONFLICT DO NOTHING RETURNING outcome)
          SELECT outcome FROM logged
          UNION ALL SELECT outcome FROM synod.txn_decided WHERE group_name = ${g} AND txid = ${t}`,
  };
}

/** `txn_prepare` and `txn_outcome` entries, checked: the step the applier runs alone. */
export function stepOf(command: Command, group: string): GlobalStep | { refused: string } {
  if (command.op === 'txn_outcome') {
    const { txid, outcome } = command;
    if (!isTxid(txid) || !isOutcome(outcome)) return { refused: 'malformed txn_outcome entry' };
    return { kind: 'finish', txid, outcome };
  }
  const meta = command.meta as Record<string, PlainData> | null;
  const txid = meta?.txid;
  if (meta === null || typeof meta !== 'object' || !isTxid(txid))
    return { refused: "a txn_prepare entry needs the transaction's meta" };
  const rms = meta.rms;
  if (!Array.isArray(rms) || !rms.includes(group))
    return { refused: `transaction ${txid} does not write to ${group}` };
  try {
    const writes = command.writes;
    if (!Array.isArray(writes)) throw new SqlError('22023', 'a txn_prepare entry needs its writes');
    const statements = groupPart(
      writes.map((w) => ({ ...(w as Record<string, PlainData>), group })),
      group,
    );
    return { kind: 'prepare', txid, meta, statements };
  } catch (error) {
    return { refused: problemOf(error).message };
  }
}
