import { isValidName, type PlainData } from '@synod/protocol';
import pg from 'pg';
import { SqlError } from './errors.js';
import { gidOf, isOutcome, isTxid } from './global-txn.js';
import {
  assertDefinition,
  assertTableName,
  deleteRowsStatement,
  insertRowsStatement,
  quoteTable,
  readRows,
  replicateStatement,
  tableDefinition,
  tableKey,
} from './replicated-tables.js';
import { userCommand, userStatement } from './sql-users.js';
import { MAX_STAGE_BYTES, stageCommand } from './staged-rows.js';

/**
 * A SQL node's state through one slot, for a peer that is behind the log this node has
 * compacted: every replicated table's definition and rows, the group's client sessions
 * (so a retried write is still applied once), and the slot. Rows travel as PostgreSQL's own
 * JSON (json_agg), and come back through json_populate_recordset with each column's type.
 * A table travels whole in one JSON text: tables of hundreds of megabytes need a streaming
 * transfer this does not have.
 */
interface SqlSnapshotDoc {
  readonly v: 1;
  readonly group: string;
  readonly throughSlot: number;
  readonly tables: readonly {
    readonly table: string;
    readonly definition: readonly string[];
    /** The columns to insert (stored generated columns are computed again). */
    readonly columns: readonly string[];
    /** The rows as a JSON array of objects. */
    readonly rows: string;
  }[];
  /** synod.sessions of the group: [clientId, seq, outcome as JSON text]. */
  readonly sessions: readonly [string, string, string][];
  /** synod.sql_users of the group: [name, SCRAM verifier as JSON text]; absent before users. */
  readonly users?: readonly [string, string][];
  /** synod.staged of the group (staged-rows.ts): [stage, part, slot, rows]; absent before stages. */
  readonly staged?: readonly [string, number, string, string][];
  /** Transactions across groups (global-txn.ts); absent before them. */
  readonly txns?: SnapshotTxns;
}

/** The group's numbering, votes and two-phase outcomes of transactions across groups. */
interface SnapshotTxns {
  readonly numbered: number;
  /** [txid, meta as JSON text, vote, reason, outcome, its slot]: none prepared and undecided. */
  readonly votes: readonly [string, string, string, string | null, string | null, string | null][];
  /** [txid, outcome]. */
  readonly decided: readonly [string, string][];
  /** [coordinating group, highest number forgotten]. */
  readonly floors: readonly [string, string][];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Reads the state in one REPEATABLE READ transaction: the applied slot and every row belong
 * to one moment. A replicated table missing here is left out (its digest differs already).
 */
export async function takeSqlSnapshot(
  client: pg.ClientBase,
  group: string,
  tables: Iterable<string>,
): Promise<{ throughSlot: number; bytes: Uint8Array }> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const applied = await client.query<{ slot: string }>(
      'SELECT slot FROM synod.applied WHERE group_name = $1',
      [group],
    );
    const throughSlot = Number(applied.rows[0]?.slot ?? -1);
    const doc: {
      v: 1;
      group: string;
      throughSlot: number;
      tables: SqlSnapshotDoc['tables'][number][];
      sessions: [string, string, string][];
      users: [string, string][];
      staged: [string, number, string, string][];
      txns?: SnapshotTxns;
    } = { v: 1, group, throughSlot, tables: [], sessions: [], users: [], staged: [] };
    for (const table of [...tables].map(tableKey).sort()) {
      let definition: string[];
      try {
        definition = await tableDefinition(client, table);
      } catch (error) {
        if (error instanceof SqlError && error.sqlState === '42P01') continue;
        throw error;
      }
      doc.tables.push({ table, definition, ...(await readRows(client, table)) });
    }
    const sessions = await client.query<{ client_id: string; seq: string; outcome: string }>(
      'SELECT client_id, seq::text AS seq, outcome::text AS outcome FROM synod.sessions WHERE group_name = $1',
      [group],
    );
    doc.sessions = sessions.rows.map((s) => [s.client_id, s.seq, s.outcome]);
    const users = await client.query<{ name: string; scram: string }>(
      'SELECT name, scram::text AS scram FROM synod.sql_users WHERE group_name = $1 ORDER BY name',
      [group],
    );
    doc.users = users.rows.map((u) => [u.name, u.scram]);
    const staged = await client.query<{ id: string; part: number; slot: string; rows: string }>(
      'SELECT stage_id AS id, part, slot::text AS slot, rows FROM synod.staged WHERE group_name = $1 ORDER BY stage_id, part',
      [group],
    );
    doc.staged = staged.rows.map((s) => [s.id, s.part, s.slot, s.rows]);
    doc.txns = await readTxns(client, group);
    await client.query('COMMIT');
    return { throughSlot, bytes: encoder.encode(JSON.stringify(doc)) };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Makes this database the snapshot's state, in one transaction: each table created if
 * missing (and recorded as replicated), its rows replaced, the group's sessions replaced, and
 * the applied slot set. A snapshot at or below the applied slot changes nothing (the node is
 * ahead of it already), unless `replace` says to. Returns the tables it holds.
 */
export async function installSqlSnapshot(
  client: pg.ClientBase,
  group: string,
  bytes: Uint8Array,
  options: {
    /** The client role, which may read the tables and not write them (roles.ts). */
    readonly readers?: string;
    /** Run before the transaction for each table, as roles.ts's handOver. */
    readonly prepare?: (table: string) => Promise<unknown>;
    /** Install even at or below the applied slot: the database's own record is not believed. */
    readonly replace?: boolean;
  } = {},
): Promise<{ installed: boolean; tables: string[] }> {
  const doc = JSON.parse(decoder.decode(bytes)) as SqlSnapshotDoc;
  if (
    doc.v !== 1 ||
    doc.group !== group ||
    !Number.isSafeInteger(doc.throughSlot) ||
    !Array.isArray(doc.tables as unknown) ||
    !Array.isArray(doc.sessions as unknown)
  )
    throw new SqlError('XX001', `not a SQL snapshot of group ${group}`);
  // A peer's snapshot is checked as a replicate write is: names, then definitions.
  for (const entry of doc.tables) {
    const { table, definition } = entry;
    const columns: unknown = entry.columns;
    assertTableName(table);
    assertDefinition(table, definition);
    if (!Array.isArray(columns) || !columns.every((c) => typeof c === 'string'))
      throw new SqlError('XX001', `the snapshot's columns of ${table} are not a list of names`);
  }
  const txns = doc.txns === undefined ? undefined : checkedTxns(doc.txns);
  for (const { table } of doc.tables) await options.prepare?.(table);
  // What this group holds prepared here was decided at or before the snapshot's slot (it has
  // none open): its rows are in the snapshot as decided, and its locks would stop the install.
  const before = await client.query<{ slot: string }>(
    'SELECT slot FROM synod.applied WHERE group_name = $1',
    [group],
  );
  if (options.replace === true || Number(before.rows[0]?.slot ?? -1) < doc.throughSlot)
    await rollBackPrepared(client, group);
  await client.query('BEGIN');
  try {
    const locked = await client.query<{ slot: string }>(
      'SELECT slot FROM synod.applied WHERE group_name = $1 FOR UPDATE',
      [group],
    );
    if (options.replace !== true && Number(locked.rows[0]?.slot ?? -1) >= doc.throughSlot) {
      await client.query('ROLLBACK');
      return { installed: false, tables: [] };
    }
    for (const { table, definition, columns, rows } of doc.tables) {
      await client.query(
        replicateStatement(group, table, definition, {
          ...(options.readers === undefined ? {} : { readers: options.readers }),
        }),
      );
      const name = quoteTable(table);
      await client.query(deleteRowsStatement(name));
      const insert = insertRowsStatement(name, columns);
      if (insert !== undefined) await client.query(insert, [rows]);
    }
    await client.query('DELETE FROM synod.sql_users WHERE group_name = $1', [group]);
    for (const [name, scram] of doc.users ?? []) {
      // As a user add from the log is checked: a peer's snapshot is input too.
      const checked = userCommand({ op: 'sqluser', name, scram: JSON.parse(scram) as PlainData });
      await client.query(userStatement(group, checked));
    }
    await client.query('DELETE FROM synod.staged WHERE group_name = $1', [group]);
    for (const [id, part, slot, rows] of doc.staged ?? []) {
      // As a stage write from the log is checked: a peer's snapshot is input too.
      const stage = stageCommand({ op: 'stage', id, part, rows }, MAX_STAGE_BYTES);
      if (!/^-?\d{1,18}$/.test(slot)) throw new SqlError('XX001', 'a staged part without its slot');
      await client.query(
        'INSERT INTO synod.staged (group_name, stage_id, part, slot, rows) VALUES ($1, $2, $3, $4, $5)',
        [group, stage.id, stage.part, slot, stage.rows],
      );
    }
    await client.query('DELETE FROM synod.sessions WHERE group_name = $1', [group]);
    if (doc.sessions.length > 0)
      await client.query(
        `INSERT INTO synod.sessions (group_name, client_id, seq, outcome)
         SELECT $1, s.client_id, s.seq::bigint, s.outcome::jsonb
           FROM json_to_recordset($2::json) AS s(client_id text, seq text, outcome text)`,
        [
          group,
          JSON.stringify(
            doc.sessions.map(([client_id, seq, outcome]) => ({ client_id, seq, outcome })),
          ),
        ],
      );
    if (txns !== undefined) await writeTxns(client, group, txns);
    await client.query('UPDATE synod.applied SET slot = $2 WHERE group_name = $1', [
      group,
      doc.throughSlot,
    ]);
    await client.query('COMMIT');
    return { installed: true, tables: doc.tables.map((t) => t.table) };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * The group's transactions across groups, read inside the snapshot's transaction. Refused
 * (55006) while one is prepared here: PostgreSQL's dump of rows cannot carry a prepared
 * transaction, and running its statements again later could give other results. It is taken
 * again once the outcome is applied (outcomes follow within moments).
 */
async function readTxns(client: pg.ClientBase, group: string): Promise<SnapshotTxns> {
  const open = await client.query(
    "SELECT txid FROM synod.txn_votes WHERE group_name = $1 AND vote = 'prepared' AND outcome IS NULL LIMIT 1",
    [group],
  );
  if (open.rowCount !== 0)
    throw new SqlError(
      '55006',
      `transaction ${open.rows[0].txid} across groups is not decided here yet: the snapshot is taken once it is`,
    );
  const numbered = await client.query<{ n: string }>(
    'SELECT numbered::text AS n FROM synod.txn_numbers WHERE group_name = $1',
    [group],
  );
  const votes = await client.query<{
    txid: string;
    meta: string;
    vote: string;
    reason: string | null;
    outcome: string | null;
    slot: string | null;
  }>(
    'SELECT txid, meta::text AS meta, vote, reason, outcome, decided_slot::text AS slot FROM synod.txn_votes WHERE group_name = $1 ORDER BY txid',
    [group],
  );
  const floors = await client.query<{ coordinator: string; number: string }>(
    'SELECT coordinator, number::text AS number FROM synod.txn_floors WHERE group_name = $1 ORDER BY coordinator',
    [group],
  );
  const decided = await client.query<{ txid: string; outcome: string }>(
    'SELECT txid, outcome FROM synod.txn_decided WHERE group_name = $1 ORDER BY txid',
    [group],
  );
  return {
    numbered: Number(numbered.rows[0]?.n ?? 0),
    votes: votes.rows.map((v) => [v.txid, v.meta, v.vote, v.reason, v.outcome, v.slot]),
    decided: decided.rows.map((d) => [d.txid, d.outcome]),
    floors: floors.rows.map((f) => [f.coordinator, f.number]),
  };
}

/** A peer's transactions, checked as input: ids, votes and outcomes from their small sets. */
function checkedTxns(txns: SnapshotTxns): SnapshotTxns {
  const bad = (what: string): SqlError =>
    new SqlError('XX001', `the snapshot's transactions across groups: ${what}`);
  if (!Number.isSafeInteger(txns.numbered) || txns.numbered < 0) throw bad('a bad number');
  if (!Array.isArray(txns.votes) || !Array.isArray(txns.decided) || !Array.isArray(txns.floors))
    throw bad('not lists');
  for (const [coordinator, number] of txns.floors)
    if (!isValidName(coordinator) || !/^\d{1,16}$/.test(String(number))) throw bad('a bad floor');
  for (const [txid, meta, vote, reason, outcome, slot] of txns.votes) {
    if (slot !== null && !/^\d{1,18}$/.test(String(slot))) throw bad(`a bad slot for ${txid}`);
    if (!isTxid(txid)) throw bad('a bad transaction id');
    if (vote !== 'prepared' && vote !== 'aborted') throw bad(`a bad vote for ${txid}`);
    if (!isOutcome(outcome) && (outcome !== null || vote !== 'aborted'))
      throw bad(`${txid} is prepared and not decided`);
    if (reason !== null && typeof reason !== 'string') throw bad(`a bad reason for ${txid}`);
    const parsed = JSON.parse(String(meta)) as unknown;
    if (parsed === null || typeof parsed !== 'object') throw bad(`no meta for ${txid}`);
  }
  for (const [txid, outcome] of txns.decided)
    if (!isTxid(txid) || !isOutcome(outcome)) throw bad('a bad two-phase outcome');
  return txns;
}

async function writeTxns(client: pg.ClientBase, group: string, txns: SnapshotTxns): Promise<void> {
  await client.query('DELETE FROM synod.txn_numbers WHERE group_name = $1', [group]);
  if (txns.numbered > 0)
    await client.query('INSERT INTO synod.txn_numbers (group_name, numbered) VALUES ($1, $2)', [
      group,
      txns.numbered,
    ]);
  await client.query('DELETE FROM synod.txn_votes WHERE group_name = $1', [group]);
  await client.query(
    `INSERT INTO synod.txn_votes (group_name, txid, meta, vote, reason, outcome, decided_slot)
     SELECT $1, v.txid, v.meta::jsonb, v.vote, v.reason, v.outcome, v.slot::bigint
       FROM json_to_recordset($2::json)
         AS v(txid text, meta text, vote text, reason text, outcome text, slot text)`,
    [
      group,
      JSON.stringify(
        txns.votes.map(([txid, meta, vote, reason, outcome, slot]) => ({
          txid,
          meta,
          vote,
          reason,
          outcome,
          slot,
        })),
      ),
    ],
  );
  await client.query('DELETE FROM synod.txn_floors WHERE group_name = $1', [group]);
  await client.query(
    `INSERT INTO synod.txn_floors (group_name, coordinator, number)
     SELECT $1, f.coordinator, f.number::bigint
       FROM json_to_recordset($2::json) AS f(coordinator text, number text)`,
    [group, JSON.stringify(txns.floors.map(([coordinator, number]) => ({ coordinator, number })))],
  );
  await client.query('DELETE FROM synod.txn_decided WHERE group_name = $1', [group]);
  await client.query(
    `INSERT INTO synod.txn_decided (group_name, txid, outcome)
     SELECT $1, d.txid, d.outcome FROM json_to_recordset($2::json) AS d(txid text, outcome text)`,
    [group, JSON.stringify(txns.decided.map(([txid, outcome]) => ({ txid, outcome })))],
  );
}

/** Ends every transaction this group holds prepared in this database (before an install). */
export async function rollBackPrepared(client: pg.ClientBase, group: string): Promise<void> {
  const held = await client.query<{ gid: string }>(
    // starts_with, not LIKE: a group's name may hold LIKE's `_`.
    'SELECT gid FROM pg_prepared_xacts WHERE starts_with(gid, $1) AND database = current_database()',
    [gidOf(group, '')],
  );
  for (const { gid } of held.rows) await client.query(`ROLLBACK PREPARED ${pg.escapeLiteral(gid)}`);
}
